// One loader per task: the original data file(s) in ../shared/data/eval → lm-eval requests.
#include <algorithm>
#include <array>
#include <charconv>
#include <ranges>
#include <utility>

#include "core/error.h"
#include "eval/data_files.h"
#include "eval/mmlu.h"
#include "eval/task.h"
#include "eval/task_text.h"

namespace moeq {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// target_delimiter in lm-eval: put between the context and every choice.
constexpr std::string_view kDelimiter = " ";

Doc shared_context_doc(const std::string& context, const std::vector<std::string>& choices, int gold) {
  Doc doc;
  doc.gold = gold;
  for (const std::string& c : choices) doc.choices.push_back({context, fmt::format("{}{}", kDelimiter, c)});
  return doc;
}

int parse_int(std::string_view text, const fs::path& path, size_t line, std::string_view what) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    fail("{}:{}: {} '{}' is not an integer", path.string(), line, what, text);
  return value;
}

void check_gold(const Doc& doc, const fs::path& path, int line, std::string_view field) {
  if (doc.gold < 0 || size_t(doc.gold) >= doc.choices.size())
    fail("{}:{}: field '{}' points outside the {} choices", path.string(), line, field, doc.choices.size());
}

std::vector<Doc> load_piqa(const fs::path& dir) {
  fs::path data = dir / "piqa/valid.jsonl", labels_path = dir / "piqa/valid-labels.lst";
  std::vector<JsonRecord> records = read_jsonl(data);
  std::vector<std::string> labels = read_lines(labels_path);
  if (labels.size() != records.size())
    fail("{}: {} labels for {} records in {}", labels_path.string(), labels.size(), records.size(),
         data.string());
  std::vector<Doc> docs;
  for (size_t i = 0; i < records.size(); ++i) {
    const JsonRecord& r = records[i];
    docs.push_back(shared_context_doc(question_answer_prompt(json_string(r, "goal", data)),
                                      {json_string(r, "sol1", data), json_string(r, "sol2", data)},
                                      parse_int(labels[i], labels_path, i + 1, "label")));
    check_gold(docs.back(), labels_path, int(i + 1), "label");
  }
  return docs;
}

// ARC and OpenBookQA share the AI2 layout: question.stem, question.choices[{text,label}], answerKey.
std::vector<Doc> load_ai2_mc(const fs::path& data, bool question_answer_format) {
  std::vector<Doc> docs;
  for (const JsonRecord& r : read_jsonl(data)) {
    const json& question = json_field(r, "question", data);
    auto stem = question.find("stem");
    auto choices = question.find("choices");
    if (stem == question.end() || !stem->is_string())
      fail("{}:{}: field 'question.stem' is missing or not a string", data.string(), r.line);
    if (choices == question.end() || !choices->is_array() || choices->empty())
      fail("{}:{}: field 'question.choices' is missing or empty", data.string(), r.line);
    std::string answer(py_strip(json_string(r, "answerKey", data)));
    std::vector<std::string> texts;
    int gold = -1;
    for (const json& c : *choices) {
      if (!c.contains("text") || !c.contains("label") || !c["text"].is_string() || !c["label"].is_string())
        fail("{}:{}: field 'question.choices' needs string 'text' and 'label'", data.string(), r.line);
      if (c["label"].get<std::string>() == answer) gold = int(texts.size());
      texts.push_back(c["text"].get<std::string>());
    }
    if (gold < 0) fail("{}:{}: field 'answerKey' '{}' names no choice label", data.string(), r.line, answer);
    std::string s = stem->get<std::string>();
    docs.push_back(shared_context_doc(question_answer_format ? question_answer_prompt(s) : s, texts, gold));
  }
  return docs;
}

std::vector<Doc> load_winogrande(const fs::path& dir) {
  fs::path data = dir / "winogrande/dev.jsonl";
  std::vector<Doc> docs;
  for (const JsonRecord& r : read_jsonl(data)) {
    std::string sentence = json_string(r, "sentence", data);
    if (sentence.find('_') == std::string::npos)
      fail("{}:{}: field 'sentence' has no '_' blank", data.string(), r.line);
    std::string answer = json_string(r, "answer", data);
    Doc doc;
    doc.choices = {winogrande_choice(sentence, json_string(r, "option1", data)),
                   winogrande_choice(sentence, json_string(r, "option2", data))};
    doc.gold = parse_int(answer, data, size_t(r.line), "answer") - 1;
    check_gold(doc, data, r.line, "answer");
    docs.push_back(std::move(doc));
  }
  return docs;
}

std::vector<Doc> load_copa(const fs::path& dir) {
  fs::path data = dir / "copa/val.jsonl";
  std::vector<Doc> docs;
  for (const JsonRecord& r : read_jsonl(data)) {
    std::string question = json_string(r, "question", data);
    if (question != "cause" && question != "effect")
      fail("{}:{}: field 'question' is '{}', expected 'cause' or 'effect'", data.string(), r.line, question);
    const json& label = json_field(r, "label", data);
    if (!label.is_number_integer()) fail("{}:{}: field 'label' is not an integer", data.string(), r.line);
    // lm-eval's copa doc_to_choice already starts each choice with " ", and the target
    // delimiter adds another: the continuation really is "  " + choice (kept for parity).
    docs.push_back(shared_context_doc(copa_context(json_string(r, "premise", data), question),
                                      {copa_choice(json_string(r, "choice1", data)),
                                       copa_choice(json_string(r, "choice2", data))},
                                      label.get<int>()));
    check_gold(docs.back(), data, r.line, "label");
  }
  return docs;
}

