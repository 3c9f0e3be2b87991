// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers"), following the reference implementation (IST-DASLab/gptq
// `GPTQ.fasterquant`, AutoGPTQ `GPTQ.fasterquant`): columns are quantized one at a time and the
// rounding error of each is spread over the columns not yet quantized, weighted by the inverse
// Hessian of the layer's inputs, so that the layer's output error ‖(W − Ŵ) Xᵀ‖² stays small.
//
// What it does, in the reference's order:
//  - dead inputs (H_ii == 0: the channel was always 0 in calibration) get H_ii = 1 and weight 0;
//  - act-order (optional) visits columns by descending H_ii; g_idx records each column's group;
//  - dampening: H += damp_percent · mean(diag H) · I, then Hinv = upper Cholesky factor of H⁻¹;
//    if that is still not positive definite the dampening is multiplied by 10 and retried
//    (with a warning on stderr) instead of producing NaN;
//  - lazy block updates: error feedback inside a block of block_size columns, then one GEMM for
//    the remaining columns;
//  - group scales/zeros are computed from the *updated* weights when a group is entered, or all
//    up front from the original weights with static_groups (the usual choice with act-order,
//    since groups then stay contiguous ranges of input channels).
// Scales and zeros follow quant/algo/group_params.h, so with H = I the codes equal RTN's.
#pragma once

#include <optional>

#include "core/tensor.h"
#include "quant/algo/group_params.h"
#include "quant/formats/qtensor.h"

namespace moeq {

struct GptqOptions {
  float damp_percent = 0.01f;  // fraction of mean(diag H) added to the diagonal
  int block_size = 128;        // lazy-update block (columns); only speed, not the result
  bool act_order = false;      // quantize columns by descending H_ii
  bool static_groups = false;  // group params from the original weights, before any update
  // Group ranges by search_group_params (the reference's `mse` option) instead of min/max.
  std::optional<RangeSearch> range_search;
  ScaleDivision scale_division = ScaleDivision::Exact;  // group scales (int_code.h)
  // true_sequential (quantizing q/k/v before o, gate/up before down, re-collecting inputs in
  // between) is the caller's business: it decides which inputs each Hessian is built from.
};

struct GptqResult {
  QuantizedMatrix q;
  // Σ (w − q)² / (2 d²) over all weights, d = Hinv's diagonal at the column (the reference's
  // reported "error"). It equals ½ Σ_r ΔW_r (H + damp·I) ΔW_rᵀ, i.e. the mean output error
  // ‖ΔW x‖² over the calibration rows when H = 2/N Σ x xᵀ and damping is small.
  double loss = 0.0;
  float damp = 0.0f;      // dampening actually added to diag(H), after any retries
  int dead_columns = 0;   // columns with H_ii == 0, quantized as 0
};

// w: [rows, cols] (rows = output features); hessian: [cols, cols], e.g. from
// HessianAccumulator::hessian(). spec: QuantFormat::Int. Throws moeq::Error on bad shapes or a
// non-finite Hessian.
GptqResult gptq_quantize(const Tensor& w, const Tensor& hessian, const QuantSpec& spec,
                         const GptqOptions& options = {});

}  // namespace moeq
