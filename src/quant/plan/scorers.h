// Scores that rank weight matrices or MoE blocks for higher bits, and the deterministic ways
// strategies pick the top or a seeded random subset.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace moeq::plan {

// Outlier score of a linear weight W [rows = out, cols = in], row-major:
//   max over input columns j of ( max_i |W_ij| / mean_i |W_ij| ).
// A column that is all zeros has no outliers and scores 0.
double outlier_score(std::span<const float> weight, int64_t rows, int64_t cols);

// How much an MoE block changes the hidden state: mean over tokens t of 1 − cos(x_t, y_t), for
// the block input x and output y, both [tokens, hidden] row-major. Tokens where either vector
// is zero are skipped (their cosine is undefined); none left gives 0.
double block_change_score(std::span<const float> input, std::span<const float> output, int64_t hidden);

// The n highest scores' indices, highest first; ties go to the lower index.
std::vector<size_t> top_indices(std::span<const double> scores, size_t n);

// A reproducible stream of random numbers: splitmix64, so a seed picks the same subsets with
// every compiler and standard library (std::shuffle and the std distributions do not).
class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  uint64_t next();
  uint64_t below(uint64_t bound);  // uniform in [0, bound), bound > 0
  // n distinct indices of [0, count), uniformly, in ascending order.
  std::vector<size_t> choose(size_t count, size_t n);

 private:
  uint64_t state_;
};

}  // namespace moeq::plan
