// One traits table for every weight format, indexed by FormatId (ggml's type_traits[]): name,
// bits, packing unit, pack/unpack of one unit, and the reference dequantization of one code.
// Everything format-specific that is not a kernel is reached through here.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "quant/formats/qtensor.h"

namespace moeq {

enum class FormatId : uint8_t { Int2, Int3, Int4, Int8, NF4, FP4 };
inline constexpr int kFormatCount = 6;

struct FormatTraits {
  FormatId id;
  std::string_view name;    // "int4", "nf4", ...
  QuantFormat family;
  int bits;                 // bits of one code
  int block_values;         // codes in one packing unit (blocks.h)
  int block_bytes;          // sizeof the packing unit
  int default_group_size;   // Int: 128; NF4/FP4: the bnb block, 64
  // Packs block_values codes (each < 2^bits) into one unit, and back.
  void (*pack_block)(const uint8_t* codes, void* block);
  void (*unpack_block)(const void* block, uint8_t* codes);
  // The reference value of one code: Int (code − zero) · scale; NF4/FP4 table[code] · scale.
  float (*dequant)(uint8_t code, float scale, float zero);

  double payload_bits_per_weight() const { return 8.0 * block_bytes / block_values; }
};

const FormatTraits& format_traits(FormatId id);
// The format of a spec; throws moeq::Error for bit widths no format has.
FormatId format_id(const QuantSpec& spec);
inline const FormatTraits& format_traits(const QuantSpec& spec) { return format_traits(format_id(spec)); }

// Checks a QuantizedMatrix against qtensor.h's contract (sizes, code range, g_idx range, integer
// zeros in range for Int, 64-aligned columns for NF4/FP4). Throws moeq::Error naming `what`.
void check_quantized_matrix(const QuantizedMatrix& m, std::string_view what);

// The reference dequantization ŵ, row-major [rows, cols], through the traits' dequant().
std::vector<float> dequantize(const QuantizedMatrix& m);

}  // namespace moeq
