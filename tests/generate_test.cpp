// Generation with the KV cache: greedy tokens are the argmax of a full re-run over the same
// sequence; sampling is reproducible by seed and collapses to greedy as top_p → 0.
#include <algorithm>

#include "model/generate.h"
#include "test_util.h"

namespace moeq {
namespace {

std::unique_ptr<Model> demo() { return Model::load(testing::shared_model("demo_mixtral")); }

TEST(Generate, GreedyTokensAreArgmaxOfAFullRerun) {
  auto model = demo();
  const std::vector<int32_t> prompt = {449, 3279, 285, 265};
  Generation g = generate(*model, prompt, 12);
  ASSERT_EQ(g.tokens.size(), 12u);
  std::vector<int32_t> seq = prompt;
  seq.insert(seq.end(), g.tokens.begin(), g.tokens.end() - 1);
  Tensor logits = model->forward(seq, 1, int64_t(seq.size()));
  for (size_t i = 0; i < g.tokens.size(); ++i) {
    const float* row = logits.row(int64_t(prompt.size() + i - 1));
    EXPECT_EQ(int32_t(std::max_element(row, row + logits.cols()) - row), g.tokens[i]) << "step " << i;
  }
}

TEST(Generate, SamplingIsSeededAndTinyTopPIsGreedy) {
  auto model = demo();
  const std::vector<int32_t> prompt = {449, 3279};
  SamplingOptions hot{.temperature = 1.0f, .top_p = 0.95f, .seed = 7};
  Generation a = generate(*model, prompt, 10, hot), b = generate(*model, prompt, 10, hot);
  EXPECT_EQ(a.tokens, b.tokens);
  SamplingOptions narrow{.temperature = 1.0f, .top_p = 1e-6f, .seed = 7};
  EXPECT_EQ(generate(*model, prompt, 10, narrow).tokens, generate(*model, prompt, 10).tokens);
}

TEST(Generate, StopsAtTheStopToken) {
  auto model = demo();
  const std::vector<int32_t> prompt = {449, 3279, 285, 265};
  Generation g = generate(*model, prompt, 12);
  SamplingOptions stop{.stop_token = g.tokens[3]};
  Generation s = generate(*model, prompt, 12, stop);
  const auto first = std::find(g.tokens.begin(), g.tokens.end(), g.tokens[3]);
  EXPECT_EQ(s.tokens, std::vector<int32_t>(g.tokens.begin(), first + 1));
}

TEST(Generate, RejectsBadSamplingOptions) {
  EXPECT_THROW(Sampler(SamplingOptions{.temperature = -1.0f}), Error);
  EXPECT_THROW(Sampler(SamplingOptions{.top_p = 0.0f}), Error);
}

}  // namespace
}  // namespace moeq
