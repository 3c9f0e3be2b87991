#include "calib/hessian.h"

#include <algorithm>
#include <cmath>

#include <cblas.h>
#include <omp.h>

#include "core/error.h"
#include "core/int_math.h"
#include "kernels/parallel.h"

namespace moeq {

namespace {
// Rows per ssyrk call: large enough for BLAS efficiency, small enough that the fp32 partial sums
// stay accurate before they are added to the double accumulator.
constexpr int64_t kChunkRows = 4096;
// Rows per fp32 partial sum: each is one thread's work between joins, and enough rows that the
// join (dim² additions) costs little beside the ssyrk (rows · dim² / 2 multiply-adds).
constexpr int64_t kSliceRows = 512;
}  // namespace

HessianAccumulator::HessianAccumulator(int64_t dim)
    : dim_(dim), xtx_(size_t(dim * dim), 0.0), abs_sum_(size_t(dim), 0.0) {
  if (dim <= 0) fail("HessianAccumulator: field 'dim' must be positive, got {}", dim);
}

void HessianAccumulator::add(std::span<const float> x) {
  if (x.size() % size_t(dim_) != 0)
    fail("HessianAccumulator: input of {} values is not a whole number of rows of {}", x.size(), dim_);
  const int64_t rows = int64_t(x.size()) / dim_;
  for (int64_t r0 = 0; r0 < rows; r0 += kChunkRows)
    add_rows(x.data() + r0 * dim_, std::min(kChunkRows, rows - r0), nullptr);
}

void HessianAccumulator::add(std::span<const float> x, std::span<const float> row_weights) {
  if (x.size() != row_weights.size() * size_t(dim_))
    fail("HessianAccumulator: field 'row_weights' has {} entries for {} values of dim {}", row_weights.size(),
         x.size(), dim_);
  for (float w : row_weights)
    if (!(w >= 0.0f) || !std::isfinite(w)) fail("HessianAccumulator: field 'row_weights' holds {}, need >= 0", w);
  const int64_t rows = int64_t(row_weights.size());
  for (int64_t r0 = 0; r0 < rows; r0 += kChunkRows)
    add_rows(x.data() + r0 * dim_, std::min(kChunkRows, rows - r0), row_weights.data() + r0);
}

void HessianAccumulator::add_rows(const float* x, int64_t rows, const float* row_weights) {
  const float* a = x;
  if (row_weights) {
    // w x xᵀ = (√w x)(√w x)ᵀ: scale the rows once, then the same ssyrk as without weights.
    scaled_.resize(size_t(rows * dim_));
    for (int64_t r = 0; r < rows; ++r) {
      const float s = std::sqrt(row_weights[r]);
      for (int64_t c = 0; c < dim_; ++c) scaled_[size_t(r * dim_ + c)] = s * x[r * dim_ + c];
      weight_sum_ += row_weights[r];
    }
    a = scaled_.data();
  } else {
    weight_sum_ += double(rows);
  }
  tokens_ += rows;
  // Fixed slices of the rows, each a single-threaded ssyrk into an fp32 partial, joined to the
  // double sums in slice order: the same sums on any number of threads, and whether or not the
  // caller is itself one thread of a parallel region (the model runs experts side by side).
  // OpenBLAS's own threading of one ssyrk synchronises its threads inside the call, which on
  // 2 cores shared with other jobs made it several times slower than one thread.
  const int64_t slices = ceil_div(rows, kSliceRows);
  const int threads = can_fork() ? int(std::min<int64_t>(slices, omp_get_max_threads())) : 1;
  partials_.resize(size_t(threads));
  const int n = int(dim_);
  const auto fill = [&](int64_t slice, Partial& p) {
    const int64_t r0 = slice * kSliceRows, r1 = std::min(rows, r0 + kSliceRows);
    p.gram.resize(size_t(dim_ * dim_));
    p.abs_sum.assign(size_t(dim_), 0.0);
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, n, int(r1 - r0), 1.0f, a + r0 * dim_, n, 0.0f,
                p.gram.data(), n);
    for (int64_t r = r0; r < r1; ++r) {
      const double w = row_weights ? row_weights[r] : 1.0;
      for (int64_t c = 0; c < dim_; ++c) p.abs_sum[size_t(c)] += w * std::fabs(x[r * dim_ + c]);
    }
  };
  const auto join = [&](const Partial& p) {
    for (int64_t i = 0; i < dim_; ++i)
      for (int64_t j = i; j < dim_; ++j) xtx_[size_t(i * dim_ + j)] += p.gram[size_t(i * dim_ + j)];
    for (int64_t c = 0; c < dim_; ++c) abs_sum_[size_t(c)] += p.abs_sum[size_t(c)];
  };
  if (threads == 1) {
    for (int64_t slice = 0; slice < slices; ++slice) {
      fill(slice, partials_[0]);
      join(partials_[0]);
    }
    return;
  }
#pragma omp parallel for ordered schedule(static, 1) num_threads(threads)
  for (int64_t slice = 0; slice < slices; ++slice) {
    Partial& p = partials_[size_t(omp_get_thread_num())];
    fill(slice, p);
#pragma omp ordered
    join(p);
  }
}

void HessianAccumulator::merge(const HessianAccumulator& other) {
  if (other.dim_ != dim_) fail("HessianAccumulator: cannot merge dim {} into dim {}", other.dim_, dim_);
  for (size_t i = 0; i < xtx_.size(); ++i) xtx_[i] += other.xtx_[i];
  for (size_t i = 0; i < abs_sum_.size(); ++i) abs_sum_[i] += other.abs_sum_[i];
  tokens_ += other.tokens_;
  weight_sum_ += other.weight_sum_;
}

Tensor HessianAccumulator::hessian() const {
  Tensor h({dim_, dim_});
  if (weight_sum_ <= 0.0) return h;
  const double f = 2.0 / weight_sum_;
  for (int64_t i = 0; i < dim_; ++i)
    for (int64_t j = i; j < dim_; ++j) {
      const float v = float(f * xtx_[size_t(i * dim_ + j)]);
      h.data[size_t(i * dim_ + j)] = v;
      h.data[size_t(j * dim_ + i)] = v;
    }
  return h;
}

std::vector<float> HessianAccumulator::mean_abs() const {
  std::vector<float> m(size_t(dim_), 0.0f);
  if (weight_sum_ <= 0.0) return m;
  for (int64_t c = 0; c < dim_; ++c) m[size_t(c)] = float(abs_sum_[size_t(c)] / weight_sum_);
  return m;
}

double hessian_loss(std::span<const float> delta, const Tensor& h) {
  const int64_t n = h.cols();
  MOEQ_ASSERT(h.rank() == 2 && h.rows() == n && delta.size() % size_t(n) == 0);
  const int64_t rows = int64_t(delta.size()) / n;
  // ½ Σ_r δ_r H δ_rᵀ = ½ ⟨H, δᵀδ⟩: one ssyrk (half the multiply-adds of δ·H) and an n² dot.
  std::vector<float> gram(size_t(n * n));
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, int(n), int(rows), 1.0f, delta.data(), int(n), 0.0f,
              gram.data(), int(n));
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float* hi = h.row(i);
    const float* gi = gram.data() + i * n;
    double off = 0.0;
    for (int64_t j = i + 1; j < n; ++j) off += double(hi[j]) * double(gi[j]);
    sum += double(hi[i]) * double(gi[i]) + 2.0 * off;
  }
  return 0.5 * sum;
}

}  // namespace moeq
