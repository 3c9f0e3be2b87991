// DenseLinear: the unquantized LinearOp. Weights stay in the checkpoint's mapping in their stored
// dtype (BF16/F16/F32) and are widened to fp32 a cache-sized tile of rows at a time right before
// the sgemm, so a loaded model costs no more memory than its file; or, optionally, they are
// widened once at load (faster for tiny batches, 2x the memory for bf16 checkpoints). Both give
// bit-identical results: the widening is exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/linear.h"

namespace moeq {

enum class DenseStorage : uint8_t {
  Mapped,  // keep the stored dtype, widen row tiles per call
  F32,     // widen everything once at construction
};

// A row-major [rows, cols] matrix in some floating dtype, not owned. `owner` keeps the memory
// it points into alive (e.g. the checkpoint mapping) for as long as the op lives.
struct WeightView {
  DType dtype = DType::F32;
  const std::byte* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  std::shared_ptr<const void> owner;
};

class DenseLinear final : public LinearOp {
 public:
  DenseLinear(WeightView weight, DenseStorage storage);
  explicit DenseLinear(Tensor weight);  // owns an fp32 [out, in] matrix

  int64_t in_features() const override { return w_.cols; }
  int64_t out_features() const override { return w_.rows; }
  void forward(const float* x, int64_t n, float* y) const override;
  size_t storage_bytes() const override;
  std::string format_name() const override;
  // The weights as an owning fp32 [out, in] tensor (what quantizers start from).
  Tensor weight_f32() const;

 private:
  void forward_tiled(const float* x, int64_t n, float* y) const;
  void forward_small_batch(const float* x, int64_t n, float* y) const;

  WeightView w_;
  std::vector<float> f32_;  // F32 storage, or a copy of an F32 view that was not 4-byte aligned
  const float* f32_ptr_ = nullptr;
};

}  // namespace moeq
