// AWQ, activation-aware weight quantization (Lin et al. 2023; mit-han-lab/llm-awq auto_scale and
// auto_clip, AutoAWQ's AwqQuantizer). Input channels that carry large activations matter more,
// so before rounding the weights are scaled up on those channels and the input is scaled down
// by the same factor: y = W x = (W·diag(s)) (diag(s)⁻¹ x). Rounding Q(W·diag(s)) then costs those
// channels relatively less error.
//
// Scale search: s = s_x^α with s_x = mean |x| per input channel (llm-awq), or with duo scaling
// s = s_x^α / (w_mean^(1−α) + 1e-4), w_mean the mean normalised weight magnitude per input
// channel (AutoAWQ's default); clamped to ≥ 1e-4, normalised by √(max s · min s) and rounded to
// fp16 (the checkpoint's type for s), for α ∈ {0, 1/grid, …, 1}. The candidate with the lowest output error
// ‖(Q(W·diag(s))·diag(s)⁻¹ − W) xᵀ‖² wins; plain RTN (s = 1) is a candidate too, so the search
// never does worse than RTN. llm-awq measures the error after the whole block
// (e.g. the MLP output); this pure-matrix version measures it at the linears' outputs, summed
// over all linears that share the input, and evaluates it exactly through the Hessian
// H = 2/N Σ x xᵀ (½ Σ_r Δ_r H Δ_rᵀ, see calib/hessian.h) instead of replaying the rows.
//
// Clip search (optional, after the scales): each (row, group) may shrink its range
// [min, max] to [f·min, f·max], f ∈ {1, 1 − 1/clip_grid, …} while f > 1 − max_shrink, the
// weights being clamped before rounding. llm-awq picks f per group from that group's own
// partial outputs and ignores cross-group terms; here groups are visited one after another and
// a row's f is changed only if it lowers that row's full output error (cross terms included),
// so clipping can never increase the loss. (llm-awq clamps to ±f·absmax even for asymmetric
// quantization; shrinking min and max by f is the same for symmetric and keeps asymmetric
// ranges off-centre as they are.)
//
// Where s goes. awq_quantize returns Q(W·diag(s)) and s; the input must be divided by s:
//  - AutoAWQ folds s into the previous op's output channels: the RMSNorm weight before q/k/v,
//    v_proj's rows before o_proj (only when their shapes match; with GQA they do not),
//    up_proj's rows before down_proj. Linears reading the same x must share one s: pass them
//    together (q/k/v; gate/up).
//  - moeq's pipeline (quant/pipeline/layer_quantizer.cpp) keeps the norms as they are and stores
//    s as a tensor that the linears reading x divide by at run time, one tensor per shared input;
//    only a down projection's s is folded, into its up projection's quantization scales (exact:
//    down's input is act(gate x)·(up x), linear in up's rows). MoE experts' gate/up all read the
//    post-attention norm's output, which the router (kept 16-bit) reads too, so folding there
//    would have to rescale the router's columns; instead each expert divides by its own s
//    (AutoAWQ PR #301: lower perplexity than one s per layer), or, with one s per layer
//    (AutoAWQ's layout, a smaller file), by the layer's.
//  - fold_input_scale() gives the dense Ŵ = Q(W·diag(s))·diag(s)⁻¹ (fake quantization), for
//    evaluation and tests.
#pragma once

#include <algorithm>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "quant/formats/int_code.h"
#include "quant/formats/qtensor.h"

namespace moeq {

struct AwqOptions {
  int grid = 20;            // α ∈ {0, 1/grid, …, 1}
  bool duo_scaling = true;  // s = s_x^α / w_mean^(1−α) (AutoAWQ's default) rather than s_x^α (llm-awq)
  bool clip = true;         // search per-group clipping after the scales
  int clip_grid = 20;       // shrink factors f = 1 − i/clip_grid ...
  float max_shrink = 0.5f;  // ... for i < max_shrink · clip_grid (llm-awq: f = 1, 0.95, …, 0.55)
  ScaleDivision scale_division = ScaleDivision::Exact;  // group scales (int_code.h)
};

// One linear reading the shared input: weight [out, in] and the Hessian [in, in] of the rows it
// sees (for an expert, the tokens routed to it). Not owned.
struct AwqLinear {
  const Tensor* weight;
  const Tensor* hessian;
};

struct AwqResult {
  std::vector<float> scale;        // s [in]; q holds Q(W·diag(s))
  float alpha = 0.0f;              // the chosen exponent (0 with s = 1 when plain RTN won)
  std::vector<QuantizedMatrix> q;  // one per linear, in input order
  // Output errors ½ Σ_r Δ_r H Δ_rᵀ with Δ = Q(W·diag(s))·diag(s)⁻¹ − W, summed over the linears:
  double rtn_loss = 0.0;     // s = 1, no clipping: plain RTN
  double scaled_loss = 0.0;  // the chosen α, before clipping (≤ rtn_loss)
  double loss = 0.0;         // the result (≤ scaled_loss)

  // False when plain RTN won (s = 1): the linears then need no input scale stored or applied.
  bool scales_input() const {
    return std::ranges::any_of(scale, [](float s) { return s != 1.0f; });
  }
};

// act_mean_abs: mean |x| per input channel over the calibration rows (HessianAccumulator::
// mean_abs()). spec: QuantFormat::Int. Throws moeq::Error on mismatched shapes.
AwqResult awq_quantize(std::span<const AwqLinear> linears, std::span<const float> act_mean_abs,
                       const QuantSpec& spec, const AwqOptions& options = {});

// Divides row r of the INT-quantized `q` by s[r] through its quantization scales (codes and zeros
// stay): Q(W) becomes diag(s)⁻¹·Q(W). How a down projection's s folds into its up projection.
// Returns false, q unchanged, if a scale would leave fp16's range (the checkpoint's type).
bool divide_rows(QuantizedMatrix& q, std::span<const float> s);

// Ŵ[r][c] = ŵ[r][c] / scale[c], ŵ dequantized as qtensor.h defines it.
Tensor fold_input_scale(const QuantizedMatrix& q, std::span<const float> scale);

}  // namespace moeq
