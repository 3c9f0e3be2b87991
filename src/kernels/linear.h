// The one interface every weight matrix of the forward pass goes through, dense or quantized.
// The model never sees a weight format: it calls forward() on a LinearOp. Quantization replaces
// a DenseLinear by a quantized implementation (src/quant/...) with the same shape, and
// calibration wraps one to observe its inputs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

namespace moeq {

class LinearOp {
 public:
  virtual ~LinearOp() = default;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  // y[n, out] = x[n, in] · Wᵀ, with W row-major [out, in] as in PyTorch. Overwrites y.
  // Bias, if any, is the caller's. Must be safe to call from one thread while other LinearOps
  // run on other threads; internal parallelism uses OpenMP.
  virtual void forward(const float* x, int64_t n, float* y) const = 0;
  // Rows [first, first + count) of W in fp32, [count, in] row-major: an embedding table is
  // looked up through the same op as a matmul weight, quantized or not.
  virtual void weight_rows(int64_t first, int64_t count, float* out) const = 0;
  // Bytes this op keeps for its weights (payload + scales + zeros), for memory reports.
  virtual size_t storage_bytes() const = 0;
  // Human-readable format, e.g. "bf16", "int4 g128 asym", "nf4 dq".
  virtual std::string format_name() const = 0;
};

using LinearPtr = std::unique_ptr<LinearOp>;

// A LinearOp put in front of another for a while (calibration observes it, or stands in for it
// for a pass), which release() gives back. Shape, weights and size are the wrapped op's.
class WrappedLinear : public LinearOp {
 public:
  explicit WrappedLinear(LinearPtr inner) : inner_(std::move(inner)) {}
  int64_t in_features() const override { return inner_->in_features(); }
  int64_t out_features() const override { return inner_->out_features(); }
  void weight_rows(int64_t first, int64_t count, float* out) const override { inner_->weight_rows(first, count, out); }
  size_t storage_bytes() const override { return inner_->storage_bytes(); }
  std::string format_name() const override { return inner_->format_name(); }
  const LinearOp& inner() const { return *inner_; }
  // Gives the wrapped op back, leaving this one empty.
  LinearPtr release() { return std::move(inner_); }

 protected:
  LinearPtr inner_;
};

// Weights that the code calling LinearOps on this thread attaches to the rows it passes: an MoE
// layer sets each routed token's routing weight while it runs that expert. Ops ignore them;
// observers may use them (calibration's InputRecorder weights an expert's Hessian by them).
// Empty outside such a scope.
class RowWeightsScope {
 public:
  explicit RowWeightsScope(std::span<const float> weights) : saved_(current_) { current_ = weights; }
  ~RowWeightsScope() { current_ = saved_; }
  RowWeightsScope(const RowWeightsScope&) = delete;
  RowWeightsScope& operator=(const RowWeightsScope&) = delete;

  static std::span<const float> current() { return current_; }

 private:
  static inline thread_local std::span<const float> current_;
  std::span<const float> saved_;
};

}  // namespace moeq
