#include "model/moe.h"

#include <algorithm>

#include "kernels/ops.h"
#include "kernels/parallel.h"

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

// Decode steps give each expert a row or two: too little for a parallel matmul, so the experts
// themselves (and the shared expert) are spread over the threads instead, one fork per layer.
constexpr int64_t kExpertParallelTokens = 4;

// Expert e on the tokens routed to it: rows begin..begin+m of the slot-ordered output y. Their
// routing weights go along for observers (RowWeightsScope).
void run_routed_expert(const MoeWeights& w, const ExpertGroups& g, const LayerRouting& r, int64_t e, const float* x,
                       int64_t top_k, int64_t hidden, float* y, Workspace& ws) {
  const int64_t begin = g.start[size_t(e)], m = g.start[size_t(e + 1)] - begin;
  float* in = ws.get(Buf::Gathered, m * hidden);
  float* weights = ws.get(Buf::GatheredWeights, m);
  for (int64_t i = 0; i < m; ++i) {
    const int64_t slot = g.slot[size_t(begin + i)];
    std::copy_n(x + (slot / top_k) * hidden, hidden, in + i * hidden);
    weights[i] = r.weights[size_t(slot)];
  }
  const RowWeightsScope scope({weights, size_t(m)});
  w.experts[size_t(e)].forward(in, m, y + begin * hidden, ws);
}

// The shared expert's output, already multiplied by its sigmoid gate where it has one.
void run_shared_expert(const MoeWeights& w, const float* x, int64_t n, int64_t hidden, float* sh, Workspace& ws) {
  w.shared->forward(x, n, sh, ws);
  if (!w.shared_gate) return;
  float* g = ws.get(Buf::SharedGate, n);
  w.shared_gate(x, n, g);
  for (int64_t t = 0; t < n; ++t) {
    const float s = sigmoid(g[t]);
    for (int64_t d = 0; d < hidden; ++d) sh[t * hidden + d] *= s;
  }
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

  // A reference, not the thread_local itself: the worker threads below must see this thread's.
  thread_local ExpertGroups groups_storage;
  ExpertGroups& groups = groups_storage;
  group_by_expert(r, c.num_experts, groups);
  std::vector<int64_t> active;
  for (int64_t e = 0; e < c.num_experts; ++e)
    if (groups.start[size_t(e + 1)] > groups.start[size_t(e)]) active.push_back(e);
  float* y = ws.get(Buf::ExpertOut, n * k * h);
  float* sh = w.shared ? ws.get(Buf::Shared, n * h) : nullptr;
  // The shared expert goes first: it is the largest task (qwen2_moe's is twice a routed
  // expert), and a dynamic schedule that hands it out last leaves one thread idle behind it.
  const int64_t shared_tasks = w.shared ? 1 : 0, tasks = int64_t(active.size()) + shared_tasks;
  auto run_task = [&](int64_t i, Workspace& task_ws) {
    if (i < shared_tasks)
      run_shared_expert(w, x, n, h, sh, task_ws);
    else
      run_routed_expert(w, groups, r, active[size_t(i - shared_tasks)], x, k, h, y, task_ws);
  };
  // Forked, each thread needs its own scratch; serial, the caller's serves.
  const bool fork = n <= kExpertParallelTokens && tasks > 1 && can_fork();
  parallel_for(tasks, fork, Schedule::Dynamic, [&](int64_t i) {
    thread_local Workspace task_ws;
    run_task(i, fork ? task_ws : ws);
  });

  // Scatter-add in slot order (expert by expert), the same sum order on either path.
  std::fill_n(out, n * h, 0.0f);
  for (size_t i = 0; i < groups.slot.size(); ++i) {
    const int64_t s = groups.slot[i];
    const float weight = r.weights[size_t(s)];
    float* dst = out + (s / k) * h;
    const float* src = y + int64_t(i) * h;
    for (int64_t d = 0; d < h; ++d) dst[d] += src[d] * weight;
  }
  if (sh)
    for (int64_t i = 0; i < n * h; ++i) out[i] += sh[i];
}

}  // namespace moeq
