#include "model/blocks.h"

#include "kernels/ops.h"

namespace moeq {

void Linear::operator()(const float* x, int64_t n, float* y) const {
  op->forward(x, n, y);
  if (bias.empty()) return;
  const int64_t out = int64_t(bias.size());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < out; ++j) y[r * out + j] += bias[size_t(j)];
}

void Norm::apply(float* x, int64_t rows) const {
  if (kind == NormKind::LayerNorm)
    layer_norm(x, rows, dim(), weight.data(), bias.data(), eps);
  else
    rms_norm(x, rows, dim(), weight.data(), eps);
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
