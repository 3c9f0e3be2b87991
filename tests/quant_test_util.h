// Seeded Gaussian data and a double-precision reference Hessian for the quantization tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "core/tensor.h"

namespace moeq::testing {

inline std::vector<float> normal_values(int64_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// H = 2 Σ w_t x_t x_tᵀ / Σ w_t over the rows of x ([rows, d]; no weights: all 1), in double.
inline Tensor hessian_of(const std::vector<double>& x, int64_t d, const std::vector<double>& weights = {}) {
  const int64_t n = int64_t(x.size()) / d;
  auto weight = [&](int64_t t) { return weights.empty() ? 1.0 : weights[size_t(t)]; };
  double total = 0;
  for (int64_t t = 0; t < n; ++t) total += weight(t);
  Tensor h({d, d});
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) {
      double sum = 0;
      for (int64_t t = 0; t < n; ++t) sum += weight(t) * x[size_t(t * d + i)] * x[size_t(t * d + j)];
      h.data[size_t(i * d + j)] = float(2.0 * sum / total);
    }
  return h;
}

}  // namespace moeq::testing
