#include "model/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "core/error.h"
#include "model/kv_cache.h"

namespace moeq {

Sampler::Sampler(const SamplingOptions& options) : opt_(options), state_(options.seed) {
  if (opt_.temperature < 0.0f) fail("sampling: temperature must be ≥ 0, got {}", opt_.temperature);
  if (!(opt_.top_p > 0.0f && opt_.top_p <= 1.0f)) fail("sampling: top_p must be in (0, 1], got {}", opt_.top_p);
}

int32_t Sampler::next(const float* logits, int64_t vocab) {
  if (opt_.temperature == 0.0f) return int32_t(std::max_element(logits, logits + vocab) - logits);
  const float mx = *std::max_element(logits, logits + vocab);
  probs_.resize(size_t(vocab));
  double total = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    probs_[size_t(i)] = {std::exp((logits[i] - mx) / opt_.temperature), int32_t(i)};
    total += probs_[size_t(i)].first;
  }
  std::sort(probs_.begin(), probs_.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  // Nucleus: the shortest prefix whose mass reaches top_p.
  size_t keep = 0;
  double mass = 0.0;
  while (keep < probs_.size() && (keep == 0 || mass < opt_.top_p * total)) mass += probs_[keep++].first;
  std::mt19937_64 rng(state_++);
  double u = std::uniform_real_distribution<double>(0.0, mass)(rng);
  for (size_t i = 0; i < keep; ++i) {
    u -= probs_[i].first;
    if (u <= 0.0) return probs_[i].second;
  }
  return probs_[keep - 1].second;
}

Generation generate(Model& model, std::span<const int32_t> prompt, int64_t max_new, const SamplingOptions& opt) {
  if (prompt.empty()) fail("generate: the prompt is empty");
  using clock = std::chrono::steady_clock;
  Generation g;
  Sampler sampler(opt);
  const int64_t vocab = model.vocab_size();
  auto cache = model.new_cache(1, int64_t(prompt.size()) + std::max<int64_t>(max_new, 1));
  auto t0 = clock::now();
  Tensor logits = model.forward(prompt, 1, int64_t(prompt.size()), cache.get());
  auto t1 = clock::now();
  g.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  const float* last = logits.ptr() + (int64_t(prompt.size()) - 1) * vocab;
  for (int64_t i = 0; i < max_new; ++i) {
    const int32_t tok = sampler.next(last, vocab);
    g.tokens.push_back(tok);
    if (opt.stop_token && tok == *opt.stop_token) break;
    if (i + 1 == max_new) break;
    logits = model.forward(std::span<const int32_t>(&g.tokens.back(), 1), 1, 1, cache.get());
    last = logits.ptr();
  }
  g.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return g;
}

}  // namespace moeq
