// Independent references for the quantization-algorithm tests: calibration inputs with
// correlated channels and outliers, RTN written straight from shared/anchors/rtn_torch.md
// and qtensor.h (deliberately not through quant/algo/group_params.h, so that it checks it), dequantization
// straight from the QuantizedMatrix contract, and the output error ‖(W − Ŵ) Xᵀ‖² in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/tensor.h"
#include "quant/formats/qtensor.h"

namespace moeq::testing {

// rows × dim inputs x = z·M + shared low-rank factors, with `outliers` channels scaled ×25
// (as LLM activations have: a few channels far larger than the rest). Deterministic per seed.
inline Tensor correlated_inputs(int64_t rows, int64_t dim, int outliers, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t rank = 4;
  std::vector<float> basis(size_t(rank * dim));
  for (float& v : basis) v = normal(rng);
  Tensor x({rows, dim});
  for (int64_t r = 0; r < rows; ++r) {
    float f[rank];
    for (float& v : f) v = normal(rng);
    for (int64_t c = 0; c < dim; ++c) {
      float v = 0.5f * normal(rng);
      for (int64_t k = 0; k < rank; ++k) v += f[k] * basis[size_t(k * dim + c)];
      x.data[size_t(r * dim + c)] = c < outliers ? 25.0f * v : v;
    }
  }
  return x;
}

inline Tensor random_matrix(int64_t rows, int64_t cols, uint32_t seed, float sd = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sd);
  Tensor w({rows, cols});
  for (float& v : w.data) v = normal(rng);
  return w;
}

// RTN per rtn_torch.md, with the asymmetric range widened to contain 0 as qtensor.h's
// zeros-in-[0, 2^b) rule requires: groups of g consecutive columns (g = 0: whole row). Returns ŵ and
// fills codes (stored as in QuantizedMatrix: symmetric codes offset by 2^(b−1)).
inline Tensor reference_rtn(const Tensor& w, const QuantSpec& spec, std::vector<uint8_t>* codes = nullptr) {
  const int64_t rows = w.rows(), cols = w.cols();
  const int64_t g = spec.group_size == 0 ? cols : spec.group_size;
  Tensor out({rows, cols});
  if (codes) codes->assign(size_t(rows * cols), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c0 = 0; c0 < cols; c0 += g) {
      const float* x = w.row(r) + c0;
      const int64_t n = std::min(g, cols - c0);
      float lo = 0.0f, hi = 0.0f, amax = 0.0f;
      for (int64_t i = 0; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
        amax = std::max(amax, std::fabs(x[i]));
      }
      for (int64_t i = 0; i < n; ++i) {
        float q, deq;
        if (spec.symmetric) {
          const float qmax = float((1 << (spec.bits - 1)) - 1);
          const float scale = std::max(amax / qmax, 1e-8f);
          q = std::clamp(std::nearbyint(x[i] / scale), -qmax - 1.0f, qmax);
          deq = q * scale;
          q += float(1 << (spec.bits - 1));
        } else {
          const float qmax = float((1 << spec.bits) - 1);
          const float scale = std::max((hi - lo) / qmax, 1e-8f);
          const float zero = std::nearbyint(-lo / scale);
          q = std::clamp(std::nearbyint(x[i] / scale) + zero, 0.0f, qmax);
          deq = (q - zero) * scale;
        }
        out.data[size_t(r * cols + c0 + i)] = deq;
        if (codes) (*codes)[size_t(r * cols + c0 + i)] = uint8_t(q);
      }
    }
  return out;
}

// ŵ[r][c] = (codes − zeros[r, g_idx[c]]) · scales[r, g_idx[c]], as qtensor.h defines it.
inline Tensor reference_dequantize(const QuantizedMatrix& q) {
  Tensor out({q.rows, q.cols});
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c) {
      const size_t g = size_t(r * q.n_groups + q.g_idx[size_t(c)]);
      out.data[size_t(r * q.cols + c)] = (float(q.codes[size_t(r * q.cols + c)]) - q.zeros[g]) * q.scales[g];
    }
  return out;
}

// Σ over calibration rows and outputs of ((W − Ŵ) x)², in double.
inline double output_error(const Tensor& w, const Tensor& w_hat, const Tensor& x) {
  const int64_t rows = w.rows(), cols = w.cols();
  std::vector<double> delta(size_t(rows * cols));
  for (size_t i = 0; i < delta.size(); ++i) delta[i] = double(w.data[i]) - double(w_hat.data[i]);
  double sum = 0.0;
  for (int64_t n = 0; n < x.rows(); ++n)
    for (int64_t r = 0; r < rows; ++r) {
      double y = 0.0;
      for (int64_t c = 0; c < cols; ++c) y += delta[size_t(r * cols + c)] * x.data[size_t(n * cols + c)];
      sum += y * y;
    }
  return sum;
}

// 2/N Xᵀ X in double, the GPTQ Hessian computed the obvious way.
inline std::vector<double> naive_hessian(const Tensor& x) {
  const int64_t n = x.rows(), d = x.cols();
  std::vector<double> h(size_t(d * d), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j) h[size_t(i * d + j)] += double(x.data[size_t(r * d + i)]) * x.data[size_t(r * d + j)];
  for (double& v : h) v *= 2.0 / double(n);
  return h;
}

}  // namespace moeq::testing
