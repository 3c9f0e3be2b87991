// Scores loglikelihood requests on a language model, running every shared token prefix once.
//
// The requests' model inputs are arranged in a prefix tree (sorted token sequences): a context
// shared by several choices, the few-shot examples shared by every MMLU question of a subject,
// or the common first words of two PIQA solutions are run once, and each branch continues
// from a copy of the state (KV cache) where they part. Branches that end without further
// splits are run together as one batch. Results come back in the requests' order.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "eval/lm_backend.h"
#include "eval/request.h"

namespace moeq {

struct LoglikResult {
  double loglik = 0;    // sum of log p(continuation token | everything before it)
  bool greedy = true;   // every continuation token is the argmax of its logits
};

struct ScoreOptions {
  int64_t batch = 16;  // most branch continuations run in one forward pass
  // Called as requests complete: (requests done, tokens run so far).
  std::function<void(int64_t, int64_t)> progress;
};

struct ScoreStats {
  int64_t tokens = 0;         // tokens run through the model (shared prefixes once)
  int64_t request_tokens = 0; // sum of every request's input length (what lm-eval would run)
};

std::vector<LoglikResult> score_requests(LmBackend& lm, std::span<const TokenizedRequest> requests,
                                         const ScoreOptions& options, ScoreStats* stats = nullptr);

}  // namespace moeq
