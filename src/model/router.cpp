// The routers of the registry's RouterKind, each reproducing its transformers implementation
// in eval mode.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/ops.h"
#include "kernels/parallel.h"
#include "model/moe.h"

namespace moeq {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Indices of the k largest of v[0..n), largest first; ties go to the lower index.
void top_k(const float* v, int64_t n, int64_t k, int32_t* idx) {
  thread_local std::vector<int32_t> order;
  order.resize(size_t(n));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  std::copy_n(order.begin(), k, idx);
}

// DeepSeek group-limited choice: zero the experts of all but the topk_group best groups.
void limit_to_groups(const ModelConfig& c, float* choice) {
  const int64_t per = c.num_experts / c.n_group;
  std::vector<float> group_score(size_t(c.n_group));
  for (int64_t g = 0; g < c.n_group; ++g) {
    const float* s = choice + g * per;
    if (c.group_score == GroupScore::Max) {
      group_score[size_t(g)] = *std::max_element(s, s + per);
    } else {
      int32_t best[2];
      top_k(s, per, 2, best);
      group_score[size_t(g)] = s[best[0]] + s[best[1]];
    }
  }
  std::vector<int32_t> keep(size_t(c.topk_group));
  top_k(group_score.data(), c.n_group, c.topk_group, keep.data());
  for (int64_t g = 0; g < c.n_group; ++g)
    if (std::find(keep.begin(), keep.end(), int32_t(g)) == keep.end()) std::fill_n(choice + g * per, per, 0.0f);
}

void normalize_and_scale(const ModelConfig& c, float* w, float eps) {
  if (c.norm_topk_prob) {
    float sum = 0.0f;
    for (int64_t j = 0; j < c.top_k; ++j) sum += w[j];
    for (int64_t j = 0; j < c.top_k; ++j) w[j] /= sum + eps;
  }
  for (int64_t j = 0; j < c.top_k; ++j) w[j] *= float(c.routed_scaling_factor);
}

// Softmax over all experts, top-k of the probabilities (Mixtral, Qwen, OLMoE, DeepSeek-V2).
void softmax_topk(const ModelConfig& c, const float* logits, int32_t* idx, float* w) {
  std::vector<float> p(logits, logits + c.num_experts);
  softmax(p.data(), c.num_experts);
  std::vector<float> choice = p;
  if (c.group_score != GroupScore::None) limit_to_groups(c, choice.data());
  top_k(choice.data(), c.num_experts, c.top_k, idx);
  for (int64_t j = 0; j < c.top_k; ++j) w[j] = p[size_t(idx[j])];
  normalize_and_scale(c, w, 0.0f);
}

// Top-k of the logits, softmax over just those (GraniteMoE).
void topk_softmax(const ModelConfig& c, const float* logits, int32_t* idx, float* w) {
  top_k(logits, c.num_experts, c.top_k, idx);
  for (int64_t j = 0; j < c.top_k; ++j) w[j] = logits[idx[j]];
  softmax(w, c.top_k);
}

// Sigmoid scores; the choice adds e_score_correction_bias, the weights do not (DeepSeek-V3).
void sigmoid_bias(const ModelConfig& c, const float* logits, const float* bias, int32_t* idx, float* w) {
  std::vector<float> s(size_t(c.num_experts)), choice(size_t(c.num_experts));
  for (int64_t e = 0; e < c.num_experts; ++e) {
    s[size_t(e)] = sigmoid(logits[e]);
    choice[size_t(e)] = s[size_t(e)] + bias[e];
  }
  limit_to_groups(c, choice.data());
  top_k(choice.data(), c.num_experts, c.top_k, idx);
  for (int64_t j = 0; j < c.top_k; ++j) w[j] = s[size_t(idx[j])];
  normalize_and_scale(c, w, 1e-20f);
}

// PhiMoE sparsemixer, eval mode: pick the best expert; its weight is its softmax probability
// among the experts whose logit is within a relative 2·jitter_eps of the best. Then the same
// with the first pick removed.
void sparse_mixer(const ModelConfig& c, const float* logits, int32_t* idx, float* w) {
  const int64_t n = c.num_experts;
  const float eps2 = 2.0f * float(c.router_jitter);
  std::vector<float> scores(logits, logits + n);
  std::vector<float> masked(static_cast<size_t>(n));
  for (int pick = 0; pick < 2; ++pick) {
    int32_t best;
    top_k(scores.data(), n, 1, &best);
    const float top = scores[size_t(best)];
    for (int64_t e = 0; e < n; ++e) {
      // The threshold compares against the original logits, as transformers does.
      const float factor = std::max(std::abs(logits[e]), top);
      masked[size_t(e)] = (top - logits[e]) / factor > eps2 ? kNegInf : scores[size_t(e)];
    }
    softmax(masked.data(), n);
    idx[pick] = best;
    w[pick] = masked[size_t(best)];
    scores[size_t(best)] = kNegInf;
  }
}

}  // namespace

void route_tokens(const ModelConfig& c, const std::vector<float>& correction_bias, LayerRouting& r) {
  const int64_t k = c.top_k, n = r.tokens, e = c.num_experts;
  r.top_k = k;
  r.chosen.resize(size_t(n * k));
  r.weights.resize(size_t(n * k));
  parallel_for(n, n * e >= kParallelElements, Schedule::Static, [&](int64_t t) {
    const float* lg = r.logits.data() + t * e;
    int32_t* idx = r.chosen.data() + t * k;
    float* w = r.weights.data() + t * k;
    switch (c.arch.router) {
      case RouterKind::SoftmaxTopK: softmax_topk(c, lg, idx, w); break;
      case RouterKind::TopKSoftmax: topk_softmax(c, lg, idx, w); break;
      case RouterKind::SigmoidBias: sigmoid_bias(c, lg, correction_bias.data(), idx, w); break;
      case RouterKind::SparseMixer: sparse_mixer(c, lg, idx, w); break;
    }
  });
}

}  // namespace moeq
