// `moeq bench`: the paper grid, grid files and their errors, the reports, and a small end-to-end
// run on the demo model that resumes without recomputing finished rows.
#include "bench/bench.h"

#include <filesystem>
#include <fstream>
#include <sys/wait.h>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "bench/bench_report.h"
#include "bench/grid.h"
#include "eval/perplexity.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "quant/plan/bits.h"
#include "quant/plan/plan.h"
#include "core/error.h"
#include "plan_units.h"
#include "test_util.h"

namespace moeq::bench {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> names(const Grid& g) {
  std::vector<std::string> out;
  for (const GridRow& r : g.rows) out.push_back(r.name);
  return out;
}

TEST(BenchGrid, PaperGridForQwen2Moe) {
  const Grid g = paper_grid(testing::qwen2_moe_units());
  const std::vector<std::string> expected = {
      "bf16", "uniform-2", "uniform-3", "uniform-4", "uniform-8", "attn4-rest2", "attn8-rest2", "shared4-rest2",
      "shared8-rest2", "first2-experts4", "last2-experts4", "freq-top4-experts4", "freq-random4-experts4",
      "outlier-top5pct-4", "outlier-top10pct-4", "outlier-top25pct-4", "outlier-random5pct-4",
      "outlier-random10pct-4", "outlier-random25pct-4", "blockscore-top2-experts4", "target-2.25", "target-2.5",
      "target-3", "target-3.5"};
  EXPECT_EQ(names(g), expected);
  EXPECT_EQ(g.rows[12].pick, plan::Pick::Random);
  EXPECT_EQ(g.rows[12].count, 4);  // 16 experts / 4
}

TEST(BenchGrid, PaperGridSkipsSharedRowsWithoutSharedExperts) {
  std::vector<plan::QuantUnit> units = testing::qwen2_moe_units();
  std::erase_if(units, [](const plan::QuantUnit& u) { return u.role == TensorRole::SharedExpert; });
  for (const std::string& n : names(paper_grid(units))) EXPECT_EQ(n.find("shared"), std::string::npos) << n;
}

TEST(BenchGrid, ParsesEveryStrategy) {
  const Grid g = parse_grid(R"(
[[row]]
name = "ref"
strategy = "bf16"
[[row]]
name = "a4"
family = "attention"
bits = 2
attention_bits = 4
[[row]]
name = "freq"
strategy = "frequency"
count = 3
pick = "random"
seed = 7
scope = "global"
[[row]]
name = "out"
strategy = "outlier"
percent = 12.5
high_bits = 8
[[row]]
name = "proj"
strategy = "projection"
gate_up_bits = 2
down_bits = 4
[[row]]
name = "opt"
strategy = "target_bits"
target_bits = 2.75
)",
                            "g.toml");
  ASSERT_EQ(g.rows.size(), 6u);
  EXPECT_EQ(g.rows[0].strategy, Strategy::Bf16);
  EXPECT_EQ(g.rows[1].family, "attention");
  EXPECT_EQ(g.rows[1].attention_bits, 4);
  EXPECT_EQ(g.rows[2].family, "frequency");
  EXPECT_EQ(g.rows[2].seed, 7u);
  EXPECT_EQ(g.rows[2].scope, plan::PickScope::Global);
  EXPECT_EQ(g.rows[2].pick, plan::Pick::Random);
  EXPECT_EQ(g.rows[3].percent, 12.5);
  EXPECT_EQ(g.rows[3].high_bits, 8);
  EXPECT_EQ(g.rows[4].down_bits, 4);
  EXPECT_EQ(g.rows[5].target_bits, 2.75);

