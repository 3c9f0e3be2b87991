// Quantizes trained checkpoints with a list of recipes and measures what each costs and buys:
// WikiText-2 and in-domain perplexity (protocol of ../shared/README.md), bytes on disk,
// quantization time, and speed (prefill tokens/s while scoring WikiText-2, decode tokens/s as
// llama-bench's tg128), next to the bf16 original. Prints one JSON document.
//
//   build/bench/quantize_bench --shared ../shared --models mixtral,qwen2_moe --recipes recipes/gptq-int4.toml
//       [--seeds 0,1,2,3,4] [--halve-groups] [--windows N] [--work DIR] [--calib-samples N] [--markdown FILE]
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <sstream>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "eval/perplexity.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "quant/pipeline/quantize.h"
#include "quant/plan/recipe.h"
#include "timing.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

uint64_t folder_bytes(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") total += e.file_size();
  return total;
}

// Decode timing as forward_bench's (llama-bench's tg128): median of kDecodeRuns runs of
// kDecodeSteps greedy steps after the first kDecodePrompt WikiText-2 ids.
constexpr int64_t kDecodePrompt = 16, kDecodeSteps = 128, kDecodeRuns = 5;

json measure(const fs::path& model_dir, const std::vector<int32_t>& wiki, const std::vector<int32_t>& indomain) {
  auto model = moeq::Model::load(model_dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto w = moeq::perplexity(*model, wiki);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto d = moeq::perplexity(*model, indomain);
  const auto prompt = std::span(wiki).first(kDecodePrompt);
  const auto decode = moeq::bench::measure_decode(*model, prompt, kDecodeSteps, kDecodeRuns);
  return {{"wikitext2_ppl", w.ppl},
          {"wikitext2_windows", w.windows},
          {"indomain_ppl", d.ppl},
          {"eval_tokens_per_second", double(w.windows * 512) / seconds},
          {"decode_tokens_per_second", decode.tokens_per_s},
          {"decode_tokens_per_second_runs", decode.runs},
          {"bytes", folder_bytes(model_dir)}};
}

// The mean perplexity changes over the seeds of one (model, recipe): single calibration seeds
// of these models move WikiText-2 by most of a point, so claims rest on the mean.
class SeedMeans {
 public:
  bool continues(const json& row) const {
    return row.contains("seed") && row["model"] == model_ && row["recipe"] == recipe_;
  }
  void add(const json& row, double wiki_delta, double indomain_delta) {
    model_ = row["model"].get<std::string>();
    recipe_ = row["recipe"].get<std::string>();
    wiki_.push_back(wiki_delta);
    indomain_ += indomain_delta;
  }
  // The mean row of the seeds added since the last flush (none for fewer than two).
  std::string flush() {
    std::string out;
    const double n = double(wiki_.size());
    if (wiki_.size() > 1) {
      const double mean = std::accumulate(wiki_.begin(), wiki_.end(), 0.0) / n;
      const auto [lo, hi] = std::minmax_element(wiki_.begin(), wiki_.end());
      out = fmt::format("| {} | {}, mean of {} seeds | | {:+.2f}% ({:+.2f} to {:+.2f}) | | {:+.2f}% | | | | |\n",
                        model_, recipe_, wiki_.size(), mean, *lo, *hi, indomain_ / n);
    }
    *this = SeedMeans();
    return out;
  }

 private:
  std::string model_, recipe_;
  std::vector<double> wiki_;
  double indomain_ = 0.0;
};

// One Markdown table: a row per (model, recipe, seed), perplexities with their change from the
// model's bf16 row, MiB on disk, quantization seconds, and tokens/s with their ratio to bf16's;
// after the seeds of one recipe, their mean.
std::string markdown(const json& rows) {
  std::string out =
      "| model | recipe | WikiText-2 ppl | Δ | in-domain ppl | Δ | MiB | quantize s | prefill tok/s | decode tok/s |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n";
  json base;
  SeedMeans means;
  for (const json& r : rows) {
    if (r["recipe"] == "bf16") base = r;
    auto ratio = [&](const char* key) { return r[key].get<double>() / base[key].get<double>(); };
    auto speed = [&](const char* key) { return fmt::format("{:.0f} ({:.2f}×)", r[key].get<double>(), ratio(key)); };
    if (!means.continues(r)) out += means.flush();
    std::string recipe = r["recipe"].get<std::string>();
    if (r.contains("seed")) {
      recipe += fmt::format(" (seed {})", r["seed"].get<int64_t>());
      means.add(r, 100.0 * (ratio("wikitext2_ppl") - 1.0), 100.0 * (ratio("indomain_ppl") - 1.0));
    }
    out += fmt::format("| {} | {} | {:.3f} | {:+.2f}% | {:.3f} | {:+.2f}% | {:.2f} | {:.1f} | {} | {} |\n",
                       r["model"].get<std::string>(), recipe, r["wikitext2_ppl"].get<double>(),
                       100.0 * (ratio("wikitext2_ppl") - 1.0), r["indomain_ppl"].get<double>(),
                       100.0 * (ratio("indomain_ppl") - 1.0), r["bytes"].get<double>() / (1 << 20),
                       r.value("quantize_seconds", 0.0), speed("eval_tokens_per_second"),
                       speed("decode_tokens_per_second"));
  }
  return out + means.flush();
}

std::vector<int32_t> first_windows(std::vector<int32_t> ids, int64_t windows) {
  if (windows > 0 && int64_t(ids.size()) > windows * 512) ids.resize(size_t(windows * 512));
  return ids;
}

struct Settings {
  std::string shared = "../shared", models = "mixtral", recipes, work = "/tmp/moeq-bench", table;
  int64_t windows = 0;
  std::optional<int64_t> calib_samples;
  std::vector<int64_t> seeds;  // calibration seeds; empty: each recipe's own
  bool halve = false;
};

// Whether any rule of the recipe calibrates (GPTQ, AWQ): RTN alone reads no calibration text,
// and one run stands for every seed.
bool calibrates(const std::string& recipe) {
  const auto rules = moeq::plan::load_recipe(recipe).rules;
  return std::ranges::any_of(rules, [](const moeq::plan::Rule& rule) { return rule.action.calibrates(); });
}

// The runs of one recipe: its own seed, or each of the seeds asked for where it calibrates.
std::vector<std::optional<int64_t>> seed_runs(const Settings& s, const std::string& recipe) {
  if (s.seeds.empty() || !calibrates(recipe)) return {std::nullopt};
  return {s.seeds.begin(), s.seeds.end()};
}

// One run of `recipe` on SHARED/models/NAME into WORK, fresh (no resume).
moeq::QuantizeOptions quantize_options(const Settings& s, const std::string& name, const std::string& recipe,
                                       std::optional<int64_t> seed) {
  const std::string stem = fs::path(recipe).stem().string();
  moeq::QuantizeOptions o;
  o.model_dir = fs::path(s.shared) / "models" / name;
  o.recipe_file = recipe;
  const std::string run = seed ? fmt::format("{}-{}-s{}", name, stem, *seed) : fmt::format("{}-{}", name, stem);
  o.out_dir = fs::path(s.work) / run;
  o.calib_file = fs::path(s.shared) / "data/calib/corpus_train_sample.txt";
  o.calib_samples = s.calib_samples;
  o.seed = seed;
  o.indivisible = s.halve ? moeq::IndivisibleGroups::Halve : moeq::IndivisibleGroups::PerChannel;
  o.resume = false;
  return o;
}

// The bf16 row of one model under SHARED/models, then a row per recipe (and seed): quantized into
// WORK and evaluated from there. Rows go to stderr as they finish.
json bench_model(const Settings& s, const std::string& name) {
  const fs::path dir = fs::path(s.shared) / "models" / name;
  const auto tokenizer = moeq::Tokenizer::load(dir / "tokenizer.json");
  std::ifstream f(dir / "indomain_valid.txt");
  std::stringstream text;
  text << f.rdbuf();
  const auto wiki = first_windows(moeq::read_ids_int32(dir / "reference/wikitext2_test.ids.int32"), s.windows);
  const auto indomain = first_windows(tokenizer.encode(text.str()), s.windows);
  json rows = json::array();
  auto add = [&](json row, const std::string& recipe) {
    row["model"] = name;
    row["recipe"] = recipe;
    fmt::print(stderr, "{}\n", row.dump());
    rows.push_back(std::move(row));
  };
  add(measure(dir, wiki, indomain), "bf16");
  for (const std::string& recipe : split(s.recipes))
    for (const std::optional<int64_t> seed : seed_runs(s, recipe)) {
      const moeq::QuantizeOptions o = quantize_options(s, name, recipe, seed);
      const auto t0 = std::chrono::steady_clock::now();
      moeq::quantize_model(o);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      json row = measure(o.out_dir, wiki, indomain);
      row["quantize_seconds"] = seconds;
      if (seed) row["seed"] = *seed;
      add(std::move(row), fs::path(recipe).stem().string());
    }
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quantize_bench"};
  Settings s;
  app.add_option("--shared", s.shared);
  app.add_option("--models", s.models);
  app.add_option("--recipes", s.recipes)->required();
  app.add_option("--windows", s.windows, "WikiText-2 windows of 512 to score (0: all 812)");
  app.add_option("--calib-samples", s.calib_samples, "calibration sequences (default: each recipe's own)");
  app.add_option("--seeds", s.seeds, "calibration seeds, e.g. 0,1,2,3,4: a run of each recipe per seed, and their mean")
      ->delimiter(',');
  app.add_option("--work", s.work);
  app.add_option("--markdown", s.table, "also write the results as a Markdown table to this file");
  app.add_flag("--halve-groups", s.halve,
               "a group size that does not divide a tensor's width is halved until it does (moeq quantize "
               "--indivisible-groups halve); default: per-channel, as anchors/rtn_torch.md");
  CLI11_PARSE(app, argc, argv);

  json out = json::array();
  try {
    for (const std::string& name : split(s.models))
      for (json& row : bench_model(s, name)) out.push_back(std::move(row));
  } catch (const std::exception& e) {
    fmt::print(stderr, "quantize_bench: {}\n", e.what());
    return 1;
  }
  fmt::print("{}\n", out.dump(1));
  if (!s.table.empty()) moeq::write_text_atomically(s.table, markdown(out));
}
