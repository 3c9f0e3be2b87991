// Round-to-nearest quantization: the baseline every other algorithm must beat, and the exact
// definition of ../shared/anchors/rtn_torch.md (same weights → the same codes and fp32 scales,
// with ScaleDivision::Reciprocal: the arithmetic the anchor's numbers were computed with).
#pragma once

#include <cstdint>

#include "quant/formats/int_code.h"

namespace moeq {

// Quantizes a row-major fp32 weight [rows = out, cols = in] with `spec`. Groups are g consecutive
// columns of a row (g = 0: the whole row). All arithmetic in fp32; round() is half-to-even.
//  asym: qmax = 2^b − 1; the group's [min, max] is first widened to contain 0 (as GPTQ's quantizer
//        does), then scale = max((max − min) / qmax, 1e-8), zero = round(−min / scale),
//        q = clamp(round(w / scale) + zero, 0, qmax). Widening changes nothing for a group with
//        weights of both signs (almost every group of a trained model); for a one-signed group it
//        keeps zero in [0, qmax], so every group packs into GPTQ's unsigned qzeros. Without it a
//        group with all weights > 0 gets zero < 0 (rtn_torch.md's formula, which leaves zero
//        unclamped), and one with all weights < 0 gets zero > qmax.
//  sym:  qmax = 2^(b−1) − 1; scale = max(absmax / qmax, 1e-8); q = clamp(round(w / scale), −qmax − 1,
//        qmax), stored as code q + 2^(b−1) with zero 2^(b−1).
//  NF4/FP4: bitsandbytes' blockwise quantizer (bnb4.h: quantize_bnb4).
// `division` rounds the Int scales (int_code.h); rtn_torch.md's numbers need Reciprocal.
QuantizedMatrix rtn_quantize(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec,
                             ScaleDivision division = ScaleDivision::Exact);

}  // namespace moeq