  // The rows turn into recipes that resolve against the model's units.
  analysis::ModelStats stats;
  stats.units = testing::qwen2_moe_units();
  const plan::Recipe r = row_recipe(g.rows[4], stats);
  const plan::QuantPlan p = plan::resolve(r, stats.units);
  EXPECT_EQ(p.find("model.layers.3.mlp.experts.2.down_proj.weight")->action.spec.bits, 4);
  EXPECT_EQ(p.find("model.layers.3.mlp.experts.2.up_proj.weight")->action.spec.bits, 2);
  EXPECT_FALSE(p.find("model.layers.3.mlp.gate.weight")->action.quantizes());
}

void expect_error(const std::string& text, const std::string& part1, const std::string& part2) {
  try {
    parse_grid(text, "bad.toml");
    FAIL() << "accepted:\n" << text;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("bad.toml"), std::string::npos) << m;
    EXPECT_NE(m.find(part1), std::string::npos) << m;
    EXPECT_NE(m.find(part2), std::string::npos) << m;
  }
}

TEST(BenchGrid, BadGridsNameFileRowAndField) {
  expect_error("[[row]]\nname = \"a\"\nbitz = 2\n", "row 1 ('a')", "'bitz'");
  expect_error("[[row]]\nname = \"a\"\nstrategy = \"magic\"\n", "row 1 ('a')", "'strategy'");
  expect_error("[[row]]\nname = \"a\"\n[[row]]\nname = \"a\"\n", "row 2 ('a')", "'name'");
  expect_error("[[row]]\nname = \"a\"\nbits = 1\n", "row 1", "'bits'");
  expect_error("[[row]]\nname = \"a\"\nstrategy = \"outlier\"\n", "row 1", "'percent'");
  expect_error("[[row]]\nname = \"a\"\nstrategy = \"target_bits\"\ntarget_bits = \"x\"\n", "row 1", "'target_bits'");
  expect_error("[[row]]\nname = \"a\"\nstrategy = \"bf16\"\nbits = 4\n", "row 1", "'bits'");
  expect_error("[[row]]\nname = \"a b\"\n", "row 1", "'name'");
  expect_error("[[row]]\nname = \"a\"\npick = \"best\"\nstrategy = \"frequency\"\ncount = 1\n", "row 1", "'pick'");
  expect_error("title = \"x\"\n", "'title'", "row");
  expect_error("[[row]\n", "bad.toml:1", "");
}

nlohmann::json sample_results() {
  auto row = [](std::string name, std::string family, std::string strategy, double bits, double ppl, double acc) {
    return nlohmann::json{{"name", name}, {"family", family}, {"strategy", strategy}, {"nominal_bits", bits},
                          {"effective_bits", bits + 0.2}, {"bytes_per_param", bits / 8}, {"file_mib", 10.0},
                          {"ppl", {{"wiki", ppl}, {"dom", ppl / 4}}}, {"tasks", {{"piqa", acc}}}, {"mean_acc", acc},
                          {"quantize_s", 1.5}, {"eval_s", 2.5}};
  };
  return {{"model", "m"}, {"grid", "paper"},
          {"calibration", {{"file", "c.txt"}, {"samples", 16}, {"seqlen", 512}, {"seed", 0}}},
          {"eval", {{"ppl", {{{"label", "wiki"}}, {{"label", "dom"}}}}, {"tasks", {"piqa"}}}},
          {"rows",
           {row("bf16", "bf16", "bf16", 16, 200, 0.55), row("uniform-2", "uniform", "roles", 2, 300, 0.5),
            row("attn4", "attention", "roles", 2.2, 250, 0.52), row("opt", "target bits", "target_bits", 2.5, 210, 0.54)}}};
}

TEST(BenchReport, TaskCellsShowAccNormWhereTheRowHasIt) {
  nlohmann::json r = sample_results();
  r["rows"][2]["tasks_acc_norm"] = {{"piqa", 0.5312}};
  const std::string md = results_markdown(r);
  EXPECT_NE(md.find("| 52.00 / 53.12 | 52.00 |"), std::string::npos) << md;  // piqa acc / acc_norm, mean acc
  EXPECT_NE(md.find("| 50.00 | 50.00 |"), std::string::npos) << md;          // uniform-2: acc only
  EXPECT_NE(md.find("acc / acc_norm where lm-eval reports both"), std::string::npos);
}

