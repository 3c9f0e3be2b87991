// Grid files (grid.h): [[row]] tables, each checked against the keys its strategy uses.
#include <algorithm>
#include <array>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "bench/grid.h"
#include "core/error.h"
#include "io/toml_field.h"

namespace moeq::bench {
namespace {

constexpr std::array kStrategies = {Strategy::Bf16,       Strategy::Roles,   Strategy::Blocks,
                                    Strategy::Frequency,  Strategy::Projection, Strategy::Outlier,
                                    Strategy::BlockScore, Strategy::TargetBits, Strategy::RecipeFile};

// Keys a strategy reads besides name, family and strategy.
std::vector<std::string_view> keys_of(Strategy s) {
  const std::vector<std::string_view> roles = {"bits", "attention_bits", "routed_bits", "shared_bits", "dense_bits"};
  auto with = [&](std::initializer_list<std::string_view> extra) {
    std::vector<std::string_view> keys = roles;
    keys.insert(keys.end(), extra);
    return keys;
  };
  switch (s) {
    case Strategy::Bf16: return {};
    case Strategy::Roles: return roles;
    case Strategy::Blocks: return with({"high_bits", "first_k", "last_k"});
    case Strategy::Frequency: return with({"high_bits", "count", "scope", "pick", "seed"});
    case Strategy::Projection: return with({"gate_up_bits", "down_bits"});
    case Strategy::Outlier: return with({"high_bits", "percent", "pick", "seed"});
    case Strategy::BlockScore: return with({"high_bits", "count"});
    case Strategy::TargetBits: return {"target_bits"};
    case Strategy::RecipeFile: return {"recipe"};
  }
  return {};
}

class RowReader {
 public:
  RowReader(const toml::table& t, std::string where) : t_(t), where_(std::move(where)) {}

  const std::string& where() const { return where_; }

  template <typename T>
  std::optional<T> get(std::string_view key) const {
    return toml_field<T>(t_, key, where_);
  }

