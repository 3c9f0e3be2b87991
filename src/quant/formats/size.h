// Bytes on disk of one quantized weight matrix, per format, as its packer writes it: for
// `moeq info` on quantized models and for bit allocation (bits per weight of a spec on a shape).
#pragma once

#include <cstdint>

#include "quant/formats/qtensor.h"

namespace moeq {

struct QuantSize {
  int64_t payload = 0;  // packed codes: GPTQ qweight / bnb weight
  int64_t scales = 0;   // GPTQ fp16 scales / bnb absmax (fp32, or uint8 + nested fp32 + offset)
  int64_t zeros = 0;    // GPTQ qzeros
  int64_t index = 0;    // GPTQ g_idx (int32 per input)
  int64_t tables = 0;   // bnb quant_map (16 fp32) and nested_quant_map (256 fp32)

  int64_t total() const { return payload + scales + zeros + index + tables; }
  double bits_per_weight(int64_t weights) const { return weights > 0 ? 8.0 * double(total()) / double(weights) : 0.0; }
};

// A [rows = out, cols = in] matrix quantized with `spec`. Int follows gptq.h's tensor shapes (in
// and out padded to multiples of 32), NF4/FP4 bnb4.h's. Throws moeq::Error for an invalid spec.
QuantSize quant_size(const QuantSpec& spec, int64_t rows, int64_t cols);

}  // namespace moeq
