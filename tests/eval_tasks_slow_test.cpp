// Zero-shot tasks on the trained mixtral against transformers' per-example loglikelihoods
// (reference.per_example.json). The first 200 docs of each task keep CI short;
// MOEQ_TASK_DOCS=0 checks every doc (about 3 minutes on 2 cores), MOEQ_TASK_DOCS=N the first N.
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "eval/lm_backend.h"
#include "eval/run_task.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "test_util.h"

namespace moeq {
namespace {

int64_t docs_per_task() {
  const char* env = std::getenv("MOEQ_TASK_DOCS");
  if (!env) return 200;
  const int64_t n = std::atoll(env);
  return n > 0 ? n : -1;  // load_task: < 0 means every doc
}

TEST(TasksSlow, MixtralMatchesTransformersPerExample) {
  const auto model_dir = testing::shared_dir() / "models/mixtral";
  std::ifstream in(model_dir / "reference/reference.per_example.json");
  const nlohmann::json reference = nlohmann::json::parse(in);
  std::unique_ptr<Model> model = Model::load(model_dir);
  Tokenizer tokenizer = Tokenizer::load(model_dir / "tokenizer.json");
  TextEncoder encode = [&](std::string_view text) { return tokenizer.encode(text); };
  std::unique_ptr<LmBackend> lm = make_model_backend(*model);

  for (std::string name : {"piqa", "arc_easy", "arc_challenge", "winogrande"}) {
    Task task = load_task(name, {testing::shared_dir() / "data/eval", docs_per_task()});
    TaskRun run = run_task(*lm, encode, task, {}, {});
    // The reference's loglikelihoods of the same docs, flattened like ours.
    std::vector<LoglikResult> want;
    double worst = 0;
    for (size_t d = 0, i = 0; d < task.docs.size(); ++d) {
      const nlohmann::json& doc = reference.at(name).at(d);
      ASSERT_EQ(doc.size(), task.docs[d].choices.size());
      for (size_t c = 0; c < doc.size(); ++c, ++i) {
        want.push_back({doc[c].get<double>(), false});
        worst = std::max(worst, std::abs(run.choices[i].loglik - want.back().loglik));
        EXPECT_NEAR(run.choices[i].loglik, want.back().loglik, 1e-3) << name << " doc " << d << " choice " << c;
      }
    }
    TaskResult expected = task_result(task, want);
    EXPECT_EQ(run.result.acc, expected.acc) << name;
    EXPECT_EQ(run.result.acc_norm, expected.acc_norm) << name;
    std::printf("%s: %zu docs, acc %.4f, max |Δ loglik| %.2e, %lld tokens run (%lld requested), %.1f s\n",
                name.c_str(), task.docs.size(), run.result.acc, worst, (long long)run.stats.tokens,
                (long long)run.stats.request_tokens, run.seconds);
  }
}

}  // namespace
}  // namespace moeq
