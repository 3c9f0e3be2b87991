// Task metrics: lm-eval's aggregation, checked on the reference's own per-example loglikelihoods.
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "eval/report.h"
#include "eval/task_metrics.h"
#include "test_util.h"

namespace moeq {
namespace {

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// transformers' per-choice loglikelihoods for mixtral, fed through our loaders and metrics,
// must give exactly the accuracies the reference computed from them: this pins the gold
// labels, the choice order and the acc_norm byte normalization (with the leading space).
TEST(EvalMetrics, ReferenceLoglikelihoodsGiveReferenceAccuracies) {
  auto ref_dir = testing::shared_dir() / "models/mixtral/reference";
  nlohmann::json ref = read_json(ref_dir / "reference.json");
  nlohmann::json per_example = read_json(ref_dir / "reference.per_example.json");
  for (std::string name : {"piqa", "arc_easy", "arc_challenge", "winogrande"}) {
    Task task = load_task(name, {testing::shared_dir() / "data/eval", -1});
    const nlohmann::json& docs = per_example.at(name);
    ASSERT_EQ(docs.size(), task.docs.size()) << name;
    std::vector<LoglikResult> flat;
    for (size_t i = 0; i < docs.size(); ++i) {
      ASSERT_EQ(docs[i].size(), task.docs[i].choices.size()) << name << " doc " << i;
      for (double ll : docs[i]) flat.push_back({ll, false});
    }
    TaskResult r = task_result(task, flat);
    EXPECT_EQ(r.n, ref[name]["n"].get<int64_t>()) << name;
    EXPECT_DOUBLE_EQ(r.acc, ref[name]["acc"].get<double>()) << name;
    if (ref[name].contains("acc_norm")) {
      ASSERT_TRUE(r.acc_norm.has_value()) << name;
      EXPECT_DOUBLE_EQ(*r.acc_norm, ref[name]["acc_norm"].get<double>()) << name;
    } else {
      EXPECT_FALSE(r.acc_norm.has_value()) << name;
    }
  }
}

TEST(EvalMetrics, TiesAndByteNormalization) {
  Task task{"t", TaskMetric::MultipleChoice, true, {}};
  // "é" is 2 bytes: -4/3 (" éé" = 5 bytes → -0.8) beats -3/3 = -1 only by bytes, not chars.
  task.docs.push_back({{{"c", " ab"}, {"c", " \xc3\xa9\xc3\xa9"}}, 1});
  task.docs.push_back({{{"c", " x"}, {"c", " y"}}, 1});  // tie: np.argmax picks the first
  TaskResult r = task_result(task, std::vector<LoglikResult>{{-3, true}, {-4, true}, {-2, true}, {-2, true}});
  EXPECT_DOUBLE_EQ(r.acc, 0.0);
  EXPECT_DOUBLE_EQ(*r.acc_norm, 0.5);
}

TEST(EvalMetrics, LambadaAccuracyAndPerplexity) {
  Task task{"lambada_openai", TaskMetric::Lambada, false, {}};
  task.docs.push_back({{{"a", " b"}}, 0});
  task.docs.push_back({{{"c", " d"}}, 0});
  TaskResult r = task_result(task, std::vector<LoglikResult>{{-1.5, true}, {-2.5, false}});
  EXPECT_DOUBLE_EQ(r.acc, 0.5);
  EXPECT_DOUBLE_EQ(*r.ppl, std::exp(2.0));
  EXPECT_FALSE(r.acc_norm.has_value());
}

TEST(EvalReport, JsonShapeAndMarkdown) {
  EvalReport report;
  report.ppl.push_back({"wiki.test.raw", 194.0, 2185804.75, 414932, 416156, 812});
  report.tasks.push_back({"piqa", 1838, 0.5294, 0.5131, std::nullopt});
  report.tasks.push_back({"lambada_openai", 5153, 0.25, std::nullopt, 123.4});
  report.seconds = 10;
  report.tokens = 5000;
  nlohmann::ordered_json j = report_json(report);
  EXPECT_EQ(j["ppl"]["wiki.test.raw"]["windows"], 812);
  EXPECT_EQ(j["ppl"]["wiki.test.raw"]["predicted"], 414932);
  EXPECT_DOUBLE_EQ(j["tasks"]["piqa"]["acc_norm"].get<double>(), 0.5131);
  EXPECT_FALSE(j["tasks"]["lambada_openai"].contains("acc_norm"));
  EXPECT_DOUBLE_EQ(j["tasks"]["lambada_openai"]["ppl"].get<double>(), 123.4);
  EXPECT_DOUBLE_EQ(j["tokens_per_second"].get<double>(), 500.0);
  std::string md = report_markdown(report);
  EXPECT_NE(md.find("| piqa | 1838 | 52.94 | 51.31 |  |"), std::string::npos) << md;
  EXPECT_NE(md.find("| wiki.test.raw | 416156 | 812 | 194.00 |"), std::string::npos) << md;
}

}  // namespace
}  // namespace moeq
