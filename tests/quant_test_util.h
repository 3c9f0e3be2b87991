// Seeded Gaussian data for the quantization tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace moeq::testing {

inline std::vector<float> normal_values(int64_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace moeq::testing
