// Statistics for bit allocation on the embedded demo model: routing counts, block scores and
// outlier scores against direct computations, sensitivities ordered by bit-width, the cache, and
// the target-bits optimiser against the heuristics on the same measurements.
#include "quant/analysis/model_stats.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "kernels/cpu/quant_linear.h"
#include "quant/algo/gptq.h"
#include "quant/pipeline/layer_quantizer.h"
#include "quant/analysis/target_bits.h"
#include "quant/plan/bits.h"
#include "quant/plan/plan.h"
#include "quant/plan/scorers.h"
#include "quant/plan/strategies.h"
#include "quant_test_util.h"
#include "test_util.h"

namespace moeq {
namespace {
namespace fs = std::filesystem;
using analysis::ModelStats;

using testing::demo_model;

CalibOptions demo_calib_options() { return {testing::demo_calib_text(), 8, 128, 0}; }

struct Measured {
  ModelStats stats;
  analysis::HessianStore hessians;
};

// Measured once for the suite: 8 × 128 tokens through the 4-block demo model.
const Measured& demo_measured() {
  static const Measured m = [] {
    Measured out;
    auto model = Model::load(demo_model());
    const Tokenizer tok = Tokenizer::load(demo_model() / "tokenizer.json");
    out.stats = analysis::collect_model_stats(*model, load_calibration(tok, demo_calib_options()), {}, &out.hessians);
    return out;
  }();
  return m;
}

const ModelStats& demo_stats() { return demo_measured().stats; }

void check_RoutingAndBlockScoresMatchASequenceAtATimeRun() {
  const ModelStats& s = demo_stats();
  auto model = Model::load(demo_model());
  const Tokenizer tok = Tokenizer::load(demo_model() / "tokenizer.json");
  const CalibSet calib = load_calibration(tok, demo_calib_options());
  ASSERT_EQ(s.tokens, 8 * 128);
  ASSERT_EQ(s.routing.size(), 4u);
  // One sequence at a time, so batching cannot hide a bookkeeping error.
  std::vector<std::vector<int64_t>> counts(4, std::vector<int64_t>(8, 0));
  std::vector<double> change(4, 0.0);
  for (int64_t b = 0; b < calib.samples; ++b) {
    Tensor h = model->embed(std::span(calib.ids).subspan(size_t(b * 128), 128));
    for (int layer = 0; layer < 4; ++layer) {
      const Tensor in = h;
      model->run_block(layer, h, 1, 128);
      change[size_t(layer)] += plan::block_change_score(in.data, h.data, h.cols()) / double(calib.samples);
      for (int32_t e : model->last_routing()[size_t(layer)].chosen) ++counts[size_t(layer)][size_t(e)];
    }
  }
  for (int layer = 0; layer < 4; ++layer) {
    int64_t sum = 0;
    for (int64_t c : s.routing[size_t(layer)]) sum += c;
    EXPECT_EQ(sum, 2 * s.tokens) << "top-2 routing, layer " << layer;
    EXPECT_EQ(s.routing[size_t(layer)], counts[size_t(layer)]) << "layer " << layer;
    EXPECT_NEAR(s.block_scores[size_t(layer)], change[size_t(layer)], 1e-5) << "layer " << layer;
    EXPECT_GT(s.block_scores[size_t(layer)], 0.0);
  }
}

void check_TokensAndOutliersPerUnit() {
  const ModelStats& s = demo_stats();
  const Checkpoint ck = Checkpoint::open(demo_model());
  for (size_t i = 0; i < s.units.size(); ++i) {
    const plan::QuantUnit& u = s.units[i];
    if (u.role == TensorRole::Attention) {
      EXPECT_EQ(s.per_unit[i].tokens, s.tokens) << u.name;
    } else if (u.role == TensorRole::RoutedExpert) {
      EXPECT_EQ(s.per_unit[i].tokens, s.routing[size_t(u.layer)][size_t(u.expert)]) << u.name;
    }
    if (!ck.contains(u.name)) continue;  // the tied lm_head
    const Tensor w = ck.get(u.name).to_f32();
    EXPECT_DOUBLE_EQ(s.per_unit[i].outlier, plan::outlier_score(w.data, u.rows, u.cols)) << u.name;
  }
}

void check_SensitivityFallsWithEveryBit() {
  const ModelStats& s = demo_stats();
  ASSERT_EQ(s.candidates.size(), 4u);
  int measured = 0;
  for (size_t i = 0; i < s.units.size(); ++i) {
    const auto& loss = s.per_unit[i].loss;
    if (!analysis::is_body_unit(s.units[i])) {
      EXPECT_TRUE(loss.empty()) << s.units[i].name;
      continue;
    }
    ASSERT_EQ(loss.size(), 4u) << s.units[i].name;
    if (s.per_unit[i].tokens == 0) continue;
    ++measured;
    EXPECT_GT(loss[0], loss[1]) << s.units[i].name;
    EXPECT_GT(loss[1], loss[2]) << s.units[i].name;
    EXPECT_GT(loss[2], loss[3]) << s.units[i].name;
    EXPECT_GT(loss[3], 0.0) << s.units[i].name;
    // Halving the step size divides the squared rounding error by about 4 per extra bit.
    EXPECT_GT(loss[0] / loss[2], 4.0) << s.units[i].name;
  }
  EXPECT_GE(measured, 4 * (4 + 20));
}

void check_JsonRoundTripAndCache() {
  const ModelStats& s = demo_stats();
  const nlohmann::json key = {{"k", 1}};
  const ModelStats back = analysis::stats_from_json(analysis::stats_to_json(s, key), "mem");
  EXPECT_EQ(back.routing, s.routing);
  EXPECT_EQ(back.block_scores, s.block_scores);
  EXPECT_EQ(back.layer_block_error, s.layer_block_error);
  EXPECT_EQ(back.layer_output_kl, s.layer_output_kl);
  ASSERT_EQ(back.units.size(), s.units.size());
  for (size_t i = 0; i < s.units.size(); ++i) {
    EXPECT_EQ(back.units[i].name, s.units[i].name);
    EXPECT_EQ(back.units[i].role, s.units[i].role);
    EXPECT_EQ(back.units[i].numel(), s.units[i].numel());
    EXPECT_EQ(back.per_unit[i].loss, s.per_unit[i].loss);
  }
  EXPECT_EQ(back.candidates, s.candidates);

  nlohmann::json bad = analysis::stats_to_json(s, key);
  bad["units"][3].erase("loss");
  try {
    analysis::stats_from_json(bad, "stats.json");
    FAIL() << "accepted a unit without losses";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stats.json: unit 'model.layers.0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'loss'"), std::string::npos) << e.what();
  }
}

using Key = analysis::HessianStore;

// Unit i of the demo model by GPTQ at candidate c on its stored Hessian.
GptqResult gptq_from_store(const Measured& m, const Checkpoint& ck, size_t i, size_t c) {
  const ModelStats& s = m.stats;
  const plan::PlanEntry e{s.units[i], s.candidates[c], 0};
  return gptq_quantize(ck.get(s.units[i].name).to_f32(), m.hessians.get(Key::key(s.units[i])),
                       effective_spec(e, IndivisibleGroups::PerChannel), gptq_options(analysis::SensitivityOptions{}.gptq, e.unit.role));
}

void check_StoredHessiansAndBlockErrorsGiveTheMeasuredLosses() {
  const Measured& m = demo_measured();
  const ModelStats& s = m.stats;
  const Checkpoint ck = Checkpoint::open(demo_model());
  EXPECT_EQ(Key::key(s.units[0]), "L0.attention.qkv");
  auto gptq = [&](size_t i, size_t c) { return gptq_from_store(m, ck, i, c); };
  for (size_t i = 0; i < s.units.size(); ++i) {
    if (s.per_unit[i].loss.empty() || s.per_unit[i].tokens == 0) continue;
    // GPTQ on the stored Hessian reproduces the measured losses up to the group's scale.
    const double l3 = gptq(i, 1).loss, l4 = gptq(i, 2).loss;
    EXPECT_NEAR(s.per_unit[i].loss[2] / s.per_unit[i].loss[1], l4 / l3, 1e-9) << s.units[i].name;
  }
  // The block error of a unit: block 1 on the first 8 calibration sequences with that unit alone
  // at GPTQ int3, against the unquantized block.
  auto model = Model::load(demo_model());
  const Tokenizer tok = Tokenizer::load(demo_model() / "tokenizer.json");
  const CalibSet calib = load_calibration(tok, demo_calib_options());
  Tensor h = model->embed(calib.ids);
  model->run_block(0, h, 8, 128);
  std::vector<LinearSlot> slots = model->linears();
  for (const char* name : {"model.layers.1.self_attn.o_proj.weight", "model.layers.1.block_sparse_moe.experts.2.w2.weight"}) {
    const size_t i = size_t(std::find_if(s.units.begin(), s.units.end(), [&](const plan::QuantUnit& u) { return u.name == name; }) - s.units.begin());
    ASSERT_LT(i, s.units.size()) << name;
    Tensor reference = h, quantized = h;
    model->run_block(1, reference, 8, 128);
    LinearPtr dense = std::move(*slots[i].op);
    *slots[i].op = make_quant_linear(gptq(i, 1).q);
    model->run_block(1, quantized, 8, 128);
    *slots[i].op = std::move(dense);
    double err = 0;
    for (size_t k = 0; k < h.data.size(); ++k) err += std::pow(double(quantized.data[k]) - reference.data[k], 2);
    EXPECT_NEAR(s.per_unit[i].block_error, err / double(h.rows()), 1e-6 * err / double(h.rows())) << name;
    EXPECT_GT(s.per_unit[i].block_error, 0.0) << name;
  }
  // q, k, v share an input (one entry), and experts under 32 tokens also get all-token entries.
  std::set<std::string> keys;
  for (size_t i = 0; i < s.units.size(); ++i) {
    if (s.per_unit[i].loss.empty()) continue;
    if (s.per_unit[i].tokens > 0) keys.insert(Key::key(s.units[i]));
    if (s.units[i].role == TensorRole::RoutedExpert && s.per_unit[i].tokens < analysis::kMinExpertTokens)
      keys.insert(Key::key(s.units[i], Key::Tokens::AllOfLayer));
  }
  EXPECT_GE(keys.size(), 4u * (2 + 8 * 2));
  keys.insert("lm_head");
  EXPECT_EQ(m.hessians.size(), keys.size());
  for (const std::string& k : keys) EXPECT_TRUE(m.hessians.contains(k)) << k;

  // The lm_head's entry: the last block's output through the final norm, 2/N Σ x xᵀ in double.
  Tensor last = h;
  for (int layer = 1; layer < 4; ++layer) model->run_block(layer, last, 8, 128);
  model->final_norm(last);
  const Tensor& stored = m.hessians.get("lm_head");
  const Tensor expected = testing::hessian_of(std::vector<double>(last.data.begin(), last.data.end()), last.cols());
  ASSERT_EQ(stored.shape, expected.shape);
  for (size_t k = 0; k < expected.data.size(); ++k)
    EXPECT_NEAR(stored.data[k], expected.data[k], 1e-4 * (1 + std::abs(expected.data[k]))) << k;

  const fs::path file = fs::temp_directory_path() / "moeq-hessians-test.safetensors";
  m.hessians.save(file);
  const analysis::HessianStore back = analysis::HessianStore::load(file);
  EXPECT_EQ(back.size(), m.hessians.size());
  EXPECT_EQ(back.get("L2.E3.down").data, m.hessians.get("L2.E3.down").data);
}

// Block 1's output KL: the model on the first 8 calibration sequences with every body linear of
// block 1 at GPTQ int3 (the rest unquantized), against the unquantized model: mean over tokens of
// Σ_v p_v (log p_v − log q_v), recomputed here in double from the logits.
void check_OutputKlOfABlock() {
  const Measured& m = demo_measured();
  const ModelStats& s = m.stats;
  ASSERT_EQ(s.layer_output_kl.size(), 4u);
  ASSERT_EQ(s.layer_block_error.size(), 4u);
  const Checkpoint ck = Checkpoint::open(demo_model());
  auto model = Model::load(demo_model());
  const Tokenizer tok = Tokenizer::load(demo_model() / "tokenizer.json");
  const CalibSet calib = load_calibration(tok, demo_calib_options());
  const Tensor reference = model->forward(calib.ids, 8, 128);
  std::vector<LinearSlot> slots = model->linears();
  std::vector<LinearPtr> dense(slots.size());
  for (size_t i = 0; i < s.units.size(); ++i)
    if (s.units[i].layer == 1 && !s.per_unit[i].loss.empty() && s.per_unit[i].tokens > 0) {
      dense[i] = std::move(*slots[i].op);
      *slots[i].op = make_quant_linear(gptq_from_store(m, ck, i, 1).q);
    }
  const Tensor quantized = model->forward(calib.ids, 8, 128);
  const int64_t vocab = model->vocab_size();
  auto log_probs = [&](const float* row) {
    std::vector<double> out(row, row + vocab);
    const double mx = *std::max_element(out.begin(), out.end());
    double sum = 0;
    for (double v : out) sum += std::exp(v - mx);
    for (double& v : out) v -= mx + std::log(sum);
    return out;
  };
  double kl = 0;
  for (int64_t t = 0; t < 8 * 128; ++t) {
    const std::vector<double> p = log_probs(&reference.data[size_t(t * vocab)]), q = log_probs(&quantized.data[size_t(t * vocab)]);
    for (int64_t v = 0; v < vocab; ++v) kl += std::exp(p[size_t(v)]) * (p[size_t(v)] - q[size_t(v)]);
  }
  kl /= 8 * 128;
  EXPECT_GT(kl, 0.0);
  EXPECT_NEAR(s.layer_output_kl[1], kl, 1e-3 * kl);
  for (size_t l = 0; l < 4; ++l) {
    EXPECT_GT(s.layer_output_kl[l], 0.0) << l;
    EXPECT_GT(s.layer_block_error[l], 0.0) << l;
  }
}

// The expected loss a recipe incurs under the measurements: Σ over body units of the loss of the
// candidate the recipe gives it.
double expected_loss(const ModelStats& s, const plan::Recipe& recipe, double& bits) {
  const plan::QuantPlan plan = plan::resolve(recipe, s.units);
  double total = 0;
  for (size_t i = 0; i < s.units.size(); ++i) {
    if (s.per_unit[i].loss.empty()) continue;
    const auto it = std::find(s.candidates.begin(), s.candidates.end(), plan.entries[i].action);
    EXPECT_NE(it, s.candidates.end()) << s.units[i].name;
    total += s.per_unit[i].loss[size_t(it - s.candidates.begin())];
  }
  bits = plan::bits_report(plan).quantized.nominal_bits;
  return total;
}

void check_TargetBitsBeatsTheHeuristicsAtTheirOwnBits() {
  const ModelStats& s = demo_stats();
  const auto gptq = [](int b) { return plan::QuantAction::int_bits(plan::QuantMethod::Gptq, b); };
  plan::RoleActions base = plan::RoleActions::all(gptq(2));
  plan::RoleActions attn4 = base;
  attn4.attention = gptq(4);
  const std::vector<plan::Recipe> heuristics = {
      plan::by_role(s.units, attn4),
      plan::first_last_blocks(s.units, {base, gptq(4), 1, 0}),
      plan::expert_frequency(s.units, s.routing, {base, gptq(4), plan::PickScope::PerLayer, 2, plan::Pick::Top, 0}),
      plan::top_unit_scores(s.units, s.outlier_scores(), {base, gptq(4), 10}),
  };
  for (const plan::Recipe& h : heuristics) {
    double bits = 0;
    const double heuristic = expected_loss(s, h, bits);
    const analysis::TargetBitsResult opt = analysis::target_bits_recipe(s, bits);
    double opt_bits = 0;
    const double optimised = expected_loss(s, opt.recipe, opt_bits);
    EXPECT_LE(opt_bits, bits + 1e-12) << h.description;
    EXPECT_NEAR(optimised, opt.allocation.total_loss, 1e-9 * optimised) << "the recipe reproduces the allocation";
    EXPECT_LT(optimised, heuristic) << h.description;
  }
  EXPECT_THROW(analysis::target_bits_recipe(s, 1.9), Error);
}

// One test, so that the suite measures the demo model once (ctest runs every test in its own
// process).
TEST(ModelStats, DemoModel) {
  check_RoutingAndBlockScoresMatchASequenceAtATimeRun();
  check_TokensAndOutliersPerUnit();
  check_SensitivityFallsWithEveryBit();
  check_JsonRoundTripAndCache();
  check_StoredHessiansAndBlockErrorsGiveTheMeasuredLosses();
  check_OutputKlOfABlock();
  check_TargetBitsBeatsTheHeuristicsAtTheirOwnBits();
}

}  // namespace
}  // namespace moeq
