#include "eval/report.h"

#include <fmt/format.h>

namespace moeq {

nlohmann::ordered_json report_json(const EvalReport& report) {
  nlohmann::ordered_json out;
  out["ppl"] = nlohmann::ordered_json::object();
  for (const PerplexityEntry& p : report.ppl)
    out["ppl"][p.file] = {{"ppl", p.ppl}, {"nll_sum", p.nll_sum}, {"predicted", p.predicted},
                          {"tokens", p.tokens}, {"windows", p.windows}};
  out["tasks"] = nlohmann::ordered_json::object();
  for (const TaskResult& t : report.tasks) {
    nlohmann::ordered_json& j = out["tasks"][t.name];
    j["n"] = t.n;
    j["acc"] = t.acc;
    if (t.acc_norm) j["acc_norm"] = *t.acc_norm;
    if (t.ppl) j["ppl"] = *t.ppl;
  }
  out["seconds"] = report.seconds;
  out["tokens_per_second"] = report.seconds > 0 ? double(report.tokens) / report.seconds : 0.0;
  return out;
}

std::string report_markdown(const EvalReport& report) {
  std::string md;
  if (!report.ppl.empty()) {
    md += "| file | tokens | windows | ppl |\n|---|---:|---:|---:|\n";
    for (const PerplexityEntry& p : report.ppl)
      md += fmt::format("| {} | {} | {} | {:.2f} |\n", p.file, p.tokens, p.windows, p.ppl);
  }
  if (!report.tasks.empty()) {
    if (!md.empty()) md += "\n";
    md += "| task | n | acc | acc_norm | ppl |\n|---|---:|---:|---:|---:|\n";
    auto percent = [](std::optional<double> v) { return v ? fmt::format("{:.2f}", 100 * *v) : std::string(); };
    for (const TaskResult& t : report.tasks)
      md += fmt::format("| {} | {} | {} | {} | {} |\n", t.name, t.n, percent(t.acc), percent(t.acc_norm),
                        t.ppl ? fmt::format("{:.2f}", *t.ppl) : std::string());
  }
  md += fmt::format("\n{:.1f} s, {:.0f} tokens/s\n", report.seconds,
                    report.seconds > 0 ? double(report.tokens) / report.seconds : 0.0);
  return md;
}

}  // namespace moeq
