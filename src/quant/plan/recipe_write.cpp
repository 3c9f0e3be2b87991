// Writing recipes: Recipe → TOML that reads back to the same Recipe. Written by hand rather
// than through toml++'s formatter to control the layout: settings first, then one [[rule]] block
// per rule in order, selectors before the action.
#include <fmt/format.h>

#include "core/atomic_file.h"
#include "quant/plan/recipe.h"

namespace moeq::plan {
namespace {

// A TOML string: a literal '...' string when possible (regexes stay readable), else a basic one.
std::string quote(std::string_view text) {
  bool literal_ok = true;
  for (char c : text) literal_ok &= c != '\'' && (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  if (literal_ok && text.find('\\') != std::string_view::npos) return fmt::format("'{}'", text);
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
          out += fmt::format("\\u{:04X}", static_cast<unsigned char>(c));
        else
          out += c;
    }
  }
  return out + "\"";
}

// Strings or string views: one quoted, several as a TOML array.
template <typename Strings>
std::string string_list(const Strings& items) {
  if (items.size() == 1) return quote(items[0]);
  std::string out;
  for (std::string_view item : items) out += (out.empty() ? "" : ", ") + quote(item);
  return "[" + out + "]";
}

std::string index_list(const IndexSet& set) {
  std::string out;
  for (auto [lo, hi] : set.ranges()) {
    out += out.empty() ? "" : ", ";
    out += lo == hi ? fmt::format("{}", lo) : fmt::format("\"{}-{}\"", lo, hi);
  }
  return "[" + out + "]";
}

void write_rule(std::string& out, const Rule& rule) {
  const Selector& s = rule.select;
  out += "\n[[rule]]\n";
  if (!rule.note.empty()) out += fmt::format("note = {}\n", quote(rule.note));
  if (!s.roles.empty()) out += fmt::format("role = {}\n", string_list(role_names(s.roles)));
  if (s.layers) out += fmt::format("layers = {}\n", index_list(*s.layers));
  if (s.experts) out += fmt::format("experts = {}\n", index_list(*s.experts));
  if (!s.projections.empty()) out += fmt::format("projection = {}\n", string_list(s.projections));
  if (!s.name_regex.empty()) out += fmt::format("name_regex = {}\n", quote(s.name_regex));
  const QuantAction& a = rule.action;
  out += fmt::format("method = \"{}\"\n", method_name(a.method));
  if (!a.quantizes()) return;
  out += fmt::format("format = \"{}\"\nbits = {}\ngroup_size = {}\n", format_name(a.spec.format), a.spec.bits,
                     a.spec.group_size);
  if (a.spec.format == QuantFormat::Int)
    out += fmt::format("symmetric = {}\n", a.spec.symmetric);
  else
    out += fmt::format("double_quant = {}\n", a.spec.double_quant);
  if (a.act_bits != kActBitsNone) out += fmt::format("act_bits = {}\n", a.act_bits);
}

// Shortest text that reads back to exactly this double.
std::string number(double value) {
  std::string text = fmt::format("{}", value);
  return text.find_first_of(".eE") == std::string::npos ? text + ".0" : text;
}

bool uses(const Recipe& recipe, QuantMethod method) {
  for (const Rule& rule : recipe.rules)
    if (rule.action.method == method) return true;
  return false;
}

// Algorithm tables only where a rule uses the algorithm or a value differs from its default:
// the default values are what a missing table reads back as.
void write_settings(std::string& out, const Recipe& recipe) {
  const RecipeSettings& s = recipe.settings;
  const RecipeSettings defaults;
  const bool gptq = uses(recipe, QuantMethod::Gptq), awq = uses(recipe, QuantMethod::Awq);
  out += fmt::format("\n[calibration]\nsamples = {}\nseqlen = {}\nseed = {}\n", s.calibration.samples,
                     s.calibration.seqlen, s.calibration.seed);
  if (!s.calibration.file.empty()) out += fmt::format("file = {}\n", quote(s.calibration.file));
  if (s.calibration.routing_weighted) out += "routing_weighted = true\n";
  if (gptq || s.gptq != defaults.gptq) {
    out += fmt::format("\n[gptq]\ndamp_percent = {}\nblock_size = {}\nact_order = {}\nstatic_groups = {}\nmse = {}\n",
                       number(s.gptq.damp_percent), s.gptq.block_size, s.gptq.act_order, s.gptq.static_groups,
                       s.gptq.mse);
    if (!s.gptq.mse_skip.empty()) out += fmt::format("mse_skip = {}\n", string_list(role_names(s.gptq.mse_skip)));
  }
  if (awq || s.awq != defaults.awq)
    out += fmt::format("\n[awq]\nn_grid = {}\nduo_scaling = {}\nclip = {}\nexpert_scale = \"{}\"\n", s.awq.n_grid,
                       s.awq.duo_scaling, s.awq.clip,
                       s.awq.expert_scale == AwqExpertScale::PerLayer ? "per_layer" : "per_expert");
  if (gptq || awq || s.under_calibrated != defaults.under_calibrated)
    out += fmt::format("\n[under_calibrated]\npolicy = \"{}\"\nmin_tokens = {}\n",
                       s.under_calibrated.policy == UnderCalibratedPolicy::Rtn ? "rtn" : "all_tokens",
                       s.under_calibrated.min_tokens);
  if (s.int_scales != defaults.int_scales)
    out += fmt::format("\n[int_scales]\ndivision = \"{}\"\n",
                       s.int_scales.division == ScaleDivision::Reciprocal ? "reciprocal" : "exact");
}

}  // namespace

std::string to_toml(const Recipe& recipe) {
  std::string out = "# moeq quantization recipe (docs/RECIPES.md). First matching rule wins.\nversion = 1\n";
  if (!recipe.description.empty()) out += fmt::format("description = {}\n", quote(recipe.description));
  write_settings(out, recipe);
  for (const Rule& rule : recipe.rules) write_rule(out, rule);
  return out;
}

void save_recipe(const Recipe& recipe, const std::filesystem::path& file) {
  write_text_atomically(file, to_toml(recipe));
}

}  // namespace moeq::plan