// llama.cpp's HellaSwag file: 6 lines per task (activity_label + ": " + ctx, gold, 4 endings),
// already cleaned by its extractor; lm-eval's preprocess() is applied on top, as lm-eval does
// to the raw fields. The original's ctx_b capitalization is lost in this file (SOURCES.md).
std::vector<Doc> load_hellaswag(const fs::path& dir) {
  fs::path data = dir / "hellaswag/hellaswag_val_full.txt";
  std::vector<std::string> lines = read_lines(data);
  if (lines.size() % 6 != 0)
    fail("{}: {} lines is not a multiple of 6 (context, label, 4 endings)", data.string(), lines.size());
  std::vector<Doc> docs;
  for (size_t i = 0; i < lines.size(); i += 6) {
    std::vector<std::string> endings;
    for (size_t j = 2; j < 6; ++j) endings.push_back(hellaswag_preprocess(lines[i + j]));
    docs.push_back(shared_context_doc(hellaswag_preprocess(lines[i]), endings,
                                      parse_int(lines[i + 1], data, i + 2, "label")));
    check_gold(docs.back(), data, int(i + 2), "label");
  }
  return docs;
}

std::vector<Doc> load_lambada(const fs::path& dir) {
  fs::path data = dir / "lambada/lambada_test.jsonl";
  std::vector<Doc> docs;
  for (const JsonRecord& r : read_jsonl(data)) docs.push_back({{lambada_choice(json_string(r, "text", data))}, 0});
  return docs;
}

std::vector<Doc> load_arc_easy(const fs::path& dir) { return load_ai2_mc(dir / "arc/ARC-Easy-Test.jsonl", true); }
std::vector<Doc> load_arc_challenge(const fs::path& dir) {
  return load_ai2_mc(dir / "arc/ARC-Challenge-Test.jsonl", true);
}
std::vector<Doc> load_openbookqa(const fs::path& dir) { return load_ai2_mc(dir / "openbookqa/test.jsonl", false); }

// The first `limit` docs (all when limit < 0).
template <std::vector<Doc> (*Load)(const fs::path&)>
std::vector<Doc> first_docs(const fs::path& dir, int64_t limit) {
  std::vector<Doc> docs = Load(dir);
  if (limit >= 0 && docs.size() > size_t(limit)) docs.resize(size_t(limit));
  return docs;
}

// MMLU applies the limit per subject, as lm-eval limits each of its subtasks.
template <int Shots>
std::vector<Doc> mmlu_docs(const fs::path& dir, int64_t limit) {
  return load_mmlu(dir, Shots, limit);
}

struct TaskSpec {
  std::string_view name;
  TaskMetric metric;
  bool reports_acc_norm;
  std::vector<Doc> (*load)(const fs::path& data_dir, int64_t limit);
};

constexpr std::array kTasks = {
    TaskSpec{"piqa", TaskMetric::MultipleChoice, true, first_docs<load_piqa>},
    TaskSpec{"arc_easy", TaskMetric::MultipleChoice, true, first_docs<load_arc_easy>},
    TaskSpec{"arc_challenge", TaskMetric::MultipleChoice, true, first_docs<load_arc_challenge>},
    TaskSpec{"winogrande", TaskMetric::MultipleChoice, false, first_docs<load_winogrande>},
    TaskSpec{"hellaswag", TaskMetric::MultipleChoice, true, first_docs<load_hellaswag>},
    TaskSpec{"copa", TaskMetric::MultipleChoice, false, first_docs<load_copa>},
    TaskSpec{"openbookqa", TaskMetric::MultipleChoice, true, first_docs<load_openbookqa>},
    TaskSpec{"lambada_openai", TaskMetric::Lambada, false, first_docs<load_lambada>},
    TaskSpec{"mmlu", TaskMetric::MultipleChoice, false, mmlu_docs<5>},
    TaskSpec{"mmlu_0shot", TaskMetric::MultipleChoice, false, mmlu_docs<0>},
};

constexpr auto kTaskNames = [] {
  std::array<std::string_view, kTasks.size()> names{};
  for (size_t i = 0; i < kTasks.size(); ++i) names[i] = kTasks[i].name;
  return names;
}();

// Other names a task is asked for by: the and the paper's "lambada" is lm-eval's
// lambada_openai (the OpenAI preprocessing of the LAMBADA test set, ../shared/data/eval/lambada).
constexpr std::array<std::pair<std::string_view, std::string_view>, 1> kAliases = {{{"lambada", "lambada_openai"}}};

// The zero-shot suite of MoE quantization papers; MMLU (5-shot, ~7 M tokens) is opt-in.
constexpr std::array<std::string_view, 8> kDefaultTasks = {
    "piqa", "arc_easy", "arc_challenge", "winogrande", "hellaswag", "copa", "openbookqa", "lambada_openai"};

}  // namespace

std::span<const std::string_view> known_tasks() { return kTaskNames; }
std::span<const std::string_view> default_tasks() { return kDefaultTasks; }

Task load_task(std::string_view name, const TaskOptions& options) {
  const auto alias = std::find_if(kAliases.begin(), kAliases.end(), [&](const auto& a) { return a.first == name; });
  const std::string_view canonical = alias == kAliases.end() ? name : alias->second;
  auto spec = std::find_if(kTasks.begin(), kTasks.end(), [&](const TaskSpec& s) { return s.name == canonical; });
  if (spec == kTasks.end())
    fail("--tasks: unknown task '{}' (known: {}; {})", name, fmt::join(kTaskNames, ", "),
         fmt::join(kAliases | std::views::transform([](const auto& a) { return fmt::format("{} for {}", a.first, a.second); }),
                   ", "));
  return Task{std::string(canonical), spec->metric, spec->reports_acc_norm,
              spec->load(options.data_dir, options.limit)};
}

}  // namespace moeq
