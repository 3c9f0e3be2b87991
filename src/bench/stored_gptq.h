// Quantizing a grid row in memory from the one calibration pass: GPTQ on the Hessians the
// statistics pass kept (hessian_store.h), computed on the unquantized model's activations,
// instead of `moeq quantize`'s true-sequential passes (each stage calibrated on the outputs of
// the already quantized ones). Every row then costs seconds instead of a pass of calibration
// data per stage and block; `moeq bench --sequential` runs the full pipeline instead.
#pragma once

#include "model/model.h"
#include "quant/analysis/hessian_store.h"
#include "quant/analysis/model_stats.h"
#include "quant/pipeline/layer_quantizer.h"
#include "quant/plan/plan.h"

namespace moeq::bench {

// Replaces the op of every linear the plan quantizes with its quantized op (the kernels a
// quantized checkpoint loads into). GPTQ entries use the stored Hessian of their input (experts
// routed fewer than kMinExpertTokens tokens: the all-tokens one); RTN entries need none.
// `plan` must be resolved against stats.units, which must be the model's linears. Throws
// moeq::Error for AWQ entries (they need the sequential pipeline).
void quantize_from_store(Model& model, const plan::QuantPlan& plan, const analysis::ModelStats& stats,
                         const analysis::HessianStore& hessians, IndivisibleGroups indivisible);

}  // namespace moeq::bench
