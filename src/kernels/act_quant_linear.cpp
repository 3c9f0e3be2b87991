#include "kernels/act_quant_linear.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/parallel.h"

namespace moeq {
namespace {

// Round half to even for |v| < 2^22 in the default rounding mode: the sum with 1.5 · 2^23 has no
// fraction bits left. Vectorizes, where std::nearbyint is a library call per element (it was
// half of a prefill's time). quant/formats' round_half_even adds a branch for larger |v|, which
// activation codes (|v| ≤ 127) never need.
inline float round_small_half_even(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

// The scale absmax / 127, 0 for a row of zeros.
float activation_scale(std::span<const float> x) {
  // `omp simd`: without it GCC vectorizes neither this max reduction nor the loops below (the
  // clamp's branches).
  float absmax = 0.0f;
#pragma omp simd reduction(max : absmax)
  for (size_t i = 0; i < x.size(); ++i) absmax = std::max(absmax, std::fabs(x[i]));
  return absmax / 127.0f;
}

// q = round_small_half_even(v / s) in [−127, 127], as a float. Division, as the definition writes it
// (and PyTorch computes it), not a reciprocal.
inline float activation_code(float v, float scale) {
  const float r = v / scale;
  return round_small_half_even(r < -127.0f ? -127.0f : r > 127.0f ? 127.0f : r);
}

const Int8InputOp* integer_path(const LinearOp& op) {
  const auto* int8 = dynamic_cast<const Int8InputOp*>(&op);
  return int8 != nullptr && int8->int8_max_tokens() > 0 ? int8 : nullptr;
}

}  // namespace

bool valid_act_bits(int act_bits) { return act_bits == 8 || act_bits == kActBitsNone; }

void quantize_activation_row(std::span<const float> x, std::span<float> out) {
  const float scale = activation_scale(x);
  if (scale == 0.0f) {
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
#pragma omp simd
  for (size_t i = 0; i < x.size(); ++i) out[i] = activation_code(x[i], scale) * scale;
}

float quantize_activation_codes(std::span<const float> x, std::span<int8_t> codes) {
  const float scale = activation_scale(x);
  if (scale == 0.0f) {
    std::fill(codes.begin(), codes.end(), int8_t{0});
    return 0.0f;
  }
#pragma omp simd
  for (size_t i = 0; i < x.size(); ++i) codes[i] = int8_t(activation_code(x[i], scale));
  return scale;
}

ActQuantLinear::ActQuantLinear(LinearPtr inner)
    : inner_(std::move(inner)), int8_op_(integer_path(*inner_)),
      int8_max_tokens_(int8_op_ != nullptr ? int8_op_->int8_max_tokens() : 0) {}

void ActQuantLinear::forward(const float* x, int64_t n, float* y) const {
  if (int8_op_ != nullptr && n <= int8_max_tokens_) {
    int8_op_->forward_a8(x, n, y);
    return;
  }
  const int64_t in = in_features();
  // Reused across calls: a decode step runs this once per linear, too often for an allocation.
  thread_local std::vector<float> quantized;
  quantized.resize(size_t(n * in));
  float* out = quantized.data();
  parallel_for(n, n * in >= kParallelElements, Schedule::Static, [&](int64_t r) {
    quantize_activation_row({x + r * in, size_t(in)}, {out + r * in, size_t(in)});
  });
  inner_->forward(quantized.data(), n, y);
}

LinearPtr with_act_bits(LinearPtr op, int act_bits) {
  if (!valid_act_bits(act_bits)) fail("activation bits {} are not supported (8, or 16 for none)", act_bits);
  if (act_bits == kActBitsNone) return op;
  return std::make_unique<ActQuantLinear>(std::move(op));
}

}  // namespace moeq
