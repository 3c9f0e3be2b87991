#include "eval/run_task.h"

#include <chrono>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "core/progress.h"

namespace moeq {

std::vector<TokenizedRequest> encode_task(const TextEncoder& encode, const Task& task,
                                          const EncodeOptions& encoding) {
  // The choices of a doc usually share their context: encode each distinct text of a doc once.
  std::unordered_map<std::string, std::vector<int32_t>> seen;
  TextEncoder memo = [&](std::string_view text) {
    auto it = seen.find(std::string(text));
    if (it == seen.end()) it = seen.emplace(std::string(text), encode(text)).first;
    return it->second;
  };
  std::vector<TokenizedRequest> requests;
  for (size_t d = 0; d < task.docs.size(); ++d) {
    seen.clear();
    for (const Choice& c : task.docs[d].choices) {
      try {
        requests.push_back(encode_request(memo, c.context, c.continuation, encoding));
      } catch (const Error& e) {
        fail("task '{}', document {}: {}", task.name, d, e.what());
      }
    }
  }
  return requests;
}

TaskRun run_task(LmBackend& lm, const TextEncoder& encode, const Task& task, const EncodeOptions& encoding,
                 const ScoreOptions& options) {
  auto start = std::chrono::steady_clock::now();
  std::vector<TokenizedRequest> requests = encode_task(encode, task, encoding);
  TaskRun run;
  {
    ProgressBar bar(task.name, int64_t(requests.size()));
    ScoreOptions with_bar = options;
    with_bar.progress = [&bar](int64_t done, int64_t tokens) { bar.update(done, tokens); };
    run.choices = score_requests(lm, requests, with_bar, &run.stats);
  }
  run.result = task_result(task, run.choices);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

}  // namespace moeq
