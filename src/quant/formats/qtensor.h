// The contract between quantization algorithms (src/quant/algo: RTN, GPTQ, AWQ) and weight
// formats (src/quant/formats: packing, storage, fused dequant-matmul kernels).
//
// An algorithm produces an *unpacked* QuantizedMatrix: one integer code per weight plus
// per-(row, group) scales and zero points. A format packs it (GPTQ qweight/qzeros int32
// convention for INT, bitsandbytes layout for NF4/FP4) and runs it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moeq {

enum class QuantFormat : uint8_t {
  Int,  // group-wise integer, b in {2, 3, 4, 8}, symmetric or asymmetric
  NF4,  // bitsandbytes NormalFloat4, blockwise absmax (block 64), optional double quantization
  FP4,  // bitsandbytes FP4 (e2m1), same block rules as NF4
};

struct QuantSpec {
  QuantFormat format = QuantFormat::Int;
  int bits = 4;           // Int: 2, 3, 4 or 8. NF4/FP4: 4.
  int group_size = 128;   // Int: 32, 64, 128, or 0 = per-channel (one group per row). NF4/FP4: block size (64).
  bool symmetric = false; // Int only.
  bool double_quant = true;  // NF4/FP4 only: quantize the absmax values (bitsandbytes compress_statistics).
};

// Parses/prints specs like "int4 g128 asym", "int8 g0 sym", "nf4 dq", "fp4". Grammar: a format
// token (int2|int3|int4|int8|nf4|fp4), then in any order: g<N> (Int: 0, 32, 64, 128; NF4/FP4: 64),
// sym|asym (Int; default asym), dq (NF4/FP4: double quantization; absent = off). Int without g<N>
// means g128. to_string() prints the canonical form, and parse(to_string(s)) == s.
// Throws moeq::Error naming the text and the offending token.
QuantSpec parse_quant_spec(const std::string& text);
std::string to_string(const QuantSpec& spec);
bool operator==(const QuantSpec& a, const QuantSpec& b);

// Columns per group of a row of `cols` weights (the whole row when per-channel, at most cols) and
// groups per row (the last one partial when the group size does not divide cols).
int64_t group_width(const QuantSpec& spec, int64_t cols);
int64_t group_count(const QuantSpec& spec, int64_t cols);

// Quantized weights, unpacked. Rows are output features, columns input features.
// Int:     ŵ[r][c] = (codes[r*cols + c] − zeros[r*n_groups + g]) · scales[r*n_groups + g],
//          with g = g_idx[c] (g_idx.size() == cols; g_idx[c] == c / group_size unless act-order
//          permuted the columns, as GPTQ's act-order does). Group size 0: n_groups == 1.
//          zeros are integers in [0, 2^bits) (the packers check this).
// NF4/FP4: ŵ[r][c] = code_table[codes[r*cols + c]] · scales[r*n_groups + c / 64], where
//          code_table is bitsandbytes' 16-entry map (quant/formats/bnb4.h) and scales are the
//          per-block absmax in fp32, before any double quantization (the bnb packer applies it).
//          zeros is empty; g_idx[c] == c / 64; cols must be a multiple of 64, so row-wise blocks
//          are exactly bitsandbytes' blocks of the flattened tensor.
// Checked by check_quantized_matrix() in quant/formats/traits.h.
struct QuantizedMatrix {
  QuantSpec spec;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t n_groups = 0;
  std::vector<uint8_t> codes;   // [rows * cols], each in [0, 2^bits)
  std::vector<float> scales;    // [rows * n_groups]
  std::vector<float> zeros;     // [rows * n_groups]; symmetric: 2^(bits-1). NF4/FP4: empty
  std::vector<int32_t> g_idx;   // [cols]
};

}  // namespace moeq
