// How quantized weight matrices are stored in a moeq checkpoint folder, and read back as LinearOps.
//
// For the linear whose Hugging Face weight is "<prefix>.weight":
//  - Int (GPTQ convention, zeros stored as-is, "v2"): <prefix>.qweight I32, <prefix>.qzeros I32,
//    <prefix>.scales F16, <prefix>.g_idx I32 — shapes in formats/gptq.h.
//  - NF4/FP4 (bitsandbytes Linear4bit state dict names): <prefix>.weight U8 [rows·cols/2],
//    <prefix>.weight.quant_map F32 [16]; with double quantization <prefix>.weight.absmax U8,
//    <prefix>.weight.nested_absmax F32, <prefix>.weight.nested_quant_map F32 [256],
//    <prefix>.weight.nested_offset F32 [1]; without it <prefix>.weight.absmax F32.
//  - AWQ's per-input-channel scale, when the weights were quantized as W·diag(s): an F16 tensor
//    [in] named in the manifest entry's "input_scale", usually "<prefix>.input_scale" of the
//    first linear that reads the input; the op divides its input by s. Linears that read one
//    input (q/k/v, an expert's gate/up) share one tensor. A down projection's scale is folded
//    into its up projection's rows instead where up is INT-quantized (no tensor at all).
// Bits, group size and symmetry cannot be recovered from the tensors: they are recorded per
// tensor in config.json's quantization_config (model/manifest.h).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/linear.h"
#include "model/manifest.h"
#include "quant/formats/qtensor.h"

namespace moeq {

// "<prefix>.weight" → "<prefix>"; other names are returned unchanged.
std::string linear_prefix(const std::string& weight_name);

// The tensors that store `m` for the linear `weight_name`.
std::vector<TensorToWrite> quantized_linear_tensors(const std::string& weight_name, const QuantizedMatrix& m);

// "<prefix>.input_scale": where the input scale of the linears that read weight_name's input is
// stored, when weight_name is the first of them.
std::string input_scale_name(const std::string& weight_name);
// The F16 tensor `name` holding `scale`; each value must be exactly representable in fp16
// (AWQ's search rounds its candidates), so the file holds the scale the weights were fitted to.
TensorToWrite input_scale_tensor(const std::string& name, std::span<const float> scale);

// The weight a stored tensor belongs to: "X.weight" for X.qweight / X.qzeros / X.scales /
// X.g_idx / X.input_scale and for bitsandbytes' "X.weight.absmax"-style companions; any other
// name is its own weight.
std::string stored_weight_name(const std::string& tensor_name);

// Reads the quantized linear `weight_name` from `checkpoint` as its manifest entry `q` describes
// it and builds its op: q.spec's weights of shape [q.rows, q.cols], reading activations of
// q.act_bits, divided first by the tensor q.input_scale when that is not empty.
// Throws moeq::Error naming the file and tensor when a tensor is missing or its shape disagrees
// with the entry.
LinearPtr load_quantized_linear(const Checkpoint& checkpoint, const std::string& weight_name, const TensorQuant& q);

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
