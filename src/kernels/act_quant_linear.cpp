#include "kernels/act_quant_linear.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace moeq {

bool valid_act_bits(int act_bits) { return act_bits == 8 || act_bits == kActBitsNone; }

void quantize_activation_row(std::span<const float> x, std::span<float> out) {
  float absmax = 0.0f;
  for (float v : x) absmax = std::max(absmax, std::fabs(v));
  if (absmax == 0.0f) {
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
  const float scale = absmax / 127.0f;
  // Division, as the definition writes it (and PyTorch computes it), not a reciprocal.
  for (size_t i = 0; i < x.size(); ++i) out[i] = std::clamp(std::nearbyint(x[i] / scale), -127.0f, 127.0f) * scale;
}

ActQuantLinear::ActQuantLinear(LinearPtr inner) : inner_(std::move(inner)) {}

void ActQuantLinear::forward(const float* x, int64_t n, float* y) const {
  const int64_t in = in_features();
  // Reused across calls: a decode step runs this once per linear, too often for an allocation.
  thread_local std::vector<float> quantized;
  quantized.resize(size_t(n * in));
  for (int64_t r = 0; r < n; ++r)
    quantize_activation_row({x + r * in, size_t(in)}, {quantized.data() + r * in, size_t(in)});
  inner_->forward(quantized.data(), n, y);
}

LinearPtr with_act_bits(LinearPtr op, int act_bits) {
  if (!valid_act_bits(act_bits)) fail("activation bits {} are not supported (8, or 16 for none)", act_bits);
  if (act_bits == kActBitsNone) return op;
  return std::make_unique<ActQuantLinear>(std::move(op));
}

}  // namespace moeq
