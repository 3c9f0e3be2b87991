#include "model/blocks.h"

#include <algorithm>

#include "core/int_math.h"
#include "kernels/ops.h"
#include "kernels/parallel.h"

namespace moeq {

void Linear::operator()(const float* x, int64_t n, float* y) const {
  op->forward(x, n, y);
  if (bias.empty()) return;
  const int64_t out = int64_t(bias.size());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < out; ++j) y[r * out + j] += bias[size_t(j)];
}

void Norm::apply(float* x, int64_t rows) const {
  // Rows are independent: a prefill's are split over the threads, kRows at a time.
  constexpr int64_t kRows = 64;
  const int64_t d = dim();
  parallel_for(ceil_div(rows, kRows), rows * d >= kParallelElements, Schedule::Static, [&](int64_t chunk) {
    const int64_t r0 = chunk * kRows, m = std::min(kRows, rows - r0);
    if (kind == NormKind::LayerNorm)
      layer_norm(x + r0 * d, m, d, weight.data(), bias.data(), eps);
    else
      rms_norm(x + r0 * d, m, d, weight.data(), eps);
  });
}

void Mlp::forward(const float* x, int64_t n, float* out, Workspace& ws) const {
  const int64_t f = gate.out_features();
  float* g = ws.get(Buf::Gate, n * f);
  float* u = ws.get(Buf::Up, n * f);
  gate(x, n, g);
  up(x, n, u);
  silu_mul(g, u, n * f);
  down(g, n, out);
}

}  // namespace moeq
