#include "kernels/dense_linear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "kernels/gemv.h"

namespace moeq {
namespace {

// Rows per widened tile: ~256 KiB of fp32, which stays in L2 while sgemm streams it.
constexpr int64_t kTileBytes = 256 * 1024;
// Up to this many input rows the op runs a streaming matrix-vector kernel on the stored dtype;
// beyond it sgemm's blocking wins.
constexpr int64_t kSmallBatch = 4;

void sgemm_nt(const float* x, int64_t n, const float* w, int64_t rows, int64_t cols, float* y, int64_t ldy) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(rows), int(cols), 1.0f, x, int(cols), w,
              int(cols), 0.0f, y, int(ldy));
}

}  // namespace

DenseLinear::DenseLinear(WeightView weight, DenseStorage storage) : w_(std::move(weight)) {
  const bool aligned_f32 =
      w_.dtype == DType::F32 && reinterpret_cast<uintptr_t>(w_.data) % alignof(float) == 0;
  if (aligned_f32) {
    f32_ptr_ = reinterpret_cast<const float*>(w_.data);
  } else if (storage == DenseStorage::F32 || w_.dtype == DType::F32) {
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
  if (f32_ptr_)
    std::copy(f32_ptr_, f32_ptr_ + t.numel(), t.ptr());
  else
    convert_to_f32(w_.dtype, w_.data, t.ptr(), size_t(t.numel()));
  return t;
}

std::string DenseLinear::format_name() const {
  if (f32_ptr_) return "f32";
  return w_.dtype == DType::BF16 ? "bf16" : "f16";
}

void DenseLinear::forward(const float* x, int64_t n, float* y) const {
  if (n <= 0) return;
  if (n <= kSmallBatch && (f32_ptr_ || w_.dtype == DType::BF16)) {
    forward_small_batch(x, n, y);
  } else if (f32_ptr_) {
    sgemm_nt(x, n, f32_ptr_, w_.rows, w_.cols, y, w_.rows);
  } else {
    forward_tiled(x, n, y);
  }
}

void DenseLinear::forward_small_batch(const float* x, int64_t n, float* y) const {
  GemvArgs a{.x = x, .n = n, .rows = w_.rows, .cols = w_.cols, .y = y};
  if (f32_ptr_) gemv_f32(a, f32_ptr_);
  else gemv_bf16(a, reinterpret_cast<const uint16_t*>(w_.data));
}

void DenseLinear::forward_tiled(const float* x, int64_t n, float* y) const {
  const int64_t cols = w_.cols;
  const int64_t tile = std::clamp<int64_t>(kTileBytes / int64_t(sizeof(float) * cols), 16, w_.rows);
  thread_local std::vector<float> buf;
  buf.resize(size_t(tile * cols));
  const size_t esize = dtype_size(w_.dtype);
  for (int64_t r0 = 0; r0 < w_.rows; r0 += tile) {
    const int64_t rows = std::min(tile, w_.rows - r0);
    const std::byte* src = w_.data + size_t(r0 * cols) * esize;
    float* dst = buf.data();
#pragma omp parallel for schedule(static) if (rows * cols > 65536 && !omp_in_parallel())
    for (int64_t r = 0; r < rows; ++r)
      convert_to_f32(w_.dtype, src + size_t(r * cols) * esize, dst + r * cols, size_t(cols));
    sgemm_nt(x, n, dst, rows, cols, y + r0, w_.rows);
  }
}

}  // namespace moeq