TEST(BenchReport, MarkdownRowsAndDeltas) {
  const nlohmann::json r = sample_results();
  EXPECT_NEAR(*ppl_delta_percent(r, r["rows"][1], "wiki"), 50.0, 1e-12);
  const std::string md = results_markdown(r);
  EXPECT_NE(md.find("| uniform-2 | uniform | 2.000 | 2.000 | 10.00 | 300.000 | +50.00% | 75.000 | +50.00% | 50.00 | 50.00 | 1.5 | 2.5 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| opt | target bits | 2.500 |"), std::string::npos) << md;
}

TEST(BenchReport, SvgHasOneMarkerPerPointAndTheBf16Line) {
  const std::string svg = results_svg(sample_results());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("bf16 200"), std::string::npos);  // reference line label, left panel
  EXPECT_NE(svg.find("bf16 55"), std::string::npos);   // right panel: mean accuracy in %
  // 3 quantized rows × 2 panels + 3 legend entries; families 0-2 draw a circle, a square, a triangle.
  size_t circles = 0, polygons = 0;
  for (size_t at = 0; (at = svg.find("<circle", at)) != std::string::npos; ++at) ++circles;
  for (size_t at = 0; (at = svg.find("<polygon", at)) != std::string::npos; ++at) ++polygons;
  EXPECT_EQ(circles, 3u);
  EXPECT_EQ(polygons, 6u);
  EXPECT_NE(svg.find(">target bits</text>"), std::string::npos);
}

