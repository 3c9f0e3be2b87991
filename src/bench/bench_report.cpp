#include "bench/bench_report.h"

#include <fmt/format.h>

#include "core/atomic_file.h"

namespace moeq::bench {
namespace {

using nlohmann::json;

const json* bf16_row(const json& results) {
  for (const json& row : results.at("rows"))
    if (row.value("strategy", "") == "bf16") return &row;
  return nullptr;
}

std::vector<std::string> ppl_sets(const json& results) {
  std::vector<std::string> sets;
  for (const json& p : results.at("eval").at("ppl")) sets.push_back(p.at("label").get<std::string>());
  return sets;
}

std::string number(const json& row, const char* key, const char* format) {
  return row.contains(key) ? fmt::format(fmt::runtime(format), row.at(key).get<double>()) : "";
}

// "acc" in percent, or "acc / acc_norm" for the tasks where lm-eval reports both. Rows written
// before acc_norm was stored have no tasks_acc_norm.
std::string task_cell(const json& row, const std::string& task) {
  std::string cell = fmt::format("{:.2f}", 100.0 * row.at("tasks").at(task).get<double>());
  const json norm = row.value("tasks_acc_norm", json::object());
  if (norm.contains(task)) cell += fmt::format(" / {:.2f}", 100.0 * norm.at(task).get<double>());
  return cell;
}

}  // namespace

std::optional<double> ppl_delta_percent(const json& results, const json& row, const std::string& set) {
  const json* ref = bf16_row(results);
  if (!ref || !ref->contains("ppl") || !ref->at("ppl").contains(set) || !row.contains("ppl")) return std::nullopt;
  return 100.0 * (row.at("ppl").at(set).get<double>() / ref->at("ppl").at(set).get<double>() - 1.0);
}

std::string results_markdown(const json& results) {
  const std::vector<std::string> sets = ppl_sets(results);
  std::vector<std::string> tasks = results.at("eval").at("tasks").get<std::vector<std::string>>();
  const json& c = results.at("calibration");
  std::string out = fmt::format(
      "# moeq bench: {}\n\nGrid `{}`; GPTQ int g128 asymmetric, calibration {} × {} tokens of `{}` (seed {}); "
      "statistics measured in {:.1f} s.\n\n"
      "Bits: **paper** = average code bits over the quantized linears (Li et al. 2024); **ckpt** = true bits per "
      "parameter of the whole checkpoint (scales, zeros, 16-bit embeddings, routers and norms included).\n\n",
      results.at("model").get<std::string>(), results.at("grid").get<std::string>(), c.at("samples").get<int64_t>(),
      c.at("seqlen").get<int64_t>(), c.at("file").get<std::string>(), c.at("seed").get<int64_t>(),
      results.value("stats_seconds", 0.0));
  if (!tasks.empty()) out += "Task cells: acc in %, and acc / acc_norm where lm-eval reports both; mean acc averages acc.\n\n";
  std::string header = "| row | family | paper bits | ckpt bits | MiB |", rule = "|---|---|---|---|---|";
  for (const std::string& s : sets) {
    header += fmt::format(" {} ppl | Δ {} |", s, s);
    rule += "---|---|";
  }
  for (const std::string& t : tasks) {
    header += fmt::format(" {} |", t);
    rule += "---|";
  }
  if (!tasks.empty()) {
    header += " mean acc |";
    rule += "---|";
  }
  header += " quantize s | eval s |";
  rule += "---|---|";
  out += header + "\n" + rule + "\n";
  for (const json& row : results.at("rows")) {
    std::string line = fmt::format("| {}{} | {} | {:.3f} | {:.3f} | {} |", row.at("name").get<std::string>(),
                                   row.contains("seed") ? fmt::format(" (seed {})", row.at("seed").get<int64_t>()) : "",
                                   row.at("family").get<std::string>(), row.at("nominal_bits").get<double>(),
                                   8.0 * row.at("bytes_per_param").get<double>(), number(row, "file_mib", "{:.2f}"));
    for (const std::string& s : sets) {
      const std::optional<double> d = ppl_delta_percent(results, row, s);
      line += fmt::format(" {:.3f} | {} |", row.at("ppl").at(s).get<double>(), d ? fmt::format("{:+.2f}%", *d) : "");
    }
    for (const std::string& t : tasks) line += fmt::format(" {} |", task_cell(row, t));
    if (!tasks.empty()) line += fmt::format(" {:.2f} |", 100.0 * row.at("mean_acc").get<double>());
    line += fmt::format(" {} | {} |", number(row, "quantize_s", "{:.1f}"), number(row, "eval_s", "{:.1f}"));
    out += line + "\n";
  }
  out += "\nRecipes of every row: `recipes/NAME.toml` (run one with `moeq quantize MODEL --recipe FILE`).\n";
  return out;
}

void write_reports(const std::filesystem::path& dir, const json& results) {
  write_text_atomically(dir / "results.json", results.dump(1));
  write_text_atomically(dir / "results.md", results_markdown(results));
  write_text_atomically(dir / "plot.svg", results_svg(results));
}

}  // namespace moeq::bench
