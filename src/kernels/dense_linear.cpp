#include "kernels/dense_linear.h"

#include "kernels/gemm.h"
#include "kernels/gemv.h"

namespace moeq {
namespace {

// Up to this many input rows the op runs a streaming matrix-vector kernel on the stored dtype;
// beyond it the packed gemm wins.
constexpr int64_t kSmallBatch = 4;

}  // namespace

DenseLinear::DenseLinear(WeightView weight, DenseStorage storage) : w_(std::move(weight)) {
  const bool aligned_f32 =
      w_.dtype == DType::F32 && reinterpret_cast<uintptr_t>(w_.data) % alignof(float) == 0;
  if (aligned_f32) {
    f32_ptr_ = reinterpret_cast<const float*>(w_.data);
  } else if (storage == DenseStorage::F32 || (w_.dtype != DType::BF16 && w_.dtype != DType::F16)) {
    f32_.resize(size_t(w_.rows * w_.cols));
    convert_to_f32(w_.dtype, w_.data, f32_.data(), f32_.size());
    f32_ptr_ = f32_.data();
  }
}

DenseLinear::DenseLinear(Tensor weight) {
  if (weight.rank() != 2) fail("DenseLinear: weight must be 2-D, got rank {}", weight.rank());
  w_.dtype = DType::F32;
  w_.rows = weight.dim(0);
  w_.cols = weight.dim(1);
  f32_ = std::move(weight.data);
  f32_ptr_ = f32_.data();
  w_.data = reinterpret_cast<const std::byte*>(f32_ptr_);
}

size_t DenseLinear::storage_bytes() const {
  return f32_.empty() ? size_t(w_.rows * w_.cols) * dtype_size(w_.dtype) : f32_.size() * sizeof(float);
}

Tensor DenseLinear::weight_f32() const {
  Tensor t({w_.rows, w_.cols});
  weight_rows(0, w_.rows, t.ptr());
  return t;
}

void DenseLinear::weight_rows(int64_t first, int64_t count, float* out) const {
  const int64_t begin = first * w_.cols, n = count * w_.cols;
  if (f32_ptr_)
    std::copy(f32_ptr_ + begin, f32_ptr_ + begin + n, out);
  else
    convert_to_f32(w_.dtype, w_.data + size_t(begin) * dtype_size(w_.dtype), out, size_t(n));
}

std::string DenseLinear::format_name() const {
  return f32_ptr_ ? "f32" : w_.dtype == DType::F16 ? "f16" : "bf16";
}

void DenseLinear::forward(const float* x, int64_t n, float* y) const {
  if (n <= 0) return;
  const DType dt = f32_ptr_ ? DType::F32 : w_.dtype;
  const void* w = f32_ptr_ ? static_cast<const void*>(f32_ptr_) : w_.data;
  if (n <= kSmallBatch) {
    GemvArgs a{.x = x, .n = n, .rows = w_.rows, .cols = w_.cols, .y = y};
    if (f32_ptr_) gemv_f32(a, f32_ptr_);
    else if (w_.dtype == DType::F16) gemv_f16(a, static_cast<const uint16_t*>(w));
    else gemv_bf16(a, static_cast<const uint16_t*>(w));
    return;
  }
  gemm({.m = n, .n = w_.rows, .k = w_.cols, .a = x, .lda = w_.cols, .b = {GemmB::Layout::NT, dt, w, w_.cols},
        .c = y, .ldc = w_.rows});
}

}  // namespace moeq