TEST(BenchRun, DemoModelSmallGridResumes) {
  const fs::path out = fs::temp_directory_path() / "moeq-bench-test";
  fs::remove_all(out);
  const fs::path grid = out.string() + ".grid.toml";
  // Every strategy once (the experts at 2 bits, the chosen ones at 4), and a task.
  std::ofstream(grid) << "[[row]]\nname = \"bf16\"\nstrategy = \"bf16\"\n"
                         "[[row]]\nname = \"u4\"\nfamily = \"uniform\"\nbits = 4\n"
                         "[[row]]\nname = \"t3\"\nstrategy = \"target_bits\"\ntarget_bits = 3\n"
                         "[[row]]\nname = \"first1\"\nstrategy = \"blocks\"\nfirst_k = 1\n"
                         "[[row]]\nname = \"last1\"\nstrategy = \"blocks\"\nlast_k = 1\n"
                         "[[row]]\nname = \"freq2\"\nstrategy = \"frequency\"\ncount = 2\n"
                         "[[row]]\nname = \"rand2\"\nstrategy = \"frequency\"\ncount = 2\npick = \"random\"\n"
                         "[[row]]\nname = \"outlier25\"\nstrategy = \"outlier\"\npercent = 25\n"
                         "[[row]]\nname = \"randp25\"\nstrategy = \"outlier\"\npercent = 25\npick = \"random\"\n"
                         "[[row]]\nname = \"score1\"\nstrategy = \"block_score\"\ncount = 1\n"
                         "[[row]]\nname = \"proj\"\nstrategy = \"projection\"\ngate_up_bits = 2\ndown_bits = 4\n";
  BenchOptions o;
  o.model_dir = testing::demo_model();
  o.out_dir = out;
  o.grid = grid.string();
  o.calib = {testing::demo_calib_text(), 4, 128, 0};
  o.ppl_files = {o.model_dir / "indomain_valid.txt"};
  o.windows = 1;
  o.tasks = {"copa"};
  o.data_dir = testing::shared_dir() / "data/eval";
  o.task_limit = 4;
  EXPECT_TRUE(o.mse);  // range search by default; off here for speed, and the recipes say so
  o.mse = false;
  const nlohmann::json first = run_bench(o);
  ASSERT_EQ(first["rows"].size(), 11u);
  // The random controls spend exactly their scorers' bits; a block's experts hold a quarter of
  // the expert weights, so first/last/score rows sit at the same bits.
  auto bits = [&](size_t row) { return first["rows"][row]["nominal_bits"].get<double>(); };
  EXPECT_DOUBLE_EQ(bits(5), bits(6));
  EXPECT_DOUBLE_EQ(bits(7), bits(8));
  EXPECT_DOUBLE_EQ(bits(3), bits(4));
  EXPECT_DOUBLE_EQ(bits(3), bits(9));
  for (size_t row = 3; row < 11; ++row) {
    EXPECT_GT(bits(row), 2.0) << first["rows"][row].dump();
    EXPECT_LT(bits(row), 4.0) << first["rows"][row].dump();
    const double copa = first["rows"][row]["tasks"]["copa"].get<double>();  // accuracy on 4 documents
    EXPECT_EQ(copa * 4, std::round(copa * 4)) << copa;
    EXPECT_EQ(first["rows"][row]["mean_acc"].get<double>(), copa);
    EXPECT_FALSE(first["rows"][row]["tasks_acc_norm"].contains("copa"));  // lm-eval reports acc only
  }
  const double bf16 = first["rows"][0]["ppl"]["indomain_valid"], u4 = first["rows"][1]["ppl"]["indomain_valid"],
               t3 = first["rows"][2]["ppl"]["indomain_valid"];
  EXPECT_GT(u4, bf16);
  EXPECT_LT(u4, bf16 * 1.25);
  EXPECT_GT(t3, u4);
  EXPECT_GT(t3, bf16);
  EXPECT_NEAR(first["rows"][1]["nominal_bits"].get<double>(), 4.0, 1e-12);
  EXPECT_LE(first["rows"][2]["nominal_bits"].get<double>(), 3.0);
  for (const char* f : {"results.json", "results.md", "plot.svg", "stats.json", "recipes/u4.toml", "recipes/t3.toml"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_TRUE(fs::exists(out / "stats.hessians.safetensors"));
  EXPECT_FALSE(plan::load_recipe(out / "recipes/u4.toml").settings.gptq.mse);

  // A rerun keeps every finished row (their files untouched) and recomputes a removed one.
  const auto stamp = fs::last_write_time(out / "rows/u4.json");
  fs::remove(out / "rows/t3.json");
  const nlohmann::json second = run_bench(o);
  EXPECT_EQ(fs::last_write_time(out / "rows/u4.json"), stamp);
  EXPECT_EQ(second["rows"][1], first["rows"][1]);
  EXPECT_DOUBLE_EQ(second["rows"][2]["ppl"]["indomain_valid"].get<double>(), t3);

  // The true-sequential pipeline on the same recipe lands close to GPTQ on the stored Hessians
  // (68.2 vs 66.0 here), and its folder holds the bytes the plan counts.
  std::ofstream(grid) << "[[row]]\nname = \"u4\"\nfamily = \"uniform\"\nbits = 4\n";
  o.sequential = true;
  o.out_dir = out.string() + "-sequential";
  fs::remove_all(o.out_dir);
  fs::create_directories(o.out_dir);
  fs::copy_file(out / "stats.json", o.out_dir / "stats.json");  // the same statistics, not measured again
  const nlohmann::json sequential = run_bench(o);
  EXPECT_NEAR(sequential["rows"][0]["ppl"]["indomain_valid"].get<double>(), u4, 0.05 * u4);
  EXPECT_NEAR(sequential["rows"][0]["file_mib"].get<double>(), first["rows"][1]["file_mib"].get<double>(), 0.1);  // + safetensors headers
  EXPECT_FALSE(fs::exists(o.out_dir / "models/u4"));  // removed once evaluated
}

}  // namespace
}  // namespace moeq::bench

