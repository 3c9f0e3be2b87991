// Zero-/few-shot evaluation tasks as lm-evaluation-harness defines them: each document becomes
// loglikelihood requests (context, continuation), one per answer choice, and a metric over them.
// The prompt texts follow lm-eval's task YAMLs and utils.py exactly (see task_text.h); the data
// comes from ../shared/data/eval in its original formats.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moeq {

// One loglikelihood request: the model is scored on `continuation` following `context`.
struct Choice {
  std::string context;
  std::string continuation;
};

// A multiple-choice document (one choice for LAMBADA) and the index of the right choice.
struct Doc {
  std::vector<Choice> choices;
  int gold = 0;
};

enum class TaskMetric : uint8_t {
  MultipleChoice,  // acc = argmax of summed loglik; acc_norm = argmax of loglik / continuation bytes
  Lambada,         // one request per doc: acc = greedy match of the continuation, ppl = exp(-mean loglik)
};

struct Task {
  std::string name;
  TaskMetric metric = TaskMetric::MultipleChoice;
  bool reports_acc_norm = false;  // lm-eval reports acc_norm for piqa, arc, hellaswag, openbookqa
  std::vector<Doc> docs;
};

struct TaskOptions {
  std::filesystem::path data_dir;  // ../shared/data/eval layout
  int64_t limit = -1;              // first N docs of each task (of each MMLU subject, as lm-eval); <0: all
};

// Every task `load_task` knows, and the set `moeq eval` runs when --tasks is not given.
std::span<const std::string_view> known_tasks();
std::span<const std::string_view> default_tasks();

// Reads the task's data files and builds its documents. Throws moeq::Error for an unknown name
// or a missing, empty or malformed file (naming the file, line and field).
Task load_task(std::string_view name, const TaskOptions& options);

}  // namespace moeq
