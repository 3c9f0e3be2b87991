// What `moeq bench` writes from its rows: results.json (as given), results.md (one row per
// allocation) and plot.svg (perplexity and mean accuracy against average bits).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace moeq::bench {

// A row's perplexity change against the bf16 row of the same results, in percent (absent when
// the results have no bf16 row or it lacks the set).
std::optional<double> ppl_delta_percent(const nlohmann::json& results, const nlohmann::json& row, const std::string& set);

std::string results_markdown(const nlohmann::json& results);

// Left panel: the first perplexity set (log scale); right: mean task accuracy when the rows have
// tasks, else the second perplexity set. x: the paper's average bits over quantized linears.
// One marker shape per family; the bf16 row as a dashed horizontal line.
std::string results_svg(const nlohmann::json& results);

// results.json, results.md and plot.svg under `dir`, each written atomically.
void write_reports(const std::filesystem::path& dir, const nlohmann::json& results);

}  // namespace moeq::bench
