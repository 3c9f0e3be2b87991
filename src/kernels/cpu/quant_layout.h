// The run-time layouts the quantized kernels read. Int: the GPTQ tensors (gptq.h), padded so
// that every kernel step is a whole SIMD vector and a whole 32-code unit; NF4/FP4: bitsandbytes'
// tensors as they are (bnb4.h), which need no padding since in_features % 64 == 0.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/formats/bnb4.h"
#include "quant/qtensor.h"

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

// From an Int QuantizedMatrix; scales are rounded to fp16 exactly as pack_gptq stores them.
IntLayout make_int_layout(const QuantizedMatrix& m);

}  // namespace moeq
