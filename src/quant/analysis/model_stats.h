// What the structure-aware strategies and the target-bits optimiser need to know about one model,
// measured in a single pass of calibration data through the bf16 model, block by block:
//  - routing counts: tokens the router sent to each (layer, expert);
//  - block scores: mean 1 − cos(block input, block output) per decoder block (Li et al. 2024);
//  - outlier scores of every linear's weights (plan::outlier_score);
//  - sensitivity: per linear of the decoder body and per candidate action (int 2/3/4/8 g128 asym
//    GPTQ by default), the expected loss  α_g · tokens_u / tokens · ½ Σ_r ΔW_r H_u ΔW_rᵀ, where H_u
//    is built from the unit's own inputs (an expert's: only the tokens routed to it) and ΔW is the
//    error of the quantizer's own algorithm at that width. ½ Σ ΔW H ΔWᵀ is the mean output error
//    ‖ΔW x‖² per token that reaches the unit; the factor tokens_u / tokens makes it a mean over
//    all calibration tokens, so a rarely routed expert costs little (routing frequency weighted in).
//    α_g puts the linears' output spaces in one currency, the decoder block's output (the residual
//    stream): for each group g = (layer, role, projection) it is Σ block_error / Σ Hessian loss at
//    the probe candidate (the second width, 3 bits), where block_error is the measured mean
//    ‖Δ block output‖² over a few calibration sequences with that one unit quantized. β_l then
//    puts the blocks in one currency, the model's output: the mean KL divergence per token of the
//    next-token distribution with all of block l's units at the probe candidate, divided by that
//    block's output error with the same units quantized. The loss is α_g · β_l · (the above).
// The statistics are cached as JSON so that bench rows and re-runs reuse them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calib/calib_data.h"
#include "model/model.h"
#include "quant/analysis/hessian_store.h"
#include "quant/pipeline/layer_quantizer.h"
#include "quant/plan/recipe.h"
#include "quant/plan/unit.h"

namespace moeq::analysis {

struct SensitivityOptions {
  std::vector<int> bits = {2, 3, 4, 8};  // candidate widths, ascending
  plan::QuantMethod method = plan::QuantMethod::Gptq;  // Gptq or Rtn
  int group_size = 128;
  bool symmetric = false;
  plan::GptqSettings gptq;
  IndivisibleGroups indivisible = IndivisibleGroups::PerChannel;

  // The candidate actions, in `bits` order.
  std::vector<plan::QuantAction> candidates() const;
};

struct UnitStats {
  int64_t tokens = 0;         // calibration rows the unit saw
  double outlier = 0;         // plan::outlier_score of its weights
  double block_error = 0;     // mean ‖Δ block output‖² with this unit alone at the probe candidate
  std::vector<double> loss;   // per candidate; empty for units the allocation leaves alone
};

struct ModelStats {
  std::vector<plan::QuantUnit> units;          // every linear, in Model::linears() order
  std::vector<UnitStats> per_unit;             // same order
  std::vector<std::vector<int64_t>> routing;   // [layer][expert] routed tokens; dense layers: empty
  std::vector<double> block_scores;            // [layer]
  std::vector<double> layer_block_error;       // [layer] mean ‖Δ block output‖², all probes at once
  std::vector<double> layer_output_kl;         // [layer] mean KL per token of the output, same probes
  int64_t tokens = 0;                          // calibration tokens
  std::vector<plan::QuantAction> candidates;   // what per_unit[i].loss[c] measures
  int64_t other_params = 0;                    // checkpoint parameters outside the units
  double seconds = 0;                          // time the measurement took

  std::vector<double> outlier_scores() const;  // per unit
};

// Units whose sensitivity is measured and which the optimiser allocates: the linears of the
// decoder body (attention, routed and shared experts, dense MLPs). Routers, shared-expert gates,
// embeddings and lm_head stay 16-bit.
bool is_body_unit(const plan::QuantUnit& unit);

// The measurement itself, on a loaded (unquantized) model. With `hessians`, every body linear's
// input Hessian is kept there too (hessian_store.h).
ModelStats collect_model_stats(Model& model, const CalibSet& calib, const SensitivityOptions& options,
                               HessianStore* hessians = nullptr);

// Everything the cache is keyed on; a cache written under another key is measured again.
struct StatsRequest {
  std::filesystem::path model_dir;
  CalibOptions calib;
  SensitivityOptions sensitivity;
};
nlohmann::json request_key(const StatsRequest& request);

nlohmann::json stats_to_json(const ModelStats& stats, const nlohmann::json& key);
// Throws moeq::Error naming `source` and the field on a malformed document.
ModelStats stats_from_json(const nlohmann::json& doc, const std::string& source);

// Reads `cache` when it holds statistics for this request, else loads the model, measures and
// writes `cache` (atomically). With `hessians`, the Hessians too, cached next to it in
// hessians_file(cache). Progress on stderr.
ModelStats load_or_collect_stats(const StatsRequest& request, const std::filesystem::path& cache,
                                 HessianStore* hessians = nullptr);
std::filesystem::path hessians_file(const std::filesystem::path& cache);  // stats.json → stats.hessians.safetensors

}  // namespace moeq::analysis
