// The whole default task set (moeq eval's default) at full size on a trained model, timed, with
// each task's accuracy beside transformers' (reference/reference.json) where it has one.
// Prints one JSON document; exits 1 when an accuracy the reference has differs.
//
//   build/bench/eval_bench [--shared ../shared] [--model mixtral] [--tasks piqa,...] [--batch 16]
#include <cstdlib>
#include <fstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "eval/evaluate.h"
#include "eval/task.h"
#include "io/tokenizer.h"
#include "model/model.h"

namespace fs = std::filesystem;

namespace {

// Accuracy counts of n documents: equal when they are the same fraction of n.
bool same_accuracy(double a, double b, int64_t n) { return std::llround(a * double(n)) == std::llround(b * double(n)); }

nlohmann::ordered_json compare(const moeq::EvalReport& report, const nlohmann::json& reference, bool& all_match) {
  nlohmann::ordered_json tasks;
  for (const moeq::TaskResult& t : report.tasks) {
    nlohmann::ordered_json row = {{"n", t.n}, {"acc", t.acc}};
    if (t.acc_norm) row["acc_norm"] = *t.acc_norm;
    if (t.ppl) row["ppl"] = *t.ppl;
    if (reference.contains(t.name)) {
      const nlohmann::json& ref = reference.at(t.name);
      bool match = ref.at("n").get<int64_t>() == t.n && same_accuracy(t.acc, ref.at("acc").get<double>(), t.n);
      if (ref.contains("acc_norm") && t.acc_norm)
        match = match && same_accuracy(*t.acc_norm, ref.at("acc_norm").get<double>(), t.n);
      row["reference"] = ref;
      row["matches_reference"] = match;
      all_match = all_match && match;
    }
    tasks[t.name] = row;
  }
  return tasks;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eval_bench: the default task set at full size, timed and checked against transformers"};
  const char* env = std::getenv("MOEQ_SHARED");
  std::string shared = env ? env : "../shared", model_name = "mixtral";
  std::vector<std::string> tasks(moeq::default_tasks().begin(), moeq::default_tasks().end());
  int64_t batch = 16;
  app.add_option("--shared", shared, "the shared data folder");
  app.add_option("--model", model_name, "a model under SHARED/models");
  app.add_option("--tasks", tasks, "tasks (default: moeq eval's default set)")->delimiter(',');
  app.add_option("--batch", batch, "sequences per forward pass");
  CLI11_PARSE(app, argc, argv);
  try {
    const fs::path dir = fs::path(shared) / "models" / model_name;
    auto model = moeq::Model::load(dir);
    moeq::Tokenizer tokenizer = moeq::Tokenizer::load(dir / "tokenizer.json");
    moeq::EvalOptions options;
    options.tasks = tasks;
    options.data_dir = fs::path(shared) / "data/eval";
    options.batch = batch;
    const moeq::EvalReport report = moeq::evaluate(*model, tokenizer, options);
    std::ifstream in(dir / "reference/reference.json");
    bool all_match = true;
    nlohmann::ordered_json out = {{"model", model_name},
                                  {"tasks", compare(report, nlohmann::json::parse(in), all_match)},
                                  {"seconds", report.seconds},
                                  {"tokens", report.tokens},
                                  {"tokens_per_second", double(report.tokens) / report.seconds},
                                  {"accuracies_match_reference", all_match}};
    fmt::print("{}\n", out.dump(2));
    return all_match ? 0 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "eval_bench: {}\n", e.what());
    return 2;
  }
}
