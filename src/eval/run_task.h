// One task end to end: documents → encoded requests → prefix-shared scoring → metrics.
#pragma once

#include <vector>

#include "eval/loglikelihood.h"
#include "eval/request.h"
#include "eval/task.h"
#include "eval/task_metrics.h"

namespace moeq {

struct TaskRun {
  TaskResult result;
  std::vector<LoglikResult> choices;  // per choice, doc by doc (task.docs[i].choices order)
  ScoreStats stats;
  double seconds = 0;
};

// Encodes every choice of every doc, scores them (progress bar on a terminal; `options.progress`
// is replaced) and aggregates the task's metrics.
TaskRun run_task(LmBackend& lm, const TextEncoder& encode, const Task& task, const EncodeOptions& encoding,
                 const ScoreOptions& options);

// Every choice of every doc as requests, in the order task_result expects.
std::vector<TokenizedRequest> encode_task(const TextEncoder& encode, const Task& task, const EncodeOptions& encoding);

}  // namespace moeq
