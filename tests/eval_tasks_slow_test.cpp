// Zero-shot tasks on the three trained models against transformers' per-example loglikelihoods
// (reference.per_example.json). The first 100 docs of each task keep CI short;
// MOEQ_TASK_DOCS=0 checks every doc (and the accuracies of reference.json; about 3 minutes a
// model on 2 cores), MOEQ_TASK_DOCS=N the first N.
//
// Every loglikelihood must be within 1e-3 of the reference, with one exception that fp32 cannot
// avoid: a token whose k-th and (k+1)-th router logits lie within a few ulps of each other goes
// to either expert depending on summation order, which differs between any two GEMM
// implementations (and between batch shapes of the same one: in the reference, arc_easy doc 1425
// routes its shared context token differently for choice 3 than for choices 0-2). Such a choice
// may be off by more, but only if its request has such a tie and one of the tie's two routings
// reproduces the reference.
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "eval/lm_backend.h"
#include "eval/request.h"
#include "eval/run_task.h"
#include "io/tokenizer.h"
#include "kernels/linear.h"
#include "model/model.h"
#include "test_util.h"

namespace moeq {
namespace {

int64_t docs_per_task() {
  const char* env = std::getenv("MOEQ_TASK_DOCS");
  if (!env) return 100;
  const int64_t n = std::atoll(env);
  return n > 0 ? n : -1;  // load_task: < 0 means every doc
}

// Router logits this close at the top-k boundary are a tie at fp32 precision (logits here are
// O(1..10), whose ulp is 1.2e-7..9.5e-7).
constexpr float kRouterTie = 1e-5f;

// The closest call at the top-k boundary of the last forward pass: the token, and the expert
// that just missed being chosen.
struct RouterTie {
  int layer = -1;
  int64_t token = -1;
  int32_t runner_up = -1;
  float gap = INFINITY;  // k-th minus (k+1)-th router logit
};

RouterTie closest_router_tie(const Model& model) {
  RouterTie tie;
  const auto& layers = model.last_routing();
  for (size_t l = 0; l < layers.size(); ++l)
    for (int64_t t = 0; t < layers[l].tokens; ++t) {
      const float* logits = layers[l].logits.data() + t * layers[l].experts;
      std::vector<int32_t> order(size_t(layers[l].experts));
      std::iota(order.begin(), order.end(), 0);
      std::ranges::sort(order, [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
      const int32_t last_in = order[size_t(layers[l].top_k - 1)], first_out = order[size_t(layers[l].top_k)];
      if (logits[last_in] - logits[first_out] < tie.gap) tie = {int(l), t, first_out, logits[last_in] - logits[first_out]};
    }
  return tie;
}

// A router whose output for one token and expert is raised by `delta`: flips one tie and
// nothing else.
class NudgedRouter final : public WrappedLinear {
 public:
  NudgedRouter(LinearPtr inner, const RouterTie& tie) : WrappedLinear(std::move(inner)), tie_(tie) {}
  void forward(const float* x, int64_t n, float* y) const override {
    inner_->forward(x, n, y);
    if (tie_.token < n) y[tie_.token * out_features() + tie_.runner_up] += tie_.gap + 2 * kRouterTie;
  }

 private:
  RouterTie tie_;
};

// The request run alone, its continuation's loglikelihood computed here from the logits.
double loglik_alone(Model& model, const TokenizedRequest& r) {
  const Tensor logits = model.forward(r.input(), 1, r.input_length());
  const int64_t vocab = model.vocab_size();
  double total = 0;
  for (int64_t p = r.input_length() - r.continuation; p < r.input_length(); ++p) {
    const float* row = logits.ptr() + p * vocab;
    const float top = *std::max_element(row, row + vocab);
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v] - top));
    total += double(row[r.tokens[size_t(p + 1)]] - top) - std::log(sum);
  }
  return total;
}

// A choice off by more than 1e-3 is explained when its request has a router tie and either
// routing of that tie reproduces the reference: run alone (our batched run resolved the tie
// the other way) or with the tie flipped (transformers resolved it the other way).
void expect_explained_by_router_tie(Model& model, const TextEncoder& encode, const Choice& choice, double reference,
                                    const std::string& where) {
  const TokenizedRequest r = encode_request(encode, choice.context, choice.continuation, {});
  const double alone = loglik_alone(model, r);
  const RouterTie tie = closest_router_tie(model);
  ASSERT_LT(tie.gap, kRouterTie) << where << ": off by more than 1e-3 with no router tie to explain it";
  LinearPtr* router = nullptr;
  for (const LinearSlot& slot : model.linears())
    if (slot.layer == tie.layer && slot.projection == "router") router = slot.op;
  ASSERT_NE(router, nullptr);
  auto nudged = std::make_unique<NudgedRouter>(std::move(*router), tie);
  NudgedRouter* restore = nudged.get();
  *router = std::move(nudged);
  const double flipped = loglik_alone(model, r);
  *router = restore->release();
  EXPECT_TRUE(std::abs(alone - reference) <= 1e-3 || std::abs(flipped - reference) <= 1e-3)
      << where << ": reference " << reference << ", alone " << alone << ", tie flipped " << flipped;
  std::printf("%s: router tie at layer %d token %lld (gap %.1e): alone %.6f, flipped %.6f, reference %.6f\n",
              where.c_str(), tie.layer, (long long)tie.token, double(tie.gap), alone, flipped, reference);
}

class TasksSlow : public ::testing::TestWithParam<std::string> {};

TEST_P(TasksSlow, MatchTransformersPerExample) {
  const auto model_dir = testing::shared_model(GetParam());
  std::ifstream in(model_dir / "reference/reference.per_example.json");
  const nlohmann::json reference = nlohmann::json::parse(in);
  std::ifstream summary_in(model_dir / "reference/reference.json");
  const nlohmann::json summary = nlohmann::json::parse(summary_in);
  std::unique_ptr<Model> model = Model::load(model_dir);
  Tokenizer tokenizer = Tokenizer::load(model_dir / "tokenizer.json");
  TextEncoder encode = [&](std::string_view text) { return tokenizer.encode(text); };
  std::unique_ptr<LmBackend> lm = make_model_backend(*model);

  for (std::string name : {"piqa", "arc_easy", "arc_challenge", "winogrande"}) {
    Task task = load_task(name, {testing::shared_dir() / "data/eval", docs_per_task()});
    TaskRun run = run_task(*lm, encode, task, {}, {});
    // The reference's loglikelihoods of the same docs, flattened like ours.
    std::vector<LoglikResult> want;
    double worst = 0;  // over the choices without a router tie
    int64_t ties = 0;
    for (size_t d = 0, i = 0; d < task.docs.size(); ++d) {
      const nlohmann::json& doc = reference.at(name).at(d);
      ASSERT_EQ(doc.size(), task.docs[d].choices.size());
      for (size_t c = 0; c < doc.size(); ++c, ++i) {
        want.push_back({doc[c].get<double>(), false});
        const double diff = std::abs(run.choices[i].loglik - want.back().loglik);
        if (diff <= 1e-3) {
          worst = std::max(worst, diff);
          continue;
        }
        expect_explained_by_router_tie(*model, encode, task.docs[d].choices[c], want.back().loglik,
                                       fmt::format("{} doc {} choice {}", name, d, c));
        ++ties;
      }
    }
    TaskResult expected = task_result(task, want);
    EXPECT_EQ(run.result.acc, expected.acc) << name;
    EXPECT_EQ(run.result.acc_norm, expected.acc_norm) << name;
    if (int64_t(task.docs.size()) == summary.at(name).at("n").get<int64_t>()) {
      EXPECT_EQ(run.result.acc, summary.at(name).at("acc").get<double>()) << name;
      if (task.reports_acc_norm) {
        EXPECT_EQ(run.result.acc_norm, summary.at(name).at("acc_norm").get<double>()) << name;
      }
    }
    std::printf("%s: %zu docs, acc %.4f, max |Δ loglik| %.2e (%lld choices off by more at router ties), %lld tokens run "
                "(%lld requested), %.1f s\n",
                name.c_str(), task.docs.size(), run.result.acc, worst, (long long)ties, (long long)run.stats.tokens,
                (long long)run.stats.request_tokens, run.seconds);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TasksSlow, ::testing::Values("mixtral", "qwen2_moe", "qwen3_moe"));

}  // namespace
}  // namespace moeq
