// Group-wise integer weights in the GPTQ tensor convention of AutoGPTQ / GPTQModel checkpoints:
// qweight int32 [in·bits/32, out] packed along the input dimension, qzeros int32
// [n_groups, out·bits/32] packed along the output dimension, scales fp16 [n_groups, out],
// g_idx int32 [in]. Packing units and the 3-bit interleaving: blocks.h; drawings: docs/FORMATS.md.
#pragma once

#include <cstdint>
#include <vector>

#include "core/int_math.h"
#include "quant/formats/qtensor.h"

namespace moeq {

// int32 words that hold n values of `bits` bits packed GPTQ's way: n padded to a multiple of 32
// (32 values of b bits fill b words exactly).
constexpr int64_t gptq_packed_rows(int64_t n, int bits) { return ceil_div(n, 32) * bits; }

// What qzeros hold. GPTQ v1 (AutoGPTQ and most hub checkpoints) stores zero − 1, which cannot
// represent zero == 0 — a value asymmetric quantization produces for any group whose minimum is
// (close to) zero. moeq's own files therefore store the zero itself (GPTQModel's "v2" format) and
// say so in their format version; MinusOne exists to read and write v1 checkpoints.
enum class GptqZeros : uint8_t { Stored, MinusOne };

struct GptqTensors {
  QuantSpec spec;                       // Int: bits, group_size, symmetric (not recoverable from the tensors)
  int64_t in_features = 0, out_features = 0;
  GptqZeros zeros_convention = GptqZeros::Stored;
  std::vector<int32_t> qweight;         // [qweight_rows(), out_features]
  std::vector<int32_t> qzeros;          // [n_groups(), qzeros_cols()]
  std::vector<uint16_t> scales;         // fp16 bits, [n_groups(), out_features]
  std::vector<int32_t> g_idx;           // [in_features]

  // in and out are padded to multiples of 32 with zero bits; with in % 32 == out % 32 == 0 (what
  // GPTQ kernels require) these are exactly GPTQ's in·bits/32 and out·bits/32.
  int64_t qweight_rows() const { return gptq_packed_rows(in_features, spec.bits); }
  int64_t qzeros_cols() const { return gptq_packed_rows(out_features, spec.bits); }
  int64_t n_groups() const { return group_count(spec, in_features); }
};

// Packs an Int QuantizedMatrix. Scales are rounded to fp16 (GPTQ's dtype); codes, zeros and g_idx
// are exact. Throws moeq::Error for a malformed matrix, or zero == 0 under GptqZeros::MinusOne.
GptqTensors pack_gptq(const QuantizedMatrix& m, GptqZeros zeros = GptqZeros::Stored);
// Exact inverse: unpack(pack(m)) == m except scales, which come back as fp16(m.scales).
// Throws moeq::Error when tensor sizes disagree with the shape and spec.
QuantizedMatrix unpack_gptq(const GptqTensors& t);

}  // namespace moeq
