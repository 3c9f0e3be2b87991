#include "model/moe.h"

#include <omp.h>

#include <algorithm>
#include <span>

#include "kernels/ops.h"
#include "kernels/parallel.h"

namespace moeq {
namespace {

// Token slots grouped by expert (a counting sort of the routing): expert e's slots are
// slot[start[e] .. start[e+1]), each slot = token · top_k + j, and row i of the slot-ordered
// expert output holds slot[i]. token_rows[t · top_k ..] are token t's rows, ascending.
struct ExpertGroups {
  std::vector<int64_t> start;
  std::vector<int64_t> slot;
  std::vector<int64_t> token_rows;
};

void group_by_expert(const LayerRouting& r, int64_t experts, ExpertGroups& g) {
  g.start.assign(size_t(experts + 1), 0);
  for (int32_t e : r.chosen) ++g.start[size_t(e) + 1];
  for (int64_t e = 0; e < experts; ++e) g.start[size_t(e + 1)] += g.start[size_t(e)];
  g.slot.resize(r.chosen.size());
  std::vector<int64_t> fill(g.start.begin(), g.start.end() - 1);
  for (size_t s = 0; s < r.chosen.size(); ++s) g.slot[size_t(fill[size_t(r.chosen[s])]++)] = int64_t(s);
  const int64_t k = r.top_k;
  g.token_rows.resize(g.slot.size());
  std::vector<int64_t> filled(size_t(r.tokens), 0);
  for (size_t i = 0; i < g.slot.size(); ++i) {
    const int64_t t = g.slot[i] / k;
    g.token_rows[size_t(t * k + filled[size_t(t)]++)] = int64_t(i);
  }
}

// One expert to run: a routed one, or the shared expert (kShared); cost = rows × FFN width.
constexpr int64_t kShared = -1;
struct ExpertTask {
  int64_t expert;
  int64_t cost;
};

// The experts that received tokens, and the shared expert, largest first: a dynamic schedule
// that hands out a large task last leaves the other threads idle behind it.
std::vector<ExpertTask> expert_tasks(const MoeWeights& w, const ExpertGroups& g, int64_t n) {
  std::vector<ExpertTask> tasks;
  if (w.shared) tasks.push_back({kShared, n * w.shared->gate.out_features()});
  for (size_t e = 0; e < w.experts.size(); ++e)
    if (const int64_t rows = g.start[e + 1] - g.start[e]; rows > 0)
      tasks.push_back({int64_t(e), rows * w.experts[e].gate.out_features()});
  std::stable_sort(tasks.begin(), tasks.end(), [](const ExpertTask& a, const ExpertTask& b) { return a.cost > b.cost; });
  return tasks;
}

// Decode steps give each expert a row or two: too little for a parallel matmul.
constexpr int64_t kExpertParallelTokens = 4;

// Whether whole experts go to the threads (each expert's matmuls then run on one thread)
// instead of every matmul being split over all of them. Always for decode steps. For longer
// inputs too when no expert is more than a thread's share of the work: split matmuls cost a
// fork and a barrier per projection, and the gathers and activations between them run on one
// thread while the others wait (on 2 cores a third of a prefill was that wait).
bool experts_per_thread(std::span<const ExpertTask> tasks, int64_t n) {
  if (tasks.size() < 2 || !can_fork()) return false;
  if (n <= kExpertParallelTokens) return true;
  int64_t total = 0;
  for (const ExpertTask& t : tasks) total += t.cost;
  return tasks.front().cost * omp_get_max_threads() <= total;
}

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
  const std::vector<ExpertTask> tasks = expert_tasks(w, groups, n);
  float* y = ws.get(Buf::ExpertOut, n * k * h);
  float* sh = w.shared ? ws.get(Buf::Shared, n * h) : nullptr;
  // Forked, each thread needs its own scratch; serial, the caller's serves.
  const bool fork = experts_per_thread(tasks, n);
  parallel_for(int64_t(tasks.size()), fork, Schedule::Dynamic, [&](int64_t i) {
    thread_local Workspace task_ws;
    Workspace& task = fork ? task_ws : ws;
    if (const int64_t e = tasks[size_t(i)].expert; e == kShared)
      run_shared_expert(w, x, n, h, sh, task);
    else
      run_routed_expert(w, groups, r, e, x, k, h, y, task);
  });

  // Each token's weighted expert outputs in row order (expert by expert), then the shared
  // expert's: one sum order whatever ran where.
  parallel_for(n, n * k * h >= kParallelElements, Schedule::Static, [&](int64_t t) {
    float* dst = out + t * h;
    std::fill_n(dst, h, 0.0f);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t i = groups.token_rows[size_t(t * k + j)];
      const float weight = r.weights[size_t(groups.slot[size_t(i)])];
      const float* src = y + i * h;
      for (int64_t d = 0; d < h; ++d) dst[d] += src[d] * weight;
    }
    if (sh)
      for (int64_t d = 0; d < h; ++d) dst[d] += sh[t * h + d];
  });
}

}  // namespace moeq
