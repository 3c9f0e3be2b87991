// The results of `moeq eval`: perplexities and task metrics, as JSON and as a Markdown table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/task_metrics.h"

namespace moeq {

struct PerplexityEntry {
  std::string file;  // as given on the command line
  double ppl = 0, nll_sum = 0;
  int64_t predicted = 0, tokens = 0, windows = 0;
};

struct EvalReport {
  std::vector<PerplexityEntry> ppl;
  std::vector<TaskResult> tasks;
  double seconds = 0;  // wall time of the whole evaluation
  int64_t tokens = 0;  // tokens run through the model
};

// {"ppl": {FILE: {"ppl","nll_sum","predicted","tokens","windows"}},
//  "tasks": {NAME: {"n","acc"[,"acc_norm"][,"ppl"]}}, "seconds", "tokens_per_second"}
nlohmann::ordered_json report_json(const EvalReport& report);

// One table for perplexities, one for tasks (accuracies in percent).
std::string report_markdown(const EvalReport& report);

}  // namespace moeq
