// How quantized weight matrices are stored in a moeq checkpoint folder, and read back as LinearOps.
//
// For the linear whose Hugging Face weight is "<prefix>.weight":
//  - Int (GPTQ convention, zeros stored as-is, "v2"): <prefix>.qweight I32, <prefix>.qzeros I32,
//    <prefix>.scales F16, <prefix>.g_idx I32 — shapes in formats/gptq.h.
//  - NF4/FP4 (bitsandbytes Linear4bit state dict names): <prefix>.weight U8 [rows·cols/2],
//    <prefix>.weight.quant_map F32 [16]; with double quantization <prefix>.weight.absmax U8,
//    <prefix>.weight.nested_absmax F32, <prefix>.weight.nested_quant_map F32 [256],
//    <prefix>.weight.nested_offset F32 [1]; without it <prefix>.weight.absmax F32.
//  - AWQ's per-input-channel scale, when the weights were quantized as W·diag(s):
//    <prefix>.input_scale F32 [in]; the op divides its input by s.
// Bits, group size and symmetry cannot be recovered from the tensors: they are recorded per
// tensor in config.json's quantization_config (quant/formats/manifest.h).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/linear.h"
#include "quant/qtensor.h"

namespace moeq {

// "<prefix>.weight" → "<prefix>"; other names are returned unchanged.
std::string linear_prefix(const std::string& weight_name);

// The tensors that store `m` (and `input_scale`, if not empty) for the linear `weight_name`.
std::vector<TensorToWrite> quantized_linear_tensors(const std::string& weight_name, const QuantizedMatrix& m,
                                                    std::span<const float> input_scale = {});

// The weight a stored tensor belongs to: "X.weight" for X.qweight / X.qzeros / X.scales /
// X.g_idx / X.input_scale and for bitsandbytes' "X.weight.absmax"-style companions; any other
// name is its own weight.
std::string stored_weight_name(const std::string& tensor_name);

// Reads the quantized linear `weight_name` with `spec` from `checkpoint` and builds its op.
// Throws moeq::Error naming the file and tensor when a tensor is missing or its shape disagrees
// with [out, in] and the spec.
LinearPtr load_quantized_linear(const Checkpoint& checkpoint, const std::string& weight_name, const QuantSpec& spec,
                                int64_t out_features, int64_t in_features);

// A LinearOp over weights quantized as W·diag(s) (AWQ): forward(x) = inner.forward(x / s).
class InputScaledLinear final : public LinearOp {
 public:
  InputScaledLinear(LinearPtr inner, std::vector<float> scale);
  int64_t in_features() const override { return inner_->in_features(); }
  int64_t out_features() const override { return inner_->out_features(); }
  void forward(const float* x, int64_t n, float* y) const override;
  void weight_rows(int64_t first, int64_t count, float* out) const override;
  size_t storage_bytes() const override { return inner_->storage_bytes() + inv_scale_.size() * sizeof(float); }
  std::string format_name() const override { return inner_->format_name() + " awq"; }
  std::span<const float> inverse_scale() const { return inv_scale_; }

 private:
  LinearPtr inner_;
  std::vector<float> inv_scale_;
};

}  // namespace moeq
