// The prefix-sharing scorer against scoring each request alone, on a model whose logits depend
// on the whole history (any wrongly shared or forked context shows up in the numbers).
#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "eval/loglikelihood.h"
#include "eval_fakes.h"

namespace moeq {
namespace {

constexpr int64_t kVocab = 50;

// Independent reference: a fresh context per request, the whole input in one call.
LoglikResult score_alone(testing::HashLm& lm, const TokenizedRequest& r) {
  auto state = lm.start(r.input_length());
  Tensor logits = lm.extend(*state, r.input(), 0);
  LoglikResult out;
  for (int64_t p = r.input_length() - r.continuation; p < r.input_length(); ++p) {
    const float* row = logits.row(p);
    double mx = row[0];
    int64_t arg = 0;
    for (int64_t v = 1; v < kVocab; ++v)
      if (row[v] > mx) mx = row[v], arg = v;
    double z = 0;
    for (int64_t v = 0; v < kVocab; ++v) z += std::exp(row[v] - mx);
    int32_t target = r.tokens[size_t(p + 1)];
    out.loglik += row[target] - mx - std::log(z);
    out.greedy = out.greedy && arg == target;
  }
  return out;
}

TokenizedRequest request(std::vector<int32_t> tokens, int64_t continuation) { return {std::move(tokens), continuation}; }

// The n tokens the model predicts greedily after ctx.
std::vector<int32_t> greedy_tokens(std::vector<int32_t> ctx, int n) {
  testing::HashLm lm(kVocab);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    auto state = lm.start(int64_t(ctx.size()));
    Tensor logits = lm.extend(*state, ctx, 0);
    const float* row = logits.row(logits.rows() - 1);
    int32_t best = int32_t(std::max_element(row, row + kVocab) - row);
    out.push_back(best);
    ctx.push_back(best);
  }
  return out;
}

// Docs like the real tasks': a shared context with 2-5 continuations that sometimes share their
// first tokens, identical inputs (one-token choices, as MMLU), and a few-shot prefix shared by
// many docs.
std::vector<TokenizedRequest> random_requests(std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> token(0, kVocab - 1);
  std::uniform_int_distribution<int> len(1, 12);
  std::vector<int32_t> shots;
  for (int i = 0; i < 20; ++i) shots.push_back(token(rng));
  std::vector<TokenizedRequest> out;
  for (int doc = 0; doc < 40; ++doc) {
    std::vector<int32_t> ctx = doc % 3 == 0 ? shots : std::vector<int32_t>{};
    for (int i = len(rng); i > 0; --i) ctx.push_back(token(rng));
    int choices = 2 + doc % 4;
    std::vector<int32_t> stem;
    for (int i = doc % 2; i > 0; --i) stem.push_back(token(rng));  // common first continuation tokens
    for (int c = 0; c < choices; ++c) {
      std::vector<int32_t> cont = stem;
      int n = doc % 5 == 0 ? 1 : len(rng);
      if (c == 0 && doc % 2 == 0) {  // the model's own greedy continuation
        std::vector<int32_t> prefix = ctx;
        prefix.insert(prefix.end(), stem.begin(), stem.end());
        cont = stem;
        for (int32_t t : greedy_tokens(prefix, n)) cont.push_back(t);
      } else {
        for (int i = 0; i < n; ++i) cont.push_back(token(rng));
      }
      std::vector<int32_t> tokens = ctx;
      tokens.insert(tokens.end(), cont.begin(), cont.end());
      out.push_back(request(tokens, int64_t(cont.size())));
    }
  }
  out.push_back(out.front());  // an exact duplicate
  return out;
}

TEST(EvalLoglikelihood, SharedPrefixesGiveTheSameScoresAsAlone) {
  std::mt19937 rng(7);
  std::vector<TokenizedRequest> requests = random_requests(rng);
  for (int64_t batch : {1, 3, 64}) {
    testing::HashLm lm(kVocab), alone(kVocab);
    ScoreStats stats;
    int64_t last_done = 0;
    ScoreOptions options{.batch = batch, .progress = [&](int64_t done, int64_t) { last_done = done; }};
    std::vector<LoglikResult> got = score_requests(lm, requests, options, &stats);
    ASSERT_EQ(got.size(), requests.size());
    int greedy = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      LoglikResult want = score_alone(alone, requests[i]);
      EXPECT_NEAR(got[i].loglik, want.loglik, 1e-9) << "request " << i << " batch " << batch;
      EXPECT_EQ(got[i].greedy, want.greedy) << "request " << i;
      greedy += want.greedy;
    }
    EXPECT_GT(greedy, 0);  // the greedy flag is exercised both ways
    EXPECT_EQ(last_done, int64_t(requests.size()));
    EXPECT_FALSE(lm.overflowed);
    EXPECT_EQ(stats.tokens, lm.tokens_run);
    EXPECT_EQ(stats.request_tokens, alone.tokens_run);
    EXPECT_LT(stats.tokens, stats.request_tokens / 2);
  }
}

TEST(EvalLoglikelihood, ContextRunOncePerDoc) {
  // One 10-token context, four 3-token continuations with different first tokens: the model
  // runs the context once and each continuation's first two tokens (the last is only scored).
  std::vector<TokenizedRequest> requests;
  std::vector<int32_t> ctx = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  for (int32_t c = 0; c < 4; ++c) {
    std::vector<int32_t> tokens = ctx;
    tokens.insert(tokens.end(), {20 + c, 30, 40});
    requests.push_back(request(tokens, 3));
  }
  testing::HashLm lm(kVocab);
  ScoreStats stats;
  score_requests(lm, requests, {}, &stats);
  EXPECT_EQ(stats.tokens, 10 + 4 * 2);
  EXPECT_EQ(stats.request_tokens, 4 * 12);
  EXPECT_EQ(lm.logits_rows, 1 + 4 * 2);  // the context's last position, then every continuation row
}

TEST(EvalLoglikelihood, RejectsContinuationLongerThanInput) {
  testing::HashLm lm(kVocab);
  std::vector<TokenizedRequest> bad = {request({1, 2}, 2)};
  EXPECT_THROW(score_requests(lm, bad, {}), Error);
}

}  // namespace
}  // namespace moeq
