// DenseLinear: the unquantized LinearOp. BF16 and F16 weights stay in the checkpoint's mapping
// and are widened to fp32 one packed panel at a time inside the gemm (kernels/gemm.h), so a
// loaded model costs no more memory than its file; or, optionally, they are widened once at load
// (2x the memory). F32 weights are used in place. All give identical results: the widening is
// exact.
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
  Mapped,  // keep 16-bit weights in the mapping, widen panels per call
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
  void weight_rows(int64_t first, int64_t count, float* out) const override;
  size_t storage_bytes() const override;
  std::string format_name() const override;
  // The weights as an owning fp32 [out, in] tensor (what quantizers start from).
  Tensor weight_f32() const;

 private:
  WeightView w_;
  std::vector<float> f32_;  // widened weights (F32 storage, F16, or an unaligned F32 view)
  const float* f32_ptr_ = nullptr;
};

}  // namespace moeq
