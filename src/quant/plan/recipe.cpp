// Reading recipes: TOML → Recipe, strictly. Every key is known, every value checked, and each
// error names the file, the rule (1-based, as a reader counts [[rule]] blocks) and the key.
#include "quant/plan/recipe.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "core/error.h"
#include "io/toml_field.h"
#include "quant/plan/name_regex.h"

namespace moeq::plan {
namespace {

using Keys = std::initializer_list<std::string_view>;

void check_keys(const toml::table& table, const std::string& where, Keys known) {
  for (const auto& [key, node] : table) {
    if (std::find(known.begin(), known.end(), key.str()) == known.end())
      fail("{}: unknown key '{}' (expected one of: {})", where, key.str(), fmt::join(known, ", "));
  }
}

int64_t get_count(const toml::table& table, std::string_view key, const std::string& where,
                  int64_t fallback, int64_t min) {
  int64_t value = toml_field<int64_t>(table, key, where).value_or(fallback);
  if (value < min) fail("{}: field '{}' = {} must be at least {}", where, key, value, min);
  return value;
}

// A string, or an array of strings.
std::vector<std::string> get_strings(const toml::table& table, std::string_view key,
                                     const std::string& where) {
  const toml::node* node = table.get(key);
  if (!node) return {};
  if (auto text = node->value_exact<std::string>()) return {*text};
  std::vector<std::string> out;
  const toml::array* array = node->as_array();
  if (array) {
    for (const toml::node& item : *array) {
      auto text = item.value_exact<std::string>();
      if (!text) break;
      out.push_back(*text);
    }
  }
  if (!array || out.size() != array->size() || out.empty())
    fail("{}: field '{}' must be a string or a non-empty array of strings", where, key);
  return out;
}

// A role name, or an array of them.
std::vector<TensorRole> get_roles(const toml::table& table, std::string_view key, const std::string& where) {
  std::vector<TensorRole> roles;
  for (const std::string& name : get_strings(table, key, where)) {
    TensorRole role;
    if (!parse_role(name, role))
      fail("{}: field '{}' = '{}' (expected attention, router, routed_expert, shared_expert, "
           "shared_expert_gate, dense_mlp, embedding, lm_head, norm or other)", where, key, name);
    roles.push_back(role);
  }
  return roles;
}

// "4" or "4-7" → [lo, hi].
bool parse_range(std::string_view text, int& lo, int& hi) {
  auto number = [](std::string_view s, int& out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size() && !s.empty() && out >= 0;
  };
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) return number(text, lo) && number(text, hi);
  return number(text.substr(0, dash), lo) && number(text.substr(dash + 1), hi) && lo <= hi;
}

void add_index_item(const toml::node& item, IndexSet& set, std::string_view key, const std::string& where) {
  int lo = 0, hi = 0;
  if (auto number = item.value_exact<int64_t>()) {
    if (*number < 0 || *number > INT_MAX) fail("{}: field '{}': index {} is out of range", where, key, *number);
    lo = hi = int(*number);
  } else if (auto text = item.value_exact<std::string>(); !text || !parse_range(*text, lo, hi)) {
    fail("{}: field '{}': items must be indices or ranges like \"0-3\"", where, key);
  }
  set.add(lo, hi);
}

// [0, 2, "4-7"], or a single index or range.
std::optional<IndexSet> get_indices(const toml::table& table, std::string_view key, const std::string& where) {
  const toml::node* node = table.get(key);
  if (!node) return std::nullopt;
  IndexSet set;
  if (const toml::array* array = node->as_array()) {
    for (const toml::node& item : *array) add_index_item(item, set, key, where);
  } else {
    add_index_item(*node, set, key, where);
  }
  if (set.empty()) fail("{}: field '{}' is empty (leave it out to select every index)", where, key);
  return set;
}

template <typename Enum>
Enum get_enum(const toml::table& table, std::string_view key, const std::string& where, Enum fallback,
              bool (*parse)(std::string_view, Enum&), std::string_view expected) {
  auto text = toml_field<std::string>(table, key, where);
  Enum value = fallback;
  if (text && !parse(*text, value)) fail("{}: field '{}' = '{}' (expected {})", where, key, *text, expected);
  return value;
}

constexpr std::array<std::string_view, 6> kActionKeys{"format", "bits", "group_size", "symmetric",
                                                      "double_quant", "act_bits"};

QuantAction parse_action(const toml::table& rule, const std::string& where) {
  if (!rule.contains("method")) fail("{}: field 'method' is missing (rtn, gptq, awq or none)", where);
  QuantAction action;
  action.method = get_enum(rule, "method", where, QuantMethod::None, parse_method, "rtn, gptq, awq or none");
  if (!action.quantizes()) {
    for (std::string_view key : kActionKeys)
      if (rule.contains(key)) fail("{}: field '{}' has no effect with method = \"none\"", where, key);
    return action;
  }
  QuantSpec& spec = action.spec;
  spec.format = get_enum(rule, "format", where, QuantFormat::Int, parse_format, "int, nf4 or fp4");
  const bool is_int = spec.format == QuantFormat::Int;
  std::string_view foreign = is_int ? "double_quant" : "symmetric";
  if (rule.contains(foreign))
    fail("{}: field '{}' does not apply to format {}", where, foreign, format_name(spec.format));
  auto bits = toml_field<int64_t>(rule, "bits", where);
  if (is_int && !bits) fail("{}: field 'bits' is missing (2, 3, 4 or 8 for format int)", where);
  // Out-of-range values saturate; validate_action rejects them.
  auto narrow = [](int64_t v) { return int(std::clamp<int64_t>(v, INT_MIN, INT_MAX)); };
  spec.bits = narrow(bits.value_or(4));
  spec.group_size = narrow(toml_field<int64_t>(rule, "group_size", where).value_or(is_int ? 128 : 64));
  spec.symmetric = is_int && toml_field<bool>(rule, "symmetric", where).value_or(false);
  spec.double_quant = !is_int && toml_field<bool>(rule, "double_quant", where).value_or(true);
  action.act_bits = narrow(toml_field<int64_t>(rule, "act_bits", where).value_or(kActBitsNone));
  validate_action(action, where);
  return action;
}

Rule parse_rule(const toml::table& table, const std::string& where) {
  check_keys(table, where,
             {"note", "role", "layers", "experts", "projection", "name_regex", "method", "format", "bits",
              "group_size", "symmetric", "double_quant", "act_bits"});
  Rule rule;
  rule.note = toml_field<std::string>(table, "note", where).value_or("");
  rule.select.roles = get_roles(table, "role", where);
  rule.select.layers = get_indices(table, "layers", where);
  rule.select.experts = get_indices(table, "experts", where);
  rule.select.projections = get_strings(table, "projection", where);
  rule.select.name_regex = toml_field<std::string>(table, "name_regex", where).value_or("");
  if (!rule.select.name_regex.empty()) NameRegex(rule.select.name_regex, where);
  rule.action = parse_action(table, where);
  return rule;
}

// A top-level settings table (empty when absent), its keys checked.
struct Section {
  const toml::table& table;
  std::string where;
};

Section section(const toml::table& root, std::string_view key, const std::string& source, Keys known) {
  static const toml::table empty;
  const toml::node* node = root.get(key);
  if (node && !node->is_table()) fail("{}: field '{}' must be a table ([{}])", source, key, key);
  Section s{node ? *node->as_table() : empty, fmt::format("{}: [{}]", source, key)};
  check_keys(s.table, s.where, known);
  return s;
}

void parse_settings(const toml::table& root, const std::string& source, RecipeSettings& s) {
  auto [calib, calib_at] = section(root, "calibration", source, {"samples", "seqlen", "seed", "file", "routing_weighted"});
  s.calibration.samples = get_count(calib, "samples", calib_at, s.calibration.samples, 1);
  s.calibration.seqlen = get_count(calib, "seqlen", calib_at, s.calibration.seqlen, 1);
  s.calibration.seed = get_count(calib, "seed", calib_at, s.calibration.seed, 0);
  s.calibration.file = toml_field<std::string>(calib, "file", calib_at).value_or("");
  s.calibration.routing_weighted =
      toml_field<bool>(calib, "routing_weighted", calib_at).value_or(s.calibration.routing_weighted);

  auto [gptq, gptq_at] = section(root, "gptq", source, {"damp_percent", "block_size", "act_order", "static_groups", "mse", "mse_skip"});
  s.gptq.damp_percent = toml_field<double>(gptq, "damp_percent", gptq_at).value_or(s.gptq.damp_percent);
  if (!(s.gptq.damp_percent >= 0 && s.gptq.damp_percent < 1))
    fail("{}: field 'damp_percent' = {} must be in [0, 1)", gptq_at, s.gptq.damp_percent);
  s.gptq.block_size = get_count(gptq, "block_size", gptq_at, s.gptq.block_size, 1);
  s.gptq.act_order = toml_field<bool>(gptq, "act_order", gptq_at).value_or(s.gptq.act_order);
  s.gptq.static_groups = toml_field<bool>(gptq, "static_groups", gptq_at).value_or(s.gptq.static_groups);
  s.gptq.mse = toml_field<bool>(gptq, "mse", gptq_at).value_or(s.gptq.mse);
  s.gptq.mse_skip = get_roles(gptq, "mse_skip", gptq_at);

  auto [awq, awq_at] = section(root, "awq", source, {"n_grid", "duo_scaling", "clip", "expert_scale"});
  s.awq.n_grid = get_count(awq, "n_grid", awq_at, s.awq.n_grid, 1);
  s.awq.duo_scaling = toml_field<bool>(awq, "duo_scaling", awq_at).value_or(s.awq.duo_scaling);
  s.awq.clip = toml_field<bool>(awq, "clip", awq_at).value_or(s.awq.clip);
  if (auto scale = toml_field<std::string>(awq, "expert_scale", awq_at)) {
    if (*scale != "per_expert" && *scale != "per_layer")
      fail("{}: field 'expert_scale' = '{}' (expected per_expert or per_layer)", awq_at, *scale);
    s.awq.expert_scale = *scale == "per_layer" ? AwqExpertScale::PerLayer : AwqExpertScale::PerExpert;
  }

  auto [under, under_at] = section(root, "under_calibrated", source, {"policy", "min_tokens"});
  if (auto policy = toml_field<std::string>(under, "policy", under_at)) {
    if (*policy != "all_tokens" && *policy != "rtn")
      fail("{}: field 'policy' = '{}' (expected all_tokens or rtn)", under_at, *policy);
    s.under_calibrated.policy = *policy == "rtn" ? UnderCalibratedPolicy::Rtn : UnderCalibratedPolicy::AllTokens;
  }
  s.under_calibrated.min_tokens = get_count(under, "min_tokens", under_at, s.under_calibrated.min_tokens, 0);

  auto [scales, scales_at] = section(root, "int_scales", source, {"division"});
  if (auto division = toml_field<std::string>(scales, "division", scales_at)) {
    if (*division != "exact" && *division != "reciprocal")
      fail("{}: field 'division' = '{}' (expected exact or reciprocal)", scales_at, *division);
    s.int_scales.division = *division == "reciprocal" ? ScaleDivision::Reciprocal : ScaleDivision::Exact;
  }
}

// TOML syntax errors (and unreadable files) as "file:line:column: what".
template <typename Parse>
toml::table parse_toml(Parse&& parse, const std::string& source) {
  try {
    return parse();
  } catch (const toml::parse_error& e) {
    fail("{}:{}:{}: {}", source, e.source().begin.line, e.source().begin.column, e.description());
  }
}

Recipe parse_root(const toml::table& root, std::string source) {
  check_keys(root, source,
             {"version", "description", "calibration", "gptq", "awq", "under_calibrated", "int_scales", "rule"});
  if (auto version = toml_field<int64_t>(root, "version", source); version && *version != 1)
    fail("{}: field 'version' = {} (this moeq reads recipe version 1)", source, *version);
  Recipe recipe;
  recipe.description = toml_field<std::string>(root, "description", source).value_or("");
  parse_settings(root, source, recipe.settings);
  if (const toml::node* rules = root.get("rule")) {
    const toml::array* array = rules->as_array();
    if (!array || !array->is_array_of_tables())
      fail("{}: field 'rule' must be an array of tables ([[rule]] blocks)", source);
    for (size_t i = 0; i < array->size(); ++i)
      recipe.rules.push_back(parse_rule(*array->get(i)->as_table(), fmt::format("{}: rule {}", source, i + 1)));
  }
  recipe.source = std::move(source);
  return recipe;
}

}  // namespace

