// Request encoding as lm-eval's _encode_pair and truncation, with a word-level fake tokenizer.
#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/request.h"
#include "eval/run_task.h"
#include "eval/task.h"
#include "eval_fakes.h"
#include "test_util.h"

namespace moeq {
namespace {

class EvalRequest : public ::testing::Test {
 protected:
  testing::WordTokenizer tok;
  TextEncoder encode = [this](std::string_view text) { return tok.encode(text); };
  std::vector<int32_t> ids(std::initializer_list<std::string_view> pieces) {
    std::vector<int32_t> out;
    for (std::string_view p : pieces) out.push_back(tok.id(p));
    return out;
  }
};

TEST_F(EvalRequest, ContextThenContinuationTokens) {
  TokenizedRequest r = encode_request(encode, "Question: a b\nAnswer:", " c d", {});
  EXPECT_EQ(r.tokens, ids({"Question:", " a", " b", "\n", "Answer:", " c", " d"}));
  EXPECT_EQ(r.continuation, 2);
  EXPECT_EQ(r.input_length(), 6);
}

TEST_F(EvalRequest, TrailingSpacesMoveIntoTheContinuation) {
  // enc("The cat ") would end in a lone " " token that enc("The cat sat") never produces;
  // lm-eval moves the space: context "The cat", continuation " sat".
  TokenizedRequest r = encode_request(encode, "The cat ", "sat", {});
  EXPECT_EQ(r.tokens, ids({"The", " cat", " sat"}));
  EXPECT_EQ(r.continuation, 1);
  // Two trailing spaces: one stays a lone " " piece, the other joins the word.
  r = encode_request(encode, "The cat  ", "sat", {});
  EXPECT_EQ(r.tokens, ids({"The", " cat", " ", " sat"}));
  EXPECT_EQ(r.continuation, 2);
}

TEST_F(EvalRequest, ContinuationIsWholeMinusContextLength) {
  // enc("ab" + "cd") = ["abcd"]: the context's tokens are not a prefix of the whole; the
  // continuation is whole[len(enc(context)):] = [] and the request cannot be scored.
  EXPECT_THROW(encode_request(encode, "ab", "cd", {}), Error);
  // "x yy" + " z" splits cleanly.
  EXPECT_EQ(encode_request(encode, "x yy", " z", {}).tokens, ids({"x", " yy", " z"}));
}

TEST_F(EvalRequest, LeftTruncationKeepsTheContinuation) {
  // 6 context + 2 continuation tokens, max_length 4: keep the last 5 tokens; the model reads 4.
  TokenizedRequest r = encode_request(encode, "a b c d e f", " g h", {.max_length = 4, .eot_id = {}});
  EXPECT_EQ(r.tokens, ids({" d", " e", " f", " g", " h"}));
  EXPECT_EQ(r.input_length(), 4);
  EXPECT_EQ(r.continuation, 2);
  EXPECT_THROW(encode_request(encode, "a", " b c d e f", {.max_length = 4, .eot_id = {}}), Error);
}

TEST_F(EvalRequest, EmptyContextUsesEndOfText) {
  TokenizedRequest r = encode_request(encode, "", " hello", {.max_length = 512, .eot_id = 0});
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{0, tok.id(" hello")}));
  EXPECT_EQ(r.continuation, 1);
  EXPECT_THROW(encode_request(encode, "", " hello", {}), Error);
}

TEST_F(EvalRequest, WinograndeRequestsOfARealDoc) {
  Task task = load_task("winogrande", {testing::shared_dir() / "data/eval", 1});
  std::vector<TokenizedRequest> r = encode_task(encode, task, {});
  ASSERT_EQ(r.size(), 2u);
  // Different contexts ("... so Sarah" / "... so Maria"), the same scored continuation.
  EXPECT_EQ(r[0].continuation, 5);  // " always", " got", " the", " easier", " cases."
  EXPECT_EQ(std::vector<int32_t>(r[0].tokens.end() - 5, r[0].tokens.end()),
            ids({" always", " got", " the", " easier", " cases."}));
  EXPECT_EQ(r[1].continuation, 5);
  EXPECT_EQ(r[0].tokens[r[0].tokens.size() - 6], tok.id(" Sarah"));
  EXPECT_EQ(r[1].tokens[r[1].tokens.size() - 6], tok.id(" Maria"));
}

}  // namespace
}  // namespace moeq
