// Per-task metrics from per-choice loglikelihoods, as lm-evaluation-harness aggregates them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "eval/loglikelihood.h"
#include "eval/task.h"

namespace moeq {

struct TaskResult {
  std::string name;
  int64_t n = 0;                  // documents
  double acc = 0;
  std::optional<double> acc_norm; // tasks where lm-eval reports it
  std::optional<double> ppl;      // LAMBADA: exp(-mean loglik of the target word)
};

// `results` holds one entry per choice, doc by doc, in the order of task.docs[i].choices.
// Multiple choice: acc = argmax of summed loglik (first maximum, like np.argmax) is the gold
// choice; acc_norm = the same on loglik / UTF-8 bytes of the continuation string. That is the
// references' rule (../shared/README.md), which moeq matches to the document; lm-eval 0.4's
// process_results divides by len(choice) in characters, without the leading delimiter, which
// for ASCII choices is one less and can pick another choice where two are close.
// LAMBADA: acc = mean of is_greedy; ppl = exp(-mean loglik).
TaskResult task_result(const Task& task, std::span<const LoglikResult> results);

}  // namespace moeq