IndexSet IndexSet::of(std::span<const int> indices) {
  IndexSet set;
  for (int i : indices) set.add(i, i);
  return set;
}

void IndexSet::add(int lo, int hi) {
  MOEQ_ASSERT(lo <= hi);
  ranges_.emplace_back(lo, hi);
  std::sort(ranges_.begin(), ranges_.end());
  std::vector<std::pair<int, int>> merged;
  for (const auto& r : ranges_) {
    if (!merged.empty() && r.first <= merged.back().second + 1)
      merged.back().second = std::max(merged.back().second, r.second);
    else
      merged.push_back(r);
  }
  ranges_ = std::move(merged);
}

bool IndexSet::contains(int index) const {
  return std::any_of(ranges_.begin(), ranges_.end(),
                     [&](const auto& r) { return r.first <= index && index <= r.second; });
}

bool Selector::names_role(TensorRole role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

bool GptqSettings::searches_range(TensorRole role) const {
  return mse && std::find(mse_skip.begin(), mse_skip.end(), role) == mse_skip.end();
}

void validate_action(const QuantAction& action, std::string_view where) {
  if (!action.quantizes()) return;
  if (!valid_act_bits(action.act_bits))
    fail("{}: field 'act_bits' = {} is not supported (8: each token's input to INT8; 16: none)", where,
         action.act_bits);
  const QuantSpec& spec = action.spec;
  if (spec.format == QuantFormat::Int) {
    if (spec.bits != 2 && spec.bits != 3 && spec.bits != 4 && spec.bits != 8)
      fail("{}: field 'bits' = {} is not supported by format int (2, 3, 4 or 8)", where, spec.bits);
    if (spec.group_size != 0 && spec.group_size != 32 && spec.group_size != 64 && spec.group_size != 128)
      fail("{}: field 'group_size' = {} is not supported by format int (0 = one group per row, 32, 64 or 128)",
           where, spec.group_size);
    return;
  }
  if (spec.bits != 4) fail("{}: field 'bits' = {} but format {} is 4-bit", where, spec.bits, format_name(spec.format));
  // bitsandbytes' NF4/FP4 block size as our formats implement it (qtensor.h).
  if (spec.group_size != 64)
    fail("{}: field 'group_size' = {} is not supported by format {} (64)", where, spec.group_size,
         format_name(spec.format));
  // GPTQ and AWQ fit integer grids (scale and zero per group); a code table has neither.
  if (action.calibrates())
    fail("{}: method = \"{}\" needs format int; format {} takes method = \"rtn\"", where,
         method_name(action.method), format_name(spec.format));
}

Recipe parse_recipe(std::string_view toml_text, std::string source) {
  return parse_root(parse_toml([&] { return toml::parse(toml_text, source); }, source), source);
}

Recipe load_recipe(const std::filesystem::path& file) {
  std::string source = file.string();
  return parse_root(parse_toml([&] { return toml::parse_file(source); }, source), source);
}

}  // namespace moeq::plan
