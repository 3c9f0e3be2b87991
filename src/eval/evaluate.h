// `moeq eval` as a library call: windowed perplexity of text files and zero-/few-shot tasks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "eval/report.h"

namespace moeq {

class Model;
class Tokenizer;

struct EvalOptions {
  std::vector<std::filesystem::path> ppl_files;  // read as UTF-8, tokenized once as one string
  std::vector<std::string> tasks;                // names as in known_tasks()
  std::filesystem::path data_dir;                // ../shared/data/eval layout
  int64_t limit = -1;                            // docs per task (per MMLU subject); <0: all
  int64_t max_length = 512;                      // perplexity window and task input limit
  int64_t batch = 16;                            // task requests per forward pass
};

// Loads every task before running any (a bad name or file fails fast), then runs perplexities
// and tasks in order. Throws moeq::Error naming the file/field on bad input.
EvalReport evaluate(Model& model, const Tokenizer& tokenizer, const EvalOptions& options);

}  // namespace moeq
