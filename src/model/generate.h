// Autoregressive generation with the KV cache: one prefill of the prompt, then one token per
// step, greedy or sampled (temperature, nucleus top-p).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "model/model.h"

namespace moeq {

struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy (argmax)
  float top_p = 1.0f;        // keep the smallest set of tokens whose probability reaches top_p
  uint64_t seed = 0;
  std::optional<int32_t> stop_token{};  // generation ends after emitting it
};

struct Generation {
  std::vector<int32_t> tokens;  // generated ids, without the prompt
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;  // all steps after the prefill
};

Generation generate(Model& model, std::span<const int32_t> prompt, int64_t max_new_tokens,
                    const SamplingOptions& options = {});

// The next token from one row of logits.
class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  int32_t next(const float* logits, int64_t vocab);

 private:
  SamplingOptions opt_;
  uint64_t state_;
  std::vector<std::pair<float, int32_t>> probs_;
};

}  // namespace moeq
