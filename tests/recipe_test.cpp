// Recipes: parsing, every error, resolution (first match wins, routers kept, unmatched
// reported), and the TOML round trip.
#include "quant/plan/recipe.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <tuple>

#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "plan_units.h"
#include "quant/plan/plan.h"
#include "quant/plan/scorers.h"
#include "test_util.h"

namespace moeq::plan {
namespace {

using moeq::testing::qwen2_moe_units;

constexpr const char* kFullRecipe = R"(
version = 1
description = "attention 4-bit, experts 2-bit"

[calibration]
samples = 64
seqlen = 256
seed = 7
file = "calib.txt"
routing_weighted = true

[gptq]
damp_percent = 0.05
block_size = 64
act_order = true
static_groups = true
mse_skip = ["attention", "lm_head"]

[awq]
n_grid = 10
duo_scaling = false
expert_scale = "per_layer"
clip = false

[under_calibrated]
policy = "rtn"
min_tokens = 16

[int_scales]
division = "reciprocal"

[[rule]]
note = "hot experts"
role = "routed_expert"
layers = [1, "3-4"]
experts = ["0-1", 7]
projection = ["gate", "up"]
method = "gptq"
bits = 8
group_size = 0
symmetric = true
act_bits = 8

[[rule]]
name_regex = 'layers\.0\.mlp\.down'
method = "rtn"
format = "nf4"
double_quant = false

[[rule]]
role = ["attention", "routed_expert", "shared_expert", "dense_mlp"]
method = "awq"
bits = 2
)";

using testing::error_of;

std::string parse_error(const std::string& text) {
  return error_of([&] { parse_recipe(text, "r.toml"); });
}

std::string resolve_error(const std::string& text) {
  return error_of([&] { resolve(parse_recipe(text, "r.toml"), qwen2_moe_units()); });
}

TEST(Recipe, ParsesEveryField) {
  Recipe r = parse_recipe(kFullRecipe, "full.toml");
  EXPECT_EQ(r.source, "full.toml");
  EXPECT_EQ(r.description, "attention 4-bit, experts 2-bit");
  EXPECT_EQ(r.settings.calibration, (CalibrationSettings{64, 256, 7, "calib.txt", true}));
  EXPECT_EQ(r.settings.gptq, (GptqSettings{0.05, 64, true, true, true, {TensorRole::Attention, TensorRole::LmHead}}));
  EXPECT_FALSE(r.settings.gptq.searches_range(TensorRole::Attention));
  EXPECT_TRUE(r.settings.gptq.searches_range(TensorRole::RoutedExpert));
  GptqSettings no_search;
  no_search.mse = false;
  EXPECT_FALSE(no_search.searches_range(TensorRole::RoutedExpert));
  EXPECT_EQ(r.settings.awq, (AwqSettings{10, false, false, AwqExpertScale::PerLayer}));
  EXPECT_EQ(r.settings.under_calibrated, (UnderCalibratedSettings{UnderCalibratedPolicy::Rtn, 16}));
  EXPECT_EQ(r.settings.int_scales.division, ScaleDivision::Reciprocal);
  ASSERT_EQ(r.rules.size(), 3u);

  const Rule& hot = r.rules[0];
  EXPECT_EQ(hot.note, "hot experts");
  EXPECT_EQ(hot.select.roles, std::vector<TensorRole>{TensorRole::RoutedExpert});
  EXPECT_EQ(hot.select.layers->ranges(), (std::vector<std::pair<int, int>>{{1, 1}, {3, 4}}));
  EXPECT_EQ(hot.select.experts->ranges(), (std::vector<std::pair<int, int>>{{0, 1}, {7, 7}}));
  EXPECT_EQ(hot.select.projections, (std::vector<std::string>{"gate", "up"}));
  QuantAction w8a8 = QuantAction::int_bits(QuantMethod::Gptq, 8, 0, true);
  EXPECT_NE(hot.action, w8a8);  // the activation bits are part of the action
  w8a8.act_bits = 8;
  EXPECT_EQ(hot.action, w8a8);
  EXPECT_EQ(describe(hot.action), "gptq int8 g0 sym a8");

  const Rule& nf4 = r.rules[1];
  EXPECT_EQ(nf4.select.name_regex, R"(layers\.0\.mlp\.down)");
  EXPECT_EQ(nf4.action.method, QuantMethod::Rtn);
  EXPECT_EQ(nf4.action.spec.format, QuantFormat::NF4);
  EXPECT_EQ(nf4.action.spec.bits, 4);
  EXPECT_EQ(nf4.action.spec.group_size, 64);
  EXPECT_FALSE(nf4.action.spec.double_quant);

  EXPECT_EQ(r.rules[2].select.roles.size(), 4u);
  EXPECT_EQ(r.rules[2].action, QuantAction::int_bits(QuantMethod::Awq, 2, 128, false));
  EXPECT_EQ(r.rules[2].action.act_bits, 16);
}

TEST(Recipe, DefaultsWhenTablesAreMissing) {
  Recipe r = parse_recipe("[[rule]]\nmethod = \"rtn\"\nformat = \"fp4\"\n");
  EXPECT_EQ(r.settings, RecipeSettings{});
  EXPECT_EQ(r.rules[0].action.spec.group_size, 64);
  EXPECT_TRUE(r.rules[0].action.spec.double_quant);
  EXPECT_TRUE(parse_recipe("").rules.empty());
}

TEST(Recipe, UnknownKeysNameFileRuleAndKey) {
  EXPECT_EQ(parse_error("[[rule]]\nmethod = \"rtn\"\nbits = 4\n[[rule]]\nmethod = \"rtn\"\nbits = 4\nbitz = 3\n"),
            "r.toml: rule 2: unknown key 'bitz' (expected one of: note, role, layers, experts, projection, "
            "name_regex, method, format, bits, group_size, symmetric, double_quant, act_bits)");
  EXPECT_EQ(parse_error("[gptq]\ndamp = 0.1\n").rfind("r.toml: [gptq]: unknown key 'damp'", 0), 0u);
  EXPECT_EQ(parse_error("rules = 1\n").rfind("r.toml: unknown key 'rules'", 0), 0u);
  EXPECT_EQ(parse_error("[calibration]\nsample = 1\n").rfind("r.toml: [calibration]: unknown key 'sample'", 0), 0u);
}

TEST(Recipe, RejectsBadBitsAndGroupSizes) {
  auto rule = [](const std::string& body) { return parse_error("[[rule]]\nmethod = \"gptq\"\n" + body); };
  EXPECT_EQ(rule("bits = 5\n"), "r.toml: rule 1: field 'bits' = 5 is not supported by format int (2, 3, 4 or 8)");
  EXPECT_EQ(rule("bits = 4\ngroup_size = 100\n"),
            "r.toml: rule 1: field 'group_size' = 100 is not supported by format int (0 = one group per row, 32, "
            "64 or 128)");
  EXPECT_EQ(rule("format = \"nf4\"\nbits = 3\n"), "r.toml: rule 1: field 'bits' = 3 but format nf4 is 4-bit");
  EXPECT_EQ(rule("format = \"nf4\"\ngroup_size = 128\n"),
            "r.toml: rule 1: field 'group_size' = 128 is not supported by format nf4 (64)");
  EXPECT_EQ(rule("group_size = 64\n"), "r.toml: rule 1: field 'bits' is missing (2, 3, 4 or 8 for format int)");
  EXPECT_EQ(rule("bits = \"4\"\n"), "r.toml: rule 1: field 'bits' must be an integer");
  EXPECT_EQ(rule("bits = 4\ndouble_quant = true\n"), "r.toml: rule 1: field 'double_quant' does not apply to format int");
  EXPECT_EQ(rule("format = \"fp4\"\nsymmetric = true\n"), "r.toml: rule 1: field 'symmetric' does not apply to format fp4");
  EXPECT_EQ(rule("format = \"int5\"\n"), "r.toml: rule 1: field 'format' = 'int5' (expected int, nf4 or fp4)");
  EXPECT_EQ(rule("format = \"nf4\"\n"), "r.toml: rule 1: method = \"gptq\" needs format int; format nf4 takes method = \"rtn\"");
  EXPECT_EQ(parse_error("[[rule]]\nmethod = \"awq\"\nformat = \"fp4\"\n"),
            "r.toml: rule 1: method = \"awq\" needs format int; format fp4 takes method = \"rtn\"");
  EXPECT_EQ(rule("bits = 4\nact_bits = 4\n"),
            "r.toml: rule 1: field 'act_bits' = 4 is not supported (8: each token's input to INT8; 16: none)");
}

TEST(Recipe, RejectsBadRulesAndSettings) {
  EXPECT_EQ(parse_error("[[rule]]\nbits = 4\n"), "r.toml: rule 1: field 'method' is missing (rtn, gptq, awq or none)");
  EXPECT_EQ(parse_error("[[rule]]\nmethod = \"none\"\nbits = 4\n"),
            "r.toml: rule 1: field 'bits' has no effect with method = \"none\"");
  EXPECT_EQ(parse_error("[[rule]]\nmethod = \"none\"\nact_bits = 8\n"),
            "r.toml: rule 1: field 'act_bits' has no effect with method = \"none\"");
  EXPECT_EQ(parse_error("[[rule]]\nmethod = \"hqq\"\n"), "r.toml: rule 1: field 'method' = 'hqq' (expected rtn, gptq, awq or none)");
  EXPECT_EQ(parse_error("[[rule]]\nrole = \"expert\"\nmethod = \"none\"\n").rfind("r.toml: rule 1: field 'role' = 'expert'", 0), 0u);
  EXPECT_EQ(parse_error("[[rule]]\nlayers = [\"3-1\"]\nmethod = \"none\"\n"),
            "r.toml: rule 1: field 'layers': items must be indices or ranges like \"0-3\"");
  EXPECT_EQ(parse_error("[[rule]]\nexperts = []\nmethod = \"none\"\n"),
            "r.toml: rule 1: field 'experts' is empty (leave it out to select every index)");
  EXPECT_EQ(parse_error("[[rule]]\nname_regex = \"(\"\nmethod = \"none\"\n").rfind("r.toml: rule 1: bad name_regex '('", 0), 0u);
  EXPECT_EQ(parse_error("[rule]\nmethod = \"rtn\"\n"), "r.toml: field 'rule' must be an array of tables ([[rule]] blocks)");
  EXPECT_EQ(parse_error("calibration = 5\n"), "r.toml: field 'calibration' must be a table ([calibration])");
  EXPECT_EQ(parse_error("version = 2\n"), "r.toml: field 'version' = 2 (this moeq reads recipe version 1)");
  EXPECT_EQ(parse_error("[gptq]\ndamp_percent = 1.5\n"), "r.toml: [gptq]: field 'damp_percent' = 1.5 must be in [0, 1)");
  EXPECT_EQ(parse_error("[gptq]\nmse_skip = [\"attn\"]\n").rfind("r.toml: [gptq]: field 'mse_skip' = 'attn'", 0), 0u);
  EXPECT_EQ(parse_error("[calibration]\nsamples = 0\n"), "r.toml: [calibration]: field 'samples' = 0 must be at least 1");
  EXPECT_EQ(parse_error("[under_calibrated]\npolicy = \"skip\"\n"),
            "r.toml: [under_calibrated]: field 'policy' = 'skip' (expected all_tokens or rtn)");
  EXPECT_EQ(parse_error("[awq]\nexpert_scale = \"per_group\"\n[[rule]]\nmethod = \"rtn\"\n"),
            "r.toml: [awq]: field 'expert_scale' = 'per_group' (expected per_expert or per_layer)");
  EXPECT_EQ(parse_error("[int_scales]\ndivision = \"truncate\"\n"),
            "r.toml: [int_scales]: field 'division' = 'truncate' (expected exact or reciprocal)");
  EXPECT_EQ(parse_error("[[rule]]\nmethod = \"rtn\"\nbits = 4\nbits = 2\n").rfind("r.toml:4:", 0), 0u);
  EXPECT_EQ(error_of([] { load_recipe("/nonexistent/recipe.toml"); }).rfind("/nonexistent/recipe.toml:", 0), 0u);
}

TEST(Recipe, UnmatchedRuleNamesFileAndRule) {
  EXPECT_EQ(resolve_error("[[rule]]\nrole = \"attention\"\nmethod = \"rtn\"\nbits = 4\n"
                          "[[rule]]\nrole = \"routed_expert\"\nlayers = \"0\"\nmethod = \"rtn\"\nbits = 4\n"),
            "r.toml: rule 2 matches no tensor of the model");
  EXPECT_EQ(resolve_error("[[rule]]\nnote = \"typo\"\nprojection = \"w1\"\nmethod = \"rtn\"\nbits = 4\n"),
            "r.toml: rule 1 (typo) matches no tensor of the model");
  // NF4 blocks of 64 run along rows: the shared-expert gate [1, 256] fits, a [16, 200] matrix would not.
  std::vector<QuantUnit> odd{{"odd.weight", TensorRole::Attention, 0, -1, "q", 16, 200}};
  EXPECT_EQ(error_of([&] { resolve(parse_recipe("[[rule]]\nmethod = \"rtn\"\nformat = \"nf4\"\n", "r.toml"), odd); }),
            "r.toml: rule 1 gives nf4 dq to 'odd.weight', whose 200 input features are not a multiple of 64");
  // A name-only rule cannot reach a router: the error says why.
  EXPECT_EQ(resolve_error("[[rule]]\nname_regex = 'mlp\\.gate\\.weight$'\nmethod = \"rtn\"\nbits = 8\n"),
            "r.toml: rule 1 matches no tensor of the model (routers and shared-expert gates are only selected "
            "by a role naming them)");
}

// The embedding, a lookup table, takes RTN and no act_bits; the lm_head any method.
TEST(Recipe, EmbeddingTakesOnlyRtnAndLmHeadAnyMethod) {
  const std::string rest = "[[rule]]\nrole = \"attention\"\nmethod = \"rtn\"\nbits = 4\n";
  auto outside = [&](const char* role, const char* method) {
    return resolve_error(fmt::format("[[rule]]\nrole = \"{}\"\nmethod = \"{}\"\nbits = 4\n", role, method) + rest);
  };
  EXPECT_EQ(outside("embedding", "gptq"), "r.toml: rule 1: 'model.embed_tokens.weight' can only be quantized with rtn");
  EXPECT_EQ(outside("embedding", "awq"), "r.toml: rule 1: 'model.embed_tokens.weight' can only be quantized with rtn");
  EXPECT_EQ(outside("embedding", "rtn"), "");
  for (const char* method : {"rtn", "gptq", "awq"}) EXPECT_EQ(outside("lm_head", method), "") << method;
  EXPECT_EQ(resolve_error("[[rule]]\nrole = \"embedding\"\nmethod = \"rtn\"\nbits = 8\nact_bits = 8\n" + rest),
            "r.toml: rule 1: field 'act_bits' has no effect on 'model.embed_tokens.weight', a lookup table");
}

TEST(Recipe, FirstMatchWins) {
  Recipe r = parse_recipe(R"(
[[rule]]
role = "routed_expert"
layers = "2-3"
experts = [0, 5]
method = "gptq"
bits = 8
[[rule]]
role = "routed_expert"
layers = [3]
method = "gptq"
bits = 4
[[rule]]
role = ["routed_expert", "shared_expert"]
method = "gptq"
bits = 2
)");
  QuantPlan plan = resolve(r, qwen2_moe_units());
  std::map<int, int> by_bits;  // bits → routed-expert units
  for (const PlanEntry& e : plan.entries)
    if (e.unit.role == TensorRole::RoutedExpert) ++by_bits[e.action.spec.bits];
  EXPECT_EQ(by_bits, (std::map<int, int>{{8, 2 * 2 * 3}, {4, 14 * 3}, {2, 7 * 16 * 3 - 12 - 42}}));
  EXPECT_EQ(plan.find("model.layers.3.mlp.experts.5.up_proj.weight")->rule, 0);
  EXPECT_EQ(plan.find("model.layers.3.mlp.experts.6.up_proj.weight")->rule, 1);
  EXPECT_EQ(plan.find("model.layers.4.mlp.shared_expert.down_proj.weight")->action.spec.bits, 2);
  EXPECT_TRUE(plan.warnings.empty());
}

TEST(Recipe, RoutersStay16BitUnlessSelectedByRole) {
  auto units = qwen2_moe_units();
  QuantPlan plain = resolve(parse_recipe("[[rule]]\nmethod = \"rtn\"\nbits = 4\n"), units);
  std::vector<std::string> unmatched = plain.unmatched();
  // Routers and shared-expert gates of layers 1-7, the embedding and lm_head.
  ASSERT_EQ(unmatched.size(), 7u + 7u + 2u);
  for (const std::string& name : unmatched)
    EXPECT_TRUE(needs_named_role(plain.find(name)->unit.role)) << name;
  EXPECT_FALSE(plain.find("lm_head.weight")->action.quantizes());
  EXPECT_TRUE(plain.warnings.empty());

  QuantPlan routed = resolve(parse_recipe(R"(
[[rule]]
role = "router"
method = "rtn"
bits = 8
[[rule]]
role = ["attention", "routed_expert", "shared_expert", "dense_mlp"]
method = "rtn"
bits = 4
)", "r.toml"), units);
  EXPECT_EQ(routed.find("model.layers.1.mlp.gate.weight")->action.spec.bits, 8);
  EXPECT_FALSE(routed.find("model.layers.1.mlp.shared_expert_gate.weight")->action.quantizes());
  ASSERT_EQ(routed.warnings.size(), 1u);
  EXPECT_EQ(routed.warnings[0], "r.toml: rule 1 quantizes 7 router/shared-expert-gate tensors, kept 16-bit by default: "
                                "routing decisions may change");
  // Units no rule matched are reported and kept as they are.
  EXPECT_EQ(routed.unmatched(), (std::vector<std::string>{
      "model.embed_tokens.weight", "model.layers.1.mlp.shared_expert_gate.weight",
      "model.layers.2.mlp.shared_expert_gate.weight", "model.layers.3.mlp.shared_expert_gate.weight",
      "model.layers.4.mlp.shared_expert_gate.weight", "model.layers.5.mlp.shared_expert_gate.weight",
      "model.layers.6.mlp.shared_expert_gate.weight", "model.layers.7.mlp.shared_expert_gate.weight",
      "lm_head.weight"}));
  EXPECT_NE(routed.summary().find("shared_expert_gate        7 × unchanged (no rule)"), std::string::npos)
      << routed.summary();
}

TEST(Recipe, WarnsAboutRulesThatDecideNothing) {
  QuantPlan plan = resolve(parse_recipe("[[rule]]\nmethod = \"rtn\"\nbits = 4\n[[rule]]\nrole = \"attention\"\n"
                                        "method = \"rtn\"\nbits = 8\n", "r.toml"),
                           qwen2_moe_units());
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_EQ(plan.warnings[0], "r.toml: rule 2 decides no tensor: earlier rules take all 32 it selects");
}

TEST(Recipe, TomlRoundTrip) {
  Recipe r = parse_recipe(kFullRecipe, "full.toml");
  r.rules[0].note = "quotes \" and 'apostrophes' and \\ backslash\tand tab";
  r.rules[1].select.name_regex = R"(^model\.layers\.(0|1)\..*'s$)";
  std::string text = to_toml(r);
  Recipe back = parse_recipe(text, "back.toml");
  EXPECT_EQ(back, r) << text;
  EXPECT_EQ(to_toml(back), text);
  // Readable: one [[rule]] per rule, ranges as strings, regexes as literal strings when possible.
  EXPECT_NE(text.find("layers = [1, \"3-4\"]\n"), std::string::npos) << text;
  EXPECT_NE(to_toml(parse_recipe(kFullRecipe)).find(R"(name_regex = 'layers\.0\.mlp\.down')"), std::string::npos);

  // Algorithm tables are written where a rule uses the algorithm or a value is not the default.
  Recipe rtn = parse_recipe("[awq]\nn_grid = 5\n[[rule]]\nmethod = \"rtn\"\nbits = 4\n");
  std::string rtn_text = to_toml(rtn);
  EXPECT_EQ(rtn_text.find("[gptq]"), std::string::npos) << rtn_text;
  EXPECT_NE(rtn_text.find("[awq]\nn_grid = 5\n"), std::string::npos) << rtn_text;
  EXPECT_EQ(parse_recipe(rtn_text), rtn);

  std::filesystem::path file = std::filesystem::temp_directory_path() / fmt::format("moeq_recipe_{}.toml", getpid());
  save_recipe(r, file);
  Recipe loaded = load_recipe(file);
  EXPECT_EQ(loaded.source, file.string());
  EXPECT_EQ(loaded, r);
  std::filesystem::remove(file);
}

// rules_for must reproduce any assignment exactly, and compactly when it has structure.
TEST(Recipe, PlanToRecipeReproducesThePlan) {
  auto units = qwen2_moe_units();
  QuantPlan plan = resolve(parse_recipe(kFullRecipe), units);
  Recipe again = plan_to_recipe(plan, "again");
  EXPECT_EQ(again.settings, plan.settings);
  QuantPlan replay = resolve(parse_recipe(to_toml(again)), units);
  for (size_t i = 0; i < units.size(); ++i) EXPECT_EQ(replay.entries[i].action, plan.entries[i].action) << units[i].name;
  // attention; layer 0 dense down (nf4); dense gate/up; shared; hot experts; the other experts.
  EXPECT_LE(again.rules.size(), 8u) << to_toml(again);

  // A random assignment (with routers) still round-trips, through exact names where needed.
  SeededRandom random(3);
  std::vector<std::optional<QuantAction>> actions(units.size());
  for (auto& a : actions) {
    uint64_t pick = random.below(4);
    if (pick > 0) a = QuantAction::int_bits(QuantMethod::Rtn, pick == 1 ? 2 : pick == 2 ? 4 : 8);
  }
  Recipe random_recipe;
  random_recipe.rules = rules_for(units, actions);
  QuantPlan random_plan = resolve(parse_recipe(to_toml(random_recipe)), units);
  for (size_t i = 0; i < units.size(); ++i) {
    if (actions[i])
      EXPECT_EQ(random_plan.entries[i].action, *actions[i]) << units[i].name;
    else
      EXPECT_EQ(random_plan.entries[i].rule, -1) << units[i].name;
  }
}

TEST(Recipe, CompactRulesOmitSelectorsCoveringTheModel) {
  auto units = qwen2_moe_units();
  std::vector<std::optional<QuantAction>> actions(units.size());
  QuantAction int4 = QuantAction::int_bits(QuantMethod::Gptq, 4);
  for (size_t i = 0; i < units.size(); ++i)
    if (units[i].role == TensorRole::RoutedExpert && (units[i].layer == 2 || units[i].layer == 3) &&
        units[i].expert < 4)
      actions[i] = int4;
  std::vector<Rule> rules = rules_for(units, actions);
  ASSERT_EQ(rules.size(), 1u);
  Selector expected;
  expected.roles = {TensorRole::RoutedExpert};
  expected.layers = IndexSet();
  expected.layers->add(2, 3);
  expected.experts = IndexSet();
  expected.experts->add(0, 3);
  EXPECT_EQ(rules[0].select, expected);
  EXPECT_EQ(rules[0].action, int4);
}

// Every ```toml block of docs/RECIPES.md is a valid recipe for a qwen2_moe-shaped model.
TEST(Recipe, DocsExamplesResolve) {
  std::ifstream in(moeq::testing::source_dir() / "docs/RECIPES.md");
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  int blocks = 0;
  for (size_t at = doc.find("```toml\n"); at != std::string::npos; at = doc.find("```toml\n", at)) {
    size_t begin = at + 8, end = doc.find("```", begin);
    std::string label = fmt::format("RECIPES.md block {}", ++blocks);
    EXPECT_NO_THROW(resolve(parse_recipe(doc.substr(begin, end - begin), label), qwen2_moe_units())) << label;
    at = end + 3;
  }
  EXPECT_EQ(blocks, 11);
}

TEST(Recipe, UnitOfALinearSlot) {
  struct Fake : LinearOp {
    int64_t in_features() const override { return 3; }
    int64_t out_features() const override { return 5; }
    void forward(const float*, int64_t, float*) const override {}
    void weight_rows(int64_t, int64_t, float*) const override {}
    size_t storage_bytes() const override { return 0; }
    std::string format_name() const override { return "fake"; }
  };
  LinearPtr op = std::make_unique<Fake>();
  LinearSlot slot{"model.layers.2.mlp.experts.7.down_proj.weight", TensorRole::RoutedExpert, 2, 7, "down", &op};
  QuantUnit unit = unit_of(slot);
  EXPECT_EQ(unit.name, slot.name);
  EXPECT_EQ(unit.role, TensorRole::RoutedExpert);
  EXPECT_EQ(unit.layer, 2);
  EXPECT_EQ(unit.expert, 7);
  EXPECT_EQ(unit.projection, "down");
  EXPECT_EQ(unit.rows, 5);
  EXPECT_EQ(unit.cols, 3);
}

// The synthetic units are the real model's linears (Model::linears, with their shapes), plus
// the embedding; with the norms and biases they make up the whole checkpoint.
TEST(PlanUnits, MatchQwen2MoeModel) {
  std::filesystem::path dir = moeq::testing::shared_dir() / "models/qwen2_moe";
  auto model = Model::load(dir);
  std::vector<QuantUnit> expected = qwen2_moe_units();
  std::vector<LinearSlot> slots = model->linears();
  std::map<std::string, QuantUnit> by_name;
  for (const LinearSlot& slot : slots) by_name[slot.name] = unit_of(slot);
  ASSERT_EQ(by_name.size(), expected.size());
  for (const QuantUnit& u : expected) {
    ASSERT_TRUE(by_name.count(u.name)) << u.name;
    const QuantUnit& real = by_name[u.name];
    EXPECT_EQ(std::tuple(real.role, real.layer, real.expert, real.projection, real.rows, real.cols),
              std::tuple(u.role, u.layer, u.expert, u.projection, u.rows, u.cols)) << u.name;
  }
  int64_t total = 0, in_units = 0;
  Checkpoint checkpoint = Checkpoint::open(dir);
  for (const auto& [name, view] : checkpoint.tensors()) total += view.numel();
  for (const QuantUnit& u : qwen2_moe_units()) in_units += u.numel();
  EXPECT_EQ(total - in_units, moeq::testing::kQwen2MoeOtherParams);
  EXPECT_EQ(total, 25171968);  // "25.2 M" in shared/README.md
}

// Every recipe shipped in recipes/ resolves against each trained model (every rule matches a
// tensor, no warning) and leaves its routers 16-bit.
TEST(Recipe, ShippedRecipesResolveOnTrainedModels) {
  std::vector<std::filesystem::path> recipes;
  for (const auto& f : std::filesystem::directory_iterator(moeq::testing::source_dir() / "recipes"))
    if (f.path().extension() == ".toml") recipes.push_back(f.path());
  ASSERT_GE(recipes.size(), 14u);
  for (const char* name : {"mixtral", "qwen2_moe", "qwen3_moe"}) {
    const std::vector<QuantUnit> units = units_of(Model::load(moeq::testing::shared_model(name))->linears());
    for (const auto& file : recipes) {
      const std::string label = fmt::format("{} on {}", file.filename().string(), name);
      QuantPlan plan;
      ASSERT_NO_THROW(plan = resolve(load_recipe(file), units)) << label;
      EXPECT_EQ(plan.warnings, std::vector<std::string>{}) << label;
      for (const PlanEntry& e : plan.entries)
        EXPECT_FALSE(e.unit.role == TensorRole::Router && e.action.quantizes()) << label << ": " << e.unit.name;
    }
  }
}

}  // namespace
}  // namespace moeq::plan
