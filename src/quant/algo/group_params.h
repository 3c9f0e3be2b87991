// Per-group scale and zero point of integer quantization: the single source of truth for every
// algorithm that emits an Int QuantizedMatrix (GPTQ, AWQ; RTN computes the same numbers in
// quant/algo/rtn.cpp and can call this instead). It is shared/anchors/rtn_torch.md's definition,
// so moeq reproduces the PyTorch baselines and GPTQ with an identity Hessian reproduces RTN code
// for code:
//   asymmetric, b bits: qmax = 2^b − 1, scale = max((max − min) / qmax, 1e-8),
//                       zero = round(−min / scale), code = clamp(round(w / scale) + zero, 0, qmax)
//   symmetric,  b bits: qmax = 2^(b−1) − 1, scale = max(absmax / qmax, 1e-8),
//                       q = clamp(round(w / scale), −qmax − 1, qmax), code = q + 2^(b−1),
//                       zero = 2^(b−1)
// and ŵ = (code − zero) · scale in both cases. round() is round-half-to-even; all in fp32. The
// division of the scale is correctly rounded unless the caller asks for ScaleDivision::Reciprocal
// (int_code.h), which is what the anchor's numbers were computed with.
//
// One addition to the anchor's formula, as in GPTQ's reference quantizer and moeq's RTN: the
// asymmetric [min, max] is first widened to contain 0. That changes nothing for a group holding
// weights of both signs (practically every group of a trained model), and keeps the zero of a
// one-signed group inside [0, qmax], as qtensor.h requires of every Int QuantizedMatrix (the
// packers store zeros in b unsigned bits); the anchor's formula would give zero < 0 for an
// all-positive group and zero > qmax for an all-negative one.
#pragma once

#include <span>

#include "quant/formats/int_code.h"
#include "quant/formats/qtensor.h"

namespace moeq {

// Scale and zero of one group of weights under an Int spec (spec.bits, spec.symmetric).
GroupParams compute_group_params(std::span<const float> w, const QuantSpec& spec,
                                 ScaleDivision division = ScaleDivision::Exact);

// The reference GPTQ quantizer's `mse` search: the group's (0-widened) range shrunk by
// p = 1, 1 − 1/grid, … down to 1 − max_shrink, each candidate's params as above, keeping the one
// with the smallest Σ (w − ŵ)². Clipping a few outliers lets the other weights of the group use
// finer steps; p = 1 is the plain parameters, so the result is never worse in that error. (The
// reference measures Σ |w − ŵ|^2.4; a power per weight and candidate costs more than the rest of
// GPTQ here, and the square is what the layer's output error sums.)
struct RangeSearch {
  int grid = 100;
  float max_shrink = 0.8f;
};
GroupParams search_group_params(std::span<const float> w, const QuantSpec& spec, const RangeSearch& search,
                                ScaleDivision division = ScaleDivision::Exact);

// Rejects specs outside qtensor.h's Int contract: another format, bits outside {2, 3, 4, 8},
// or a group size other than 0, 32, 64, 128. `what` names the caller in the message.
void check_int_spec(const QuantSpec& spec, const char* what);

}  // namespace moeq
