// bitsandbytes' 4-bit formats, NF4 and FP4, exactly as bnb stores them (quantize_4bit with
// blocksize 64, optionally compress_statistics=True): the code tables, the blockwise absmax
// quantizer, nibble packing and double quantization of the absmax with the signed dynamic 8-bit
// map. docs/FORMATS.md has the layout and every choice where bnb's backends differ.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "quant/formats/qtensor.h"

namespace moeq {

// bnb's get_4bit_type("nf4") (QLoRA's NormalFloat levels, ascending) and get_4bit_type("fp4")
// (bnb's e2m1 values [0, 0.0625, 8, 12, 4, 6, 2, 3, −0, …] divided by 12), as fp32.
const std::array<float, 16>& nf4_code_table();
const std::array<float, 16>& fp4_code_table();
const std::array<float, 16>& bnb4_code_table(QuantFormat format);

// bnb's create_dynamic_map() (signed, max_exponent_bits 7, total_bits 8): 256 fp32 values in
// ascending order, the nested_quant_map of double quantization. For i in 0..6 it takes the
// midpoints of torch.linspace(0.1, 1, 2^i + 1), times ±10^(i−6), plus 0 and 1. The values follow
// torch's fp32 linspace (start + step·k below the halfway point, end − step·(steps−1−k) above,
// each one fused multiply-add as x86 builds compile it); docs/FORMATS.md says how this was checked.
std::vector<float> create_dynamic_map();

// The 4-bit code of x, a weight already multiplied by 1 / its block's absmax (so in [−1, 1]):
// the index of the nearest table value, the lowest index on ties — bnb's reference backend,
// argmin(|x − code|). (bnb's CUDA decision trees use rounded midpoints; they can differ only
// within ~1e-7 of a midpoint.)
uint8_t bnb4_encode(QuantFormat format, float x);

// Round-to-nearest into NF4/FP4: per 64-block absmax, x = w · (1 / absmax) as bnb computes it,
// then bnb4_encode. w is row-major [rows, cols], cols % 64 == 0. scales = fp32 absmax.
QuantizedMatrix quantize_bnb4(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec);

// What bitsandbytes keeps for one Linear4bit weight (its QuantState, flattened).
struct Bnb4Tensors {
  QuantSpec spec;                 // NF4 or FP4; double_quant says which absmax form is filled
  int64_t rows = 0, cols = 0;     // the weight's shape [out, in]
  std::vector<uint8_t> weight;    // [rows * cols / 2] packed codes (blocks.h: Bnb4Block)
  std::vector<float> quant_map;   // [16] the code table
  std::vector<float> absmax;      // [n_blocks] fp32 absmax (double_quant == false)
  // double_quant == true: absmax_b = nested_quant_map[absmax_q[b]] · nested_absmax[b / 256] + offset
  std::vector<uint8_t> absmax_q;        // [n_blocks] ("absmax" in bnb's state dict, uint8)
  std::vector<float> nested_absmax;     // [ceil(n_blocks / 256)]
  std::vector<float> nested_quant_map;  // [256] create_dynamic_map()
  float offset = 0.0f;                  // mean of the fp32 absmax ("nested_offset")

  int64_t n_blocks() const { return rows * cols / 64; }
};

// Packs an NF4/FP4 QuantizedMatrix; with spec.double_quant the absmax are compressed as
// bnb's quantize_4bit(compress_statistics=True) does. Throws moeq::Error on a bad matrix.
Bnb4Tensors pack_bnb4(const QuantizedMatrix& m);
// The matrix the tensors describe; scales are the (dequantized) absmax.
QuantizedMatrix unpack_bnb4(const Bnb4Tensors& t);
// The absmax of block b (of the flattened weight) as bnb dequantizes it.
float bnb4_block_absmax(const Bnb4Tensors& t, int64_t b);

}  // namespace moeq
