// The run-time layouts the quantized kernels read. Int: the GPTQ tensors (gptq.h), padded so
// that every kernel step is a whole SIMD vector and a whole 32-code unit; NF4/FP4: bitsandbytes'
// tensors as they are (bnb4.h), which need no padding since in_features % 64 == 0.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/formats/bnb4.h"
#include "quant/formats/qtensor.h"

namespace moeq {

// Output lanes are padded to this (the widest vector, 16 fp32), inputs of each group to 32.
inline constexpr int64_t kOutPad = 16;
inline constexpr int64_t kUnitCodes = 32;

struct IntLayout {
  int bits = 4;
  int64_t out = 0, in = 0;        // the logical shape [out, in]
  int64_t out_pad = 0;            // out rounded up to kOutPad
  int64_t in_pad = 0;             // Σ over groups of the group's width rounded up to 32
  int64_t n_groups = 0;
  std::vector<uint32_t> qweight;  // [in_pad / 32 · bits, out_pad], GPTQ packing along inputs
  std::vector<uint16_t> scales;   // fp16 [n_groups, out_pad]
  std::vector<uint8_t> zeros;     // [n_groups, out_pad]
  std::vector<int64_t> group_start;  // [n_groups + 1] in padded input coordinates, multiples of 32
  // Padded input i reads column src_col[i] of x (−1: padding, reads 0). Columns are ordered by
  // group, so act-order (a permuted g_idx) costs one gather of x, as exllama does it.
  std::vector<int32_t> src_col;   // [in_pad]
  bool identity = true;           // src_col[i] == i and in_pad == in: x is used as it is

  // Code of padded input i, output o (reference kernels and tests).
  uint32_t code(int64_t i, int64_t o) const;
};

// Whether the INT8-activation kernels (int_gemv_a8) take codes of `bits` bits: 2, 4 and 8,
// whose codes never straddle a 32-bit word.
constexpr bool a8_kernel_bits(int bits) { return bits == 2 || bits == 4 || bits == 8; }

// Where padded input i sits in the INT8 activations of those kernels. Masking a word of codes
// to the low `bits` of each byte after a shift of m·bits leaves in byte j the code of input
// j·(8/bits) + m: so within each word's inputs, slot m·4 + j holds that input, and every 4
// consecutive slots are the 4 activations one byte-wise dot product (vpdpbusd) pairs with one
// masked word. Identity for 8 bits; a permutation within each word's inputs otherwise.
constexpr int64_t a8_slot(int bits, int64_t i) {
  const int64_t per_byte = 8 / bits, per_word = 4 * per_byte, k = i % per_word;
  return i - k + k % per_byte * 4 + k / per_byte;
}

// From an Int QuantizedMatrix; scales are rounded to fp16 exactly as pack_gptq stores them.
IntLayout make_int_layout(const QuantizedMatrix& m);

}  // namespace moeq
