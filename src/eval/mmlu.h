// MMLU (hendrycks test) from its data.tar CSV layout: mmlu/{dev,test}/<subject>_{dev,test}.csv.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "eval/task.h"
#include "eval/task_text.h"

namespace moeq {

// Subjects with a test file, sorted (lm-eval's 57 mmlu_* subtasks).
std::vector<std::string> mmlu_subjects(const std::filesystem::path& data_dir);

// Rows of question, A, B, C, D, answer letter.
std::vector<MmluQuestion> read_mmlu_csv(const std::filesystem::path& path);

// Every subject's test questions in order, each with the first `shots` dev questions of its
// subject as examples (lm-eval's first_n sampler); choices " A".." D". `limit` caps each subject.
std::vector<Doc> load_mmlu(const std::filesystem::path& data_dir, int shots, int64_t limit);

}  // namespace moeq
