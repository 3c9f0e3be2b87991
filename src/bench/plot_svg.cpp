// plot.svg of `moeq bench`, written by hand: two scatter panels sharing a legend.
#include <algorithm>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "bench/bench_report.h"

namespace moeq::bench {
namespace {

using nlohmann::json;

constexpr double kPanelW = 420, kPanelH = 300, kLeft = 70, kTop = 40, kGap = 110;
constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                   "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

struct Point {
  double x, y;
  size_t family;
};

struct Panel {
  std::string title;
  bool log_y = false;
  std::vector<Point> points;
  std::optional<double> reference;  // the bf16 value
};

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

// One marker of family `f` centred at (x, y).
std::string marker(size_t f, double x, double y) {
  const char* color = kColors[f % std::size(kColors)];
  const double r = 5;
  const std::string fill = fmt::format("fill=\"{}\" stroke=\"{}\" stroke-width=\"1.5\"", color, color);
  auto polygon = [&](std::initializer_list<std::pair<double, double>> pts) {
    std::string p;
    for (auto [dx, dy] : pts) p += fmt::format("{:.1f},{:.1f} ", x + dx * r, y + dy * r);
    return fmt::format("<polygon points=\"{}\" {} fill-opacity=\"0.6\"/>", p, fill);
  };
  switch (f % 8) {
    case 0: return fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" {} fill-opacity=\"0.6\"/>", x, y, r, fill);
    case 1: return polygon({{-1, -1}, {1, -1}, {1, 1}, {-1, 1}});
    case 2: return polygon({{0, -1.2}, {1.1, 0.9}, {-1.1, 0.9}});
    case 3: return polygon({{0, -1.3}, {1.3, 0}, {0, 1.3}, {-1.3, 0}});
    case 4: return polygon({{0, 1.2}, {1.1, -0.9}, {-1.1, -0.9}});
    case 5:
      return fmt::format("<path d=\"M{0:.1f},{1:.1f} l{2},{2} M{0:.1f},{3:.1f} l{2},{4}\" stroke=\"{5}\" stroke-width=\"2\"/>",
                         x - r, y - r, 2 * r, y + r, -2 * r, color);
    case 6:
      return fmt::format("<path d=\"M{0:.1f},{1:.1f} h{2} M{3:.1f},{4:.1f} v{2}\" stroke=\"{5}\" stroke-width=\"2\"/>",
                         x - r, y, 2 * r, x, y - r, color);
    default: return polygon({{0, -1.3}, {1.2, -0.4}, {0.75, 1.1}, {-0.75, 1.1}, {-1.2, -0.4}});
  }
}

std::vector<double> ticks(double lo, double hi, bool log_scale) {
  std::vector<double> out;
  if (log_scale) {
    for (int i = 0; i <= 4; ++i) out.push_back(std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * i / 4));
    return out;
  }
  for (int i = 0; i <= 4; ++i) out.push_back(lo + (hi - lo) * i / 4);
  return out;
}

std::string draw_panel(const Panel& p, double ox, double x_lo, double x_hi) {
  std::vector<double> ys;
  for (const Point& q : p.points) ys.push_back(q.y);
  if (p.reference) ys.push_back(*p.reference);
  if (ys.empty()) return "";
  double y_lo = *std::min_element(ys.begin(), ys.end()), y_hi = *std::max_element(ys.begin(), ys.end());
  if (p.log_y) {
    y_lo /= 1.05, y_hi *= 1.05;
  } else {
    const double pad = std::max(0.05 * (y_hi - y_lo), 1e-3);
    y_lo -= pad, y_hi += pad;
  }
  auto ty = [&](double y) {
    const double f = p.log_y ? std::log(y / y_lo) / std::log(y_hi / y_lo) : (y - y_lo) / (y_hi - y_lo);
    return kTop + kPanelH * (1 - f);
  };
  auto tx = [&](double x) { return ox + kPanelW * (x - x_lo) / (x_hi - x_lo); };
  std::string s = fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n",
                              ox, kTop, kPanelW, kPanelH);
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n",
                   ox + kPanelW / 2, kTop - 12, escape(p.title));
  for (double t : ticks(y_lo, y_hi, p.log_y))
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"11\">{:.4g}</text>"
                     "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n",
                     ox - 6, ty(t) + 4, t, ox, ox + kPanelW, ty(t), ty(t));
  for (double x = std::ceil(x_lo * 2) / 2; x <= x_hi; x += 0.5)
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{:g}</text>\n", tx(x),
                     kTop + kPanelH + 16, x);
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">average bits (paper's count)</text>\n",
                   ox + kPanelW / 2, kTop + kPanelH + 34);
  if (p.reference)
    s += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#000\" stroke-dasharray=\"6,4\"/>"
                     "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"11\">bf16 {:.4g}</text>\n",
                     ox, ox + kPanelW, ty(*p.reference), ty(*p.reference), ox + kPanelW - 4, ty(*p.reference) - 4,
                     *p.reference);
  for (const Point& q : p.points) s += marker(q.family, tx(q.x), ty(q.y)) + "\n";
  return s;
}

}  // namespace

std::string results_svg(const json& results) {
  std::vector<std::string> families;
  std::vector<std::string> sets;
  for (const json& p : results.at("eval").at("ppl")) sets.push_back(p.at("label").get<std::string>());
  const bool tasks = !results.at("eval").at("tasks").empty();
  Panel left{sets.empty() ? "" : sets[0] + " perplexity", true, {}, std::nullopt};
  Panel right{tasks ? "mean task accuracy (%)" : (sets.size() > 1 ? sets[1] + " perplexity" : ""), !tasks, {}, std::nullopt};
  auto right_value = [&](const json& row) -> std::optional<double> {
    if (tasks) return row.contains("mean_acc") ? std::optional(100 * row.at("mean_acc").get<double>()) : std::nullopt;
    if (sets.size() > 1 && row.contains("ppl")) return row.at("ppl").at(sets[1]).get<double>();
    return std::nullopt;
  };
  double x_lo = 16, x_hi = 0;
  for (const json& row : results.at("rows")) {
    if (!row.contains("ppl") || sets.empty()) continue;
    const double y = row.at("ppl").at(sets[0]).get<double>();
    if (row.value("strategy", "") == "bf16") {
      left.reference = y;
      right.reference = right_value(row);
      continue;
    }
    const std::string family = row.at("family").get<std::string>();
    auto it = std::find(families.begin(), families.end(), family);
    const size_t f = size_t(it - families.begin());
    if (it == families.end()) families.push_back(family);
    const double x = row.at("nominal_bits").get<double>();
    x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
    left.points.push_back({x, y, f});
    if (std::optional<double> r = right_value(row)) right.points.push_back({x, *r, f});
  }
  if (x_hi < x_lo) x_lo = 2, x_hi = 8;
  x_lo = std::floor(x_lo * 2) / 2 - 0.25, x_hi = std::ceil(x_hi * 2) / 2 + 0.25;
  const double width = kLeft + 2 * kPanelW + kGap + 30, legend_y = kTop + kPanelH + 60;
  const double height = legend_y + 22 * double((families.size() + 3) / 4) + 10;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height);
  svg += draw_panel(left, kLeft, x_lo, x_hi);
  svg += draw_panel(right, kLeft + kPanelW + kGap, x_lo, x_hi);
  for (size_t f = 0; f < families.size(); ++f) {
    const double x = kLeft + double(f % 4) * 230, y = legend_y + 22 * double(f / 4);
    svg += marker(f, x, y) + fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", x + 12, y + 4, escape(families[f]));
  }
  return svg + "</svg>\n";
}

}  // namespace moeq::bench
