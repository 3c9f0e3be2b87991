#include "model/moe.h"

#include <algorithm>

#include "kernels/ops.h"

namespace moeq {
namespace {

// Token slots grouped by expert (a counting sort of the routing): expert e's slots are
// slot[start[e] .. start[e+1]), each slot = token · top_k + j.
struct ExpertGroups {
  std::vector<int64_t> start;
  std::vector<int64_t> slot;
};

void group_by_expert(const LayerRouting& r, int64_t experts, ExpertGroups& g) {
  g.start.assign(size_t(experts + 1), 0);
  for (int32_t e : r.chosen) ++g.start[size_t(e) + 1];
  for (int64_t e = 0; e < experts; ++e) g.start[size_t(e + 1)] += g.start[size_t(e)];
  g.slot.resize(r.chosen.size());
  std::vector<int64_t> fill(g.start.begin(), g.start.end() - 1);
  for (size_t s = 0; s < r.chosen.size(); ++s) g.slot[size_t(fill[size_t(r.chosen[s])]++)] = int64_t(s);
}

}  // namespace

void moe_forward(const MoeWeights& w, const ModelConfig& c, const float* x, int64_t n, float* out, Workspace& ws,
                 LayerRouting& r) {
  const int64_t h = c.hidden_size, k = c.top_k;
  r.tokens = n;
  r.experts = c.num_experts;
  r.logits.resize(size_t(n * c.num_experts));
  w.router(x, n, r.logits.data());
  route_tokens(c, w.correction_bias, r);

  thread_local ExpertGroups groups;
  group_by_expert(r, c.num_experts, groups);
  std::fill_n(out, n * h, 0.0f);
  for (int64_t e = 0; e < c.num_experts; ++e) {
    const int64_t begin = groups.start[size_t(e)], m = groups.start[size_t(e + 1)] - begin;
    if (m == 0) continue;
    float* in = ws.get(Buf::Gathered, m * h);
    float* y = ws.get(Buf::ExpertOut, m * h);
    for (int64_t i = 0; i < m; ++i) std::copy_n(x + (groups.slot[size_t(begin + i)] / k) * h, h, in + i * h);
    w.experts[size_t(e)].forward(in, m, y, ws);
    for (int64_t i = 0; i < m; ++i) {
      const int64_t s = groups.slot[size_t(begin + i)];
      const float weight = r.weights[size_t(s)];
      float* dst = out + (s / k) * h;
      const float* src = y + i * h;
      for (int64_t d = 0; d < h; ++d) dst[d] += src[d] * weight;
    }
  }
  if (!w.shared) return;
  float* sh = ws.get(Buf::Shared, n * h);
  w.shared->forward(x, n, sh, ws);
  if (w.shared_gate) {
    float* g = ws.get(Buf::SharedGate, n);
    w.shared_gate(x, n, g);
    for (int64_t t = 0; t < n; ++t) {
      const float s = sigmoid(g[t]);
      for (int64_t d = 0; d < h; ++d) out[t * h + d] += s * sh[t * h + d];
    }
  } else {
    for (int64_t i = 0; i < n * h; ++i) out[i] += sh[i];
  }
}

}  // namespace moeq
