// One weight's integer code under a group's scale and zero point, and back: the arithmetic that
// quant/algo/group_params.h's definition (shared/anchors/rtn_torch.md's) spells out, in one place
// for the algorithms that choose the parameters and the kernels that measure them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "quant/formats/qtensor.h"

namespace moeq {

struct GroupParams {
  float scale = 1.0f;
  float zero = 0.0f;
};

// How a group's scale = range / qmax is rounded. The two differ by at most an ulp, but weights
// stored in bf16 often sit exactly on a half step of the grid (−min / scale = −1.5 at 2 bits),
// where that ulp decides the code and the zero point. Tools differ here, so a file can be made to
// match either (docs/RESULTS.md, "Against the anchors").
enum class ScaleDivision : uint8_t {
  Exact,       // fl(range / qmax), correctly rounded: the written definition, GPTQ's reference
               // quantizer (its qmax is a tensor), PyTorch on the CPU
  Reciprocal,  // fl(range · fl(1 / qmax)): PyTorch's CUDA `tensor / number`, hence AWQ's reference
               // and anchors/rtn_torch.md's numbers; llama.cpp's `x · (1 / d)`
};

inline float divide_scale(float range, float qmax, ScaleDivision division) {
  return division == ScaleDivision::Exact ? range / qmax : range * (1.0f / qmax);
}

// Largest code: 2^bits − 1 (symmetric codes are offset by 2^(bits−1), so the range is the same).
inline int max_code(const QuantSpec& spec) { return (1 << spec.bits) - 1; }

// round() of the definition: half to even, exactly std::nearbyint in the default rounding mode,
// but inline — x86-64 without SSE4.1 makes nearbyint a libm call, and this runs once per weight
// per candidate in the searches. Adding and subtracting 1.5·2^23 leaves the nearest integer, ties
// to even, for |x| < 2^22 (the sum then has an ulp of exactly 1).
inline float round_half_even(float x) {
  if (std::fabs(x) < 0x1p22f) return (x + 0x1.8p23f) - 0x1.8p23f;
  return std::nearbyint(x);
}

// The stored code of one weight; identical to the definition for both modes, because the
// symmetric zero is 2^(b−1) and its clamp range [−qmax−1, qmax] shifts to [0, 2^b − 1].
inline uint8_t quantize_code(float w, GroupParams p, int max_code) {
  const float q = round_half_even(w / p.scale) + p.zero;  // finite w assumed (callers check)
  return uint8_t(std::clamp(q, 0.0f, float(max_code)));
}

inline float dequantize_code(uint8_t code, GroupParams p) { return (float(code) - p.zero) * p.scale; }

}  // namespace moeq
