#include "bench/bench.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "bench/bench_report.h"
#include "bench/grid.h"
#include "bench/stored_gptq.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/evaluate.h"
#include "eval/perplexity.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "quant/analysis/target_bits.h"
#include "quant/pipeline/quantize.h"
#include "quant/plan/bits.h"
#include "quant/plan/plan.h"

namespace moeq::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct PplSet {
  std::string label;  // the file name up to its first '.': "wikitext2_test", "indomain_valid"
  std::vector<int32_t> ids;
};

std::vector<PplSet> load_ppl_sets(const BenchOptions& o, const Tokenizer& tokenizer) {
  std::vector<fs::path> files = o.ppl_files;
  if (files.empty()) {
    for (const fs::path& f : {o.model_dir / "reference" / "wikitext2_test.ids.int32", o.model_dir / "indomain_valid.txt"})
      if (fs::exists(f)) files.push_back(f);
    if (files.empty()) fail("{}: no reference/wikitext2_test.ids.int32 or indomain_valid.txt: pass --ppl FILE", o.model_dir.string());
  }
  std::vector<PplSet> sets;
  for (const fs::path& f : files) {
    PplSet s{f.filename().string().substr(0, f.filename().string().find('.')), {}};
    if (f.extension() == ".int32") {
      s.ids = read_ids_int32(f);
    } else {
      std::ifstream in(f, std::ios::binary);
      if (!in) fail("{}: cannot open perplexity text", f.string());
      std::stringstream text;
      text << in.rdbuf();
      s.ids = tokenizer.encode(text.str());
    }
    if (o.windows > 0 && int64_t(s.ids.size()) > o.windows * 512) s.ids.resize(size_t(o.windows * 512));
    sets.push_back(std::move(s));
  }
  return sets;
}

double folder_mib(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") total += e.file_size();
  return double(total) / (1024.0 * 1024.0);
}

bool is_random(const GridRow& row) {
  return (row.strategy == Strategy::Frequency || row.strategy == Strategy::Outlier) && row.pick == plan::Pick::Random;
}

class BenchRun {
 public:
  explicit BenchRun(const BenchOptions& o) : o_(o), tokenizer_(Tokenizer::load(o.model_dir / "tokenizer.json")) {}

  json run() {
    if (o_.calib.file.empty()) fail("bench: field 'calib' (calibration text) is required");
    for (const char* sub : {"recipes", "rows", "models"}) fs::create_directories(o_.out_dir / sub);
    analysis::StatsRequest request{o_.model_dir, o_.calib, {}};
    request.sensitivity.gptq.mse = o_.mse;
    // Files first, so that a bad grid or perplexity file fails before the statistics pass.
    std::optional<Grid> grid = o_.grid == "paper" ? std::nullopt : std::optional(load_grid(o_.grid));
    ppl_ = load_ppl_sets(o_, tokenizer_);
    stats_ = analysis::load_or_collect_stats(request, o_.out_dir / "stats.json", o_.sequential ? nullptr : &hessians_);
    if (!grid) grid = paper_grid(stats_.units, o_.q2k_bits);
    json results = {{"model", o_.model_dir.string()},
                    {"grid", grid->source},
                    {"calibration", {{"file", o_.calib.file.string()}, {"samples", o_.calib.samples},
                                     {"seqlen", o_.calib.seqlen}, {"seed", o_.calib.seed}}},
                    {"eval", eval_key()},
                    {"quantizer", o_.sequential ? "sequential" : "stored"},
                    {"stats_seconds", stats_.seconds},
                    {"rows", json::array()}};
    const auto start = Clock::now();
    for (size_t i = 0; i < grid->rows.size(); ++i) {
      fmt::print(stderr, "moeq: bench row {}/{} '{}' ({:.0f} s so far)\n", i + 1, grid->rows.size(), grid->rows[i].name,
                 since(start));
      results["rows"].push_back(run_row(grid->rows[i]));
      write_reports(o_.out_dir, results);
    }
    fmt::print(stderr, "moeq: bench finished {} rows in {:.0f} s; see {}\n", grid->rows.size(), since(start),
               (o_.out_dir / "results.md").string());
    return results;
  }

 private:
  json eval_key() const {
    json ppl = json::array();
    for (const PplSet& s : ppl_) ppl.push_back({{"label", s.label}, {"tokens", s.ids.size()}});
    return {{"ppl", ppl}, {"windows", o_.windows}, {"tasks", o_.tasks}, {"task_limit", o_.task_limit}};
  }

  plan::Recipe recipe_of(const GridRow& row) const {
    plan::Recipe r = row_recipe(row, stats_);
    if (row.strategy != Strategy::RecipeFile) {
      analysis::set_calibration(r, o_.calib);
      r.settings.gptq.mse = o_.mse;
    }
    return r;
  }

