// WikiText-2 perplexity under the shared protocol against transformers' reference.json, and
// the windowing/NLL bookkeeping against a direct computation from forward() logits.
#include <cmath>
#include <fstream>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/perplexity.h"
#include "test_util.h"

namespace moeq {
namespace {

TEST(Perplexity, WindowsAndNllMatchDirectComputation) {
  auto model = Model::load(testing::shared_model("demo_mixtral"));
  auto ids = read_ids_int32(testing::shared_model("demo_mixtral") / "reference" / "wikitext2_test.ids.int32");
  ids.resize(3 * 64 + 10);  // three windows and a dropped tail
  std::vector<std::pair<int64_t, int64_t>> progress;
  PerplexityResult r = perplexity(*model, ids, {.window = 64, .windows_per_batch = 2, .progress = [&](int64_t done, int64_t tokens) {
                                                  progress.emplace_back(done, tokens);
                                                }});
  EXPECT_EQ(progress, (std::vector<std::pair<int64_t, int64_t>>{{2, 128}, {3, 192}}));  // after each batch
  EXPECT_EQ(r.windows, 3);
  EXPECT_EQ(r.tokens, 3 * 64 + 10);
  EXPECT_EQ(r.predicted, 3 * 63);

  double nll = 0.0;
  for (int64_t w = 0; w < 3; ++w) {
    Tensor logits = model->forward(std::span(ids).subspan(size_t(w * 64), 64), 1, 64);
    for (int64_t t = 0; t < 63; ++t) {
      const float* row = logits.row(t);
      double mx = row[0], sum = 0.0;
      for (int64_t v = 0; v < logits.cols(); ++v) mx = std::max(mx, double(row[v]));
      for (int64_t v = 0; v < logits.cols(); ++v) sum += std::exp(double(row[v]) - mx);
      nll += mx + std::log(sum) - row[ids[size_t(w * 64 + t + 1)]];
    }
  }
  EXPECT_NEAR(r.nll_sum, nll, 1e-5 * nll);  // fp32 logits of batch-2 vs batch-1 runs
  EXPECT_NEAR(r.ppl, std::exp(nll / (3 * 63)), 5e-5 * r.ppl);
}

TEST(Perplexity, RejectsOddIdFiles) {
  const auto file = std::filesystem::temp_directory_path() / "moeq_odd_ids.int32";
  std::ofstream(file, std::ios::binary) << "abcde";
  EXPECT_THROW(read_ids_int32(file), Error);
  std::filesystem::remove(file);
}

// Full WikiText-2 test set: 812 windows of 512.
void expect_reference_perplexity(const std::string& name) {
  const auto dir = testing::shared_model(name);
  auto model = Model::load(dir);
  auto ids = read_ids_int32(dir / "reference" / "wikitext2_test.ids.int32");
  PerplexityResult r = perplexity(*model, ids);
  std::ifstream in(dir / "reference" / "reference.json");
  const auto ref = nlohmann::json::parse(in)["wikitext2_test"];
  std::printf("[perplexity %s] ppl %.6f (reference %.6f), nll_sum %.3f (reference %.3f)\n", name.c_str(), r.ppl,
              ref["ppl"].get<double>(), r.nll_sum, ref["nll_sum"].get<double>());
  EXPECT_EQ(r.tokens, ref["tokens"].get<int64_t>());
  EXPECT_EQ(r.windows, ref["windows"].get<int64_t>());
  EXPECT_EQ(r.predicted, ref["predicted"].get<int64_t>());
  EXPECT_NEAR(r.ppl, ref["ppl"].get<double>(), 1e-4 * ref["ppl"].get<double>());
  EXPECT_NEAR(r.nll_sum, ref["nll_sum"].get<double>(), 1e-4 * ref["nll_sum"].get<double>());
}

TEST(PerplexitySlow, DemoMixtral) { expect_reference_perplexity("demo_mixtral"); }
TEST(PerplexitySlow, Mixtral) { expect_reference_perplexity("mixtral"); }
TEST(PerplexitySlow, Qwen2Moe) { expect_reference_perplexity("qwen2_moe"); }
TEST(PerplexitySlow, Qwen3Moe) { expect_reference_perplexity("qwen3_moe"); }

}  // namespace
}  // namespace moeq
