// Activation quantization in front of any LinearOp: W8A8 and W4A8 are a weight format (the
// inner op) plus this. Each token's input row is quantized to INT8 on the fly, symmetric with
// its own scale (dynamic per-token, as SmoothQuant's and vLLM's W8A8 do it):
//   s = max_i |x_i| / 127,  q_i = round_half_even(x_i / s),  x̂_i = q_i · s.
// Where the inner op has integer kernels (Int8InputOp: GPTQ-layout INT2/4/8 weights), forward()
// hands x to it, and it computes q and s and sums q_i · code_i exactly in int32. Elsewhere (INT3,
// NF4/FP4) it multiplies x̂ by the inner op's weights in fp32, which computes the same value up to
// fp32 rounding (s · Σ q_i·ŵ_i in another order): the accuracy of A8, not its speed.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "kernels/linear.h"

namespace moeq {

// Activation bits a linear may read: 16 (as computed, no quantization) or 8.
inline constexpr int kActBitsNone = 16;
bool valid_act_bits(int act_bits);

// x̂ of one row (the formula above); a row of zeros stays zeros.
void quantize_activation_row(std::span<const float> x, std::span<float> out);
// q of one row into `codes`; returns s (0 for a row of zeros, whose codes are all 0).
float quantize_activation_codes(std::span<const float> x, std::span<int8_t> codes);

// An op that can quantize its input rows to INT8 itself and multiply them in integer arithmetic.
class Int8InputOp {
 public:
  // The most tokens a forward_a8 call should take (beyond them the op's fp32 path is faster);
  // 0: no integer kernels for this op's weights.
  virtual int64_t int8_max_tokens() const = 0;
  // y[n, out] = x̂ · Wᵀ, x̂ the rows quantized by quantize_activation_codes' rule; overwrites y.
  virtual void forward_a8(const float* x, int64_t n, float* y) const = 0;

 protected:
  ~Int8InputOp() = default;
};

class ActQuantLinear final : public LinearOp {
 public:
  explicit ActQuantLinear(LinearPtr inner);
  // Whether the inner op has integer kernels, which forward() runs up to their int8_max_tokens.
  bool integer_kernel() const { return int8_op_ != nullptr; }
  int64_t in_features() const override { return inner_->in_features(); }
  int64_t out_features() const override { return inner_->out_features(); }
  void forward(const float* x, int64_t n, float* y) const override;
  void weight_rows(int64_t first, int64_t count, float* out) const override { inner_->weight_rows(first, count, out); }
  size_t storage_bytes() const override { return inner_->storage_bytes(); }
  std::string format_name() const override { return inner_->format_name() + " a8"; }

 private:
  LinearPtr inner_;
  const Int8InputOp* int8_op_;  // inner_ as an Int8InputOp with a kernel here, else null
  int64_t int8_max_tokens_;     // its int8_max_tokens(), asked once; 0 without
};

// `op` reading activations of `act_bits` bits: op itself for 16, wrapped for 8. Throws
// moeq::Error for other values.
LinearPtr with_act_bits(LinearPtr op, int act_bits);

}  // namespace moeq