  json run_row(const GridRow& row) {
    json head = {{"name", row.name}, {"family", row.family}, {"strategy", strategy_name(row.strategy)}};
    if (is_random(row)) head["seed"] = row.seed;
    std::string recipe_text = o_.sequential ? "sequential\n" : "stored\n";
    fs::path recipe_file;
    std::optional<plan::QuantPlan> plan;
    double mib = 0;
    if (row.strategy == Strategy::Bf16) {
      head.update({{"description", "the unquantized checkpoint"}, {"nominal_bits", 16.0}, {"effective_bits", 16.0},
                   {"bytes_per_param", 2.0}});
    } else {
      const plan::Recipe recipe = recipe_of(row);
      recipe_text += plan::to_toml(recipe);
      recipe_file = o_.out_dir / "recipes" / (row.name + ".toml");
      plan::save_recipe(recipe, recipe_file);
      plan = plan::resolve(recipe, stats_.units);
      const plan::BitsReport bits = plan::bits_report(*plan, stats_.other_params);
      mib = double(bits.total_bytes) / (1024.0 * 1024.0);
      head.update({{"description", recipe.description}, {"recipe", recipe_file.string()},
                   {"nominal_bits", bits.quantized.nominal_bits}, {"effective_bits", bits.quantized.effective_bits},
                   {"bytes_per_param", bits.bytes_per_param}});
    }
    const std::string fingerprint = fmt::format(
        "{:016x}", std::hash<std::string>{}(recipe_text + eval_key().dump() + fs::absolute(o_.model_dir).string()));
    head["fingerprint"] = fingerprint;
    const fs::path row_file = o_.out_dir / "rows" / (row.name + ".json");
    if (const std::optional<json> done = finished_row(row_file, fingerprint)) {
      fmt::print(stderr, "moeq: '{}' already done, kept from {}\n", row.name, row_file.string());
      return *done;
    }
    json result = head;
    result["quantize_s"] = 0.0;
    if (row.strategy == Strategy::Bf16) {
      auto model = Model::load(o_.model_dir);
      evaluate_into(*model, folder_mib(o_.model_dir), result);
    } else if (!o_.sequential) {
      auto model = Model::load(o_.model_dir);
      const auto t = Clock::now();
      quantize_from_store(*model, *plan, stats_, hessians_, IndivisibleGroups::PerChannel);
      result["quantize_s"] = since(t);
      evaluate_into(*model, mib, result);
    } else {
      const fs::path dir = o_.out_dir / "models" / row.name;
      discard_stale_partial(dir, fingerprint);
      const auto t = Clock::now();
      quantize(recipe_file, dir);
      result["quantize_s"] = since(t);
      evaluate_into(*Model::load(dir), folder_mib(dir), result);
      fs::remove(dir.string() + ".fingerprint");
      if (!o_.keep_models) fs::remove_all(dir);
    }
    write_text_atomically(row_file, result.dump(1));
    return result;
  }

  static std::optional<json> finished_row(const fs::path& file, const std::string& fingerprint) {
    if (!fs::exists(file)) return std::nullopt;
    std::ifstream in(file);
    json doc = json::parse(in, nullptr, false);
    if (doc.is_discarded() || doc.value("fingerprint", "") != fingerprint) return std::nullopt;
    return doc;
  }

  // A half-quantized folder of an earlier version of this row (another recipe or calibration)
  // cannot be resumed; one of this version can.
  void discard_stale_partial(const fs::path& model, const std::string& fingerprint) const {
    const fs::path partial = model.string() + ".partial", marker = model.string() + ".fingerprint";
    std::ifstream in(marker);
    std::string previous;
    std::getline(in, previous);
    if (previous != fingerprint) fs::remove_all(partial);
    write_text_atomically(marker, fingerprint);
  }

  void quantize(const fs::path& recipe_file, const fs::path& out) const {
    QuantizeOptions q;
    q.model_dir = o_.model_dir;
    q.recipe_file = recipe_file;
    q.out_dir = out;
    q.indivisible = IndivisibleGroups::PerChannel;
    quantize_model(q);
  }

  void evaluate_into(Model& model, double mib, json& result) const {
    const auto t = Clock::now();
    result["file_mib"] = mib;
    json ppl = json::object();
    for (const PplSet& s : ppl_) {
      ppl[s.label] = perplexity(model, s.ids).ppl;
      fmt::print(stderr, "moeq:   {} ppl {:.3f}\n", s.label, ppl[s.label].get<double>());
    }
    result["ppl"] = ppl;
    if (!o_.tasks.empty()) {
      EvalOptions e;
      e.tasks = o_.tasks;
      e.data_dir = o_.data_dir;
      e.limit = o_.task_limit;
      json tasks = json::object(), tasks_acc_norm = json::object();
      double sum = 0;
      for (const TaskResult& r : evaluate(model, tokenizer_, e).tasks) {
        tasks[r.name] = r.acc;
        if (r.acc_norm) tasks_acc_norm[r.name] = *r.acc_norm;
        sum += r.acc;
      }
      result["tasks"] = tasks;
      result["tasks_acc_norm"] = tasks_acc_norm;
      result["mean_acc"] = sum / double(tasks.size());
    }
    result["eval_s"] = since(t);
  }

  const BenchOptions& o_;
  Tokenizer tokenizer_;
  analysis::ModelStats stats_;
  analysis::HessianStore hessians_;
  std::vector<PplSet> ppl_;
};

}  // namespace

json run_bench(const BenchOptions& options) { return BenchRun(options).run(); }

}  // namespace moeq::bench
