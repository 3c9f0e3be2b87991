#include "eval/mmlu.h"

#include <algorithm>

#include "core/error.h"
#include "eval/data_files.h"

namespace moeq {

namespace fs = std::filesystem;

std::vector<std::string> mmlu_subjects(const fs::path& data_dir) {
  const fs::path test_dir = data_dir / "mmlu/test";
  constexpr std::string_view suffix = "_test.csv";
  std::error_code ec;
  std::vector<std::string> subjects;
  for (const auto& entry : fs::directory_iterator(test_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() > suffix.size() && name.ends_with(suffix))
      subjects.push_back(name.substr(0, name.size() - suffix.size()));
  }
  if (ec) fail("{}: cannot list the MMLU test folder: {}", test_dir.string(), ec.message());
  if (subjects.empty()) fail("{}: no <subject>_test.csv files", test_dir.string());
  std::sort(subjects.begin(), subjects.end());
  return subjects;
}

std::vector<MmluQuestion> read_mmlu_csv(const fs::path& path) {
  std::vector<MmluQuestion> questions;
  std::vector<std::vector<std::string>> rows = read_csv(path);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<std::string>& row = rows[i];
    if (row.size() != 6)
      fail("{}: record {} has {} fields, expected 6 (question, A, B, C, D, answer)", path.string(), i + 1,
           row.size());
    const std::string& answer = row[5];
    if (answer.size() != 1 || answer[0] < 'A' || answer[0] > 'D')
      fail("{}: record {}: field 'answer' is '{}', expected A-D", path.string(), i + 1, answer);
    questions.push_back({std::move(row[0]), {row[1], row[2], row[3], row[4]}, answer[0] - 'A'});
  }
  return questions;
}

std::vector<Doc> load_mmlu(const fs::path& data_dir, int shots, int64_t limit) {
  std::vector<Doc> docs;
  for (const std::string& subject : mmlu_subjects(data_dir)) {
    std::vector<MmluQuestion> examples;
    if (shots > 0) {
      fs::path dev = data_dir / "mmlu/dev" / (subject + "_dev.csv");
      examples = read_mmlu_csv(dev);
      if (examples.size() < size_t(shots))
        fail("{}: {} dev questions, {}-shot needs {}", dev.string(), examples.size(), shots, shots);
      examples.resize(size_t(shots));
    }
    std::vector<MmluQuestion> test = read_mmlu_csv(data_dir / "mmlu/test" / (subject + "_test.csv"));
    if (limit >= 0 && test.size() > size_t(limit)) test.resize(size_t(limit));
    for (const MmluQuestion& q : test) {
      std::string context = mmlu_context(subject, examples, q);
      Doc doc;
      doc.gold = q.answer;
      for (char letter : std::string_view("ABCD")) doc.choices.push_back({context, fmt::format(" {}", letter)});
      docs.push_back(std::move(doc));
    }
  }
  return docs;
}

}  // namespace moeq