  int64_t integer(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const {
    const int64_t v = get<int64_t>(key).value_or(fallback);
    if (v < lo || v > hi) fail("{}: field '{}' = {} must be in [{}, {}]", where_, key, v, lo, hi);
    return v;
  }

  std::optional<int> bits(std::string_view key) const {
    if (!t_.get(key)) return std::nullopt;
    return int(integer(key, 0, 2, 8));
  }

  void require(std::string_view key) const {
    if (!t_.get(key)) fail("{}: field '{}' is required by this strategy", where_, key);
  }

 private:
  const toml::table& t_;
  std::string where_;
};

Strategy parse_strategy(const RowReader& r) {
  const std::string text = r.get<std::string>("strategy").value_or("roles");
  for (Strategy s : kStrategies)
    if (strategy_name(s) == text) return s;
  std::vector<std::string_view> names;
  for (Strategy s : kStrategies) names.push_back(strategy_name(s));
  fail("{}: field 'strategy' = '{}' is not one of {}", r.where(), text, fmt::join(names, ", "));
}

template <typename Enum>
Enum parse_choice(const RowReader& r, std::string_view key, std::initializer_list<std::pair<std::string_view, Enum>> table,
                  Enum fallback) {
  const std::optional<std::string> text = r.get<std::string>(key);
  if (!text) return fallback;
  for (const auto& [name, value] : table)
    if (name == *text) return value;
  fail("{}: field '{}' = '{}' is not allowed", r.where(), key, *text);
}

GridRow parse_row(const toml::table& t, const RowReader& r, const std::filesystem::path& base_dir) {
  GridRow row;
  row.name = r.get<std::string>("name").value_or("");
  if (row.name.empty() || !std::all_of(row.name.begin(), row.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      }))
    fail("{}: field 'name' must be a non-empty name of letters, digits, '-', '_' or '.'", r.where());
  row.strategy = parse_strategy(r);
  row.family = r.get<std::string>("family").value_or(std::string(strategy_name(row.strategy)));
  std::vector<std::string_view> known = keys_of(row.strategy);
  known.insert(known.end(), {"name", "family", "strategy"});
  for (const auto& [key, node] : t)
    if (std::find(known.begin(), known.end(), key.str()) == known.end())
      fail("{}: field '{}' is not used by strategy '{}' (it reads: {})", r.where(), key.str(),
           strategy_name(row.strategy), fmt::join(known, ", "));
  row.bits = r.bits("bits").value_or(2);
  row.attention_bits = r.bits("attention_bits");
  row.routed_bits = r.bits("routed_bits");
  row.shared_bits = r.bits("shared_bits");
  row.dense_bits = r.bits("dense_bits");
  row.high_bits = r.bits("high_bits").value_or(4);
  row.first_k = int(r.integer("first_k", 0, 0, 1 << 20));
  row.last_k = int(r.integer("last_k", 0, 0, 1 << 20));
  row.count = int(r.integer("count", 1, 1, 1 << 20));
  row.seed = uint64_t(r.integer("seed", 0, 0, INT64_MAX));
  row.scope = parse_choice(r, "scope", {{"per_layer", plan::PickScope::PerLayer}, {"global", plan::PickScope::Global}},
                           plan::PickScope::PerLayer);
  row.pick = parse_choice(r, "pick", {{"top", plan::Pick::Top}, {"random", plan::Pick::Random}}, plan::Pick::Top);
  switch (row.strategy) {
    case Strategy::Blocks:
      if (row.first_k + row.last_k == 0) fail("{}: field 'first_k' or 'last_k' must be set and positive", r.where());
      break;
    case Strategy::Frequency:
    case Strategy::BlockScore: r.require("count"); break;
    case Strategy::Projection:
      r.require("gate_up_bits");
      r.require("down_bits");
      row.gate_up_bits = *r.bits("gate_up_bits");
      row.down_bits = *r.bits("down_bits");
      break;
    case Strategy::Outlier:
      r.require("percent");
      row.percent = *r.get<double>("percent");
      if (!(row.percent > 0 && row.percent <= 100)) fail("{}: field 'percent' must be in (0, 100]", r.where());
      break;
    case Strategy::TargetBits:
      r.require("target_bits");
      row.target_bits = *r.get<double>("target_bits");
      if (!(row.target_bits >= 2 && row.target_bits <= 16)) fail("{}: field 'target_bits' must be in [2, 16]", r.where());
      break;
    case Strategy::RecipeFile:
      r.require("recipe");
      row.recipe = base_dir / *r.get<std::string>("recipe");
      if (!std::filesystem::exists(row.recipe))
        fail("{}: field 'recipe': {} does not exist", r.where(), row.recipe.string());
      break;
    default: break;
  }
  return row;
}

}  // namespace

Grid parse_grid(std::string_view text, const std::string& source, const std::filesystem::path& base_dir) {
  toml::table doc;
  try {
    doc = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    fail("{}:{}:{}: {}", source, e.source().begin.line, e.source().begin.column, e.description());
  }
  for (const auto& [key, node] : doc)
    if (key.str() != "row") fail("{}: unknown key '{}' (a grid is a list of [[row]] tables)", source, key.str());
  const toml::array* rows = doc["row"].as_array();
  if (!rows || rows->empty()) fail("{}: field 'row' must be a non-empty list of [[row]] tables", source);
  Grid grid{source, {}};
  std::set<std::string> names;
  for (size_t i = 0; i < rows->size(); ++i) {
    const toml::table* t = (*rows)[i].as_table();
    const std::string name = t && (*t)["name"].value<std::string>() ? *(*t)["name"].value<std::string>() : "";
    const std::string where = fmt::format("{}: row {}{}", source, i + 1, name.empty() ? "" : " ('" + name + "')");
    if (!t) fail("{}: must be a table", where);
    GridRow row = parse_row(*t, RowReader(*t, where), base_dir);
    if (!names.insert(row.name).second) fail("{}: field 'name' repeats an earlier row's", where);
    grid.rows.push_back(std::move(row));
  }
  return grid;
}

Grid load_grid(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot open grid file", file.string());
  std::stringstream text;
  text << in.rdbuf();
  return parse_grid(text.str(), file.string(), file.parent_path());
}

}  // namespace moeq::bench
