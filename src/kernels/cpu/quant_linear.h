// LinearOps over quantized weights, one per format family. forward() never materialises the
// fp32 matrix: for n >= gemm_min_tokens it dequantizes one cache-sized tile of weights at a time
// into a thread-local buffer and multiplies it with moeq's gemm; below that (decode) a fused
// dequantize-and-dot kernel reads the packed codes directly. Kernels: quant_kernels.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "kernels/act_quant_linear.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/quant_kernels.h"
#include "kernels/cpu/quant_layout.h"
#include "kernels/linear.h"
#include "quant/formats/bnb4.h"
#include "quant/formats/gptq.h"

namespace moeq {

struct QuantLinearOptions {
  std::optional<Isa> isa;         // which kernels; default best_isa(). Throws if unsupported.
  int64_t gemm_min_tokens = 16;   // n at or above this takes the tile + gemm path
};

// Int (GPTQ layout): any bits in {2, 3, 4, 8}, group size, sym/asym, act-order g_idx. At 2, 4 and
// 8 bits it also multiplies INT8 activations in integers (int_gemv_a8).
class IntQuantLinear final : public LinearOp, public Int8InputOp {
 public:
  IntQuantLinear(const QuantizedMatrix& m, const QuantLinearOptions& options);
  int64_t in_features() const override { return layout_.in; }
  int64_t out_features() const override { return layout_.out; }
  void forward(const float* x, int64_t n, float* y) const override;
  void weight_rows(int64_t first, int64_t count, float* out) const override;
  size_t storage_bytes() const override;
  std::string format_name() const override { return to_string(spec_); }
  int64_t int8_max_tokens() const override;
  void forward_a8(const float* x, int64_t n, float* y) const override;

 private:
  // x in group order with padding (act-order, in % 32 != 0): x itself or a thread-local copy.
  const float* group_ordered(const float* x, int64_t n) const;
  void gemm(const float* xp, int64_t n, float* y) const;
  void gemv(const float* xp, int64_t n, float* y) const;
  // Runs kernel(o0, o1, ypad, ldy) over blocks of outputs (threads when worth it) into a padded
  // [n, out_pad] buffer, then copies the first `out` columns of each row to y.
  template <class Kernel>
  void over_output_blocks(int64_t n, float* y, Kernel&& kernel) const;

  QuantSpec spec_;
  IntLayout layout_;
  const QuantKernels* kernels_;
  int64_t gemm_min_tokens_;
};

// NF4 / FP4 (bitsandbytes layout), with or without double quantization.
class Bnb4QuantLinear final : public LinearOp {
 public:
  Bnb4QuantLinear(Bnb4Tensors tensors, const QuantLinearOptions& options);
  int64_t in_features() const override { return t_.cols; }
  int64_t out_features() const override { return t_.rows; }
  void forward(const float* x, int64_t n, float* y) const override;
  void weight_rows(int64_t first, int64_t count, float* out) const override;
  size_t storage_bytes() const override;
  std::string format_name() const override { return to_string(t_.spec); }

 private:
  Bnb4Tensors t_;
  const QuantKernels* kernels_;
  int64_t gemm_min_tokens_;
};

// The op for a quantized matrix; NF4/FP4 go through pack_bnb4 first, so the op computes with
// what would be stored (double-quantized absmax included). Throws moeq::Error on a bad matrix.
LinearPtr make_quant_linear(const QuantizedMatrix& m, const QuantLinearOptions& options = {});
LinearPtr make_quant_linear(const GptqTensors& t, const QuantLinearOptions& options = {});
LinearPtr make_quant_linear(const Bnb4Tensors& t, const QuantLinearOptions& options = {});

}  // namespace moeq
