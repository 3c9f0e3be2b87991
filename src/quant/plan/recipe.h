// A quantization recipe: ordered rules that select weight matrices by structure (role, layer,
// expert, projection, name) and say how to quantize them, plus calibration and algorithm
// settings. Stored as TOML (docs/RECIPES.md); every allocation strategy emits one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quant/formats/int_code.h"
#include "quant/plan/unit.h"

namespace moeq::plan {

// Layer or expert indices, written [0, 2, "4-7"]. Kept as sorted, merged, inclusive ranges.
class IndexSet {
 public:
  IndexSet() = default;
  static IndexSet of(std::span<const int> indices);
  void add(int lo, int hi);  // inclusive; lo <= hi
  bool contains(int index) const;
  bool empty() const { return ranges_.empty(); }
  const std::vector<std::pair<int, int>>& ranges() const { return ranges_; }
  bool operator==(const IndexSet&) const = default;

 private:
  std::vector<std::pair<int, int>> ranges_;
};

// What a rule applies to. Every field that is set must match; an empty selector matches all
// tensors (except routers and shared-expert gates, which only a role selector naming them picks).
struct Selector {
  std::vector<TensorRole> roles;         // empty: any role
  std::optional<IndexSet> layers;        // unset: any layer (set: tensors with layer -1 never match)
  std::optional<IndexSet> experts;       // unset: any expert (set: non-routed tensors never match)
  std::vector<std::string> projections;  // empty: any
  std::string name_regex;                // PCRE2, searched in the HF name; empty: any

  bool names_role(TensorRole role) const;
  bool operator==(const Selector&) const = default;
};

struct Rule {
  Selector select;
  QuantAction action;
  std::string note;  // free text kept through save/load (TOML comments are not)
  bool operator==(const Rule&) const = default;
};

struct CalibrationSettings {
  int64_t samples = 128;
  int64_t seqlen = 512;
  int64_t seed = 0;
  std::string file;  // calibration text; empty: the pipeline's default corpus
  bool routing_weighted = false;  // an expert's Hessian weights each routed token by its routing weight
  bool operator==(const CalibrationSettings&) const = default;
};

struct GptqSettings {
  double damp_percent = 0.01;  // fraction of the mean Hessian diagonal added to it
  int64_t block_size = 128;
  bool act_order = false;
  bool static_groups = false;
  // Search each group's range for the least squared error (GPTQ's `mse`). On by default: on
  // mixtral INT4 g128 it took the perplexity increase from +2.02% to +1.73% on WikiText-2 (200
  // windows) and from +1.75% to +1.38% in-domain, for ~no time.
  bool mse = true;
  // Roles that keep the plain min/max range even with mse on. On mixtral INT4 g128 (three
  // calibration seeds) the search helped the routed experts on WikiText-2 every time and hurt
  // attention every time, though it helped attention in-domain (docs/RESULTS.md).
  std::vector<TensorRole> mse_skip;
  bool operator==(const GptqSettings&) const = default;

  bool searches_range(TensorRole role) const;
};

// Routed experts' gate/up read the same post-attention norm output: each expert may search its
// own input scale (stored per expert), or all experts of a layer one scale together (stored once
// per layer, as AutoAWQ's MoE models have it: a smaller file, a coarser scale).
enum class AwqExpertScale : uint8_t { PerExpert, PerLayer };

struct AwqSettings {
  int64_t n_grid = 20;  // scaling exponents tried in [0, 1)
  bool duo_scaling = true;
  bool clip = true;  // also search weight clipping ranges
  AwqExpertScale expert_scale = AwqExpertScale::PerExpert;
  bool operator==(const AwqSettings&) const = default;
};

// Experts that see fewer than min_tokens calibration tokens cannot be calibrated reliably.
enum class UnderCalibratedPolicy : uint8_t {
  AllTokens,  // calibrate them on every token that reached the layer, routed or not
  Rtn,        // fall back to round-to-nearest
};

struct UnderCalibratedSettings {
  UnderCalibratedPolicy policy = UnderCalibratedPolicy::AllTokens;
  int64_t min_tokens = 0;  // 0: only experts that got no token at all
  bool operator==(const UnderCalibratedSettings&) const = default;
};

// How every Int group scale of the recipe is rounded, whichever method computes it.
struct IntScaleSettings {
  ScaleDivision division = ScaleDivision::Exact;
  bool operator==(const IntScaleSettings&) const = default;
};

struct RecipeSettings {
  CalibrationSettings calibration;
  GptqSettings gptq;
  AwqSettings awq;
  UnderCalibratedSettings under_calibrated;
  IntScaleSettings int_scales;
  bool operator==(const RecipeSettings&) const = default;
};

struct Recipe {
  std::string source = "<recipe>";  // file name or label used in error messages; not saved
  std::string description;
  std::vector<Rule> rules;  // first match wins
  RecipeSettings settings;

  // Equal content; `source` is not compared.
  bool operator==(const Recipe& other) const {
    return description == other.description && rules == other.rules && settings == other.settings;
  }
};

// Parse a recipe. Errors (moeq::Error) name the source, the rule (1-based) and the key.
Recipe load_recipe(const std::filesystem::path& file);
Recipe parse_recipe(std::string_view toml_text, std::string source = "<recipe>");

// The TOML text of a recipe; parse_recipe(to_toml(r)) == r.
std::string to_toml(const Recipe& recipe);
void save_recipe(const Recipe& recipe, const std::filesystem::path& file);

// Checks a spec the way the parser does; throws moeq::Error prefixed with `where`.
void validate_action(const QuantAction& action, std::string_view where);

}  // namespace moeq::plan