namespace moeq::bench {
namespace {

int run_moeq(const std::string& args) {
  const std::string cmd = fmt::format("cd '{}' && '{}/moeq' {} > /dev/null 2>&1", testing::source_dir().string(),
                                      MOEQ_BINARY_DIR, args);
  const int raw = std::system(cmd.c_str());
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

TEST(QuantizeCli, TargetBitsWritesTheRecipeNextToTheOutput) {
  const fs::path out = fs::temp_directory_path() / "moeq-target-bits-cli";
  fs::remove_all(out);
  ASSERT_EQ(run_moeq(fmt::format("quantize models/demo_mixtral --target-bits 3 --calib data/calib/demo_calib.txt "
                                 "--calib-samples 4 --calib-seqlen 64 --out '{}'",
                                 out.string())),
            0);
  const plan::Recipe recipe = plan::load_recipe(out.string() + ".recipe.toml");
  EXPECT_NE(recipe.description.find("target-bits allocation"), std::string::npos) << recipe.description;
  EXPECT_EQ(recipe.settings.calibration.samples, 4);
  EXPECT_TRUE(fs::exists(out.string() + ".stats.json"));
  EXPECT_TRUE(fs::exists(out / "quant_report.json"));
  // The average over the quantized linears is at most the target.
  analysis::ModelStats stats = analysis::stats_from_json(
      nlohmann::json::parse(std::ifstream(out.string() + ".stats.json")), "stats.json");
  const double bits = plan::bits_report(plan::resolve(recipe, stats.units)).quantized.nominal_bits;
  EXPECT_LE(bits, 3.0);
  EXPECT_GT(bits, 2.9);
  // A recipe and a target are exclusive; one of them is required.
  EXPECT_NE(run_moeq(fmt::format("quantize models/demo_mixtral --target-bits 3 --recipe recipes/gptq-int4.toml "
                                 "--calib data/calib/demo_calib.txt --out '{}'", out.string())), 0);
  EXPECT_NE(run_moeq(fmt::format("quantize models/demo_mixtral --out '{}'", out.string())), 0);
}


// The folder `moeq quantize` writes runs under the other commands as they are, its own copy of
// the tokenizer included: `moeq eval` on it gives the library's perplexity of the loaded folder.
TEST(QuantizeCli, OutputFolderRunsUnderInfoEvalAndGenerate) {
  const fs::path out = fs::temp_directory_path() / "moeq-cli-folder";
  const std::string json = out.string() + ".eval.json";
  fs::remove_all(out);
  ASSERT_EQ(run_moeq(fmt::format("quantize models/demo_mixtral --recipe recipes/rtn-int4.toml "
                                 "--indivisible-groups halve --out '{}'", out.string())),
            0);
  ASSERT_TRUE(fs::exists(out / "tokenizer.json"));
  EXPECT_EQ(run_moeq(fmt::format("info '{}'", out.string())), 0);
  EXPECT_EQ(run_moeq(fmt::format("generate '{}' --prompt 'The ship' -n 4", out.string())), 0);
  const fs::path text = out.string() + ".txt";
  std::ofstream(text) << testing::read_file(testing::demo_model() / "indomain_valid.txt").substr(0, 4000);
  ASSERT_EQ(run_moeq(fmt::format("eval '{}' --ppl '{}' --max-length 64 --json '{}'", out.string(), text.string(), json)),
            0);
  const nlohmann::json report = nlohmann::json::parse(std::ifstream(json));
  auto model = Model::load(out);
  const std::vector<int32_t> ids = Tokenizer::load(out / "tokenizer.json").encode(testing::read_file(text));
  const double want = perplexity(*model, ids, {.window = 64}).ppl;
  EXPECT_NEAR(report["ppl"][text.string()]["ppl"].get<double>(), want, 1e-9 * want);
  fs::remove_all(out);
  fs::remove(json);
  fs::remove(text);
}
}  // namespace
}  // namespace moeq::bench
