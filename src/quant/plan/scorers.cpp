#include "quant/plan/scorers.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace moeq::plan {

double outlier_score(std::span<const float> weight, int64_t rows, int64_t cols) {
  MOEQ_ASSERT(int64_t(weight.size()) == rows * cols);
  std::vector<double> max_abs(size_t(cols), 0.0), sum_abs(size_t(cols), 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = weight.data() + i * cols;
    for (int64_t j = 0; j < cols; ++j) {
      double a = std::fabs(double(row[j]));
      max_abs[size_t(j)] = std::max(max_abs[size_t(j)], a);
      sum_abs[size_t(j)] += a;
    }
  }
  double score = 0;
  for (size_t j = 0; j < size_t(cols); ++j)
    if (sum_abs[j] > 0) score = std::max(score, max_abs[j] / (sum_abs[j] / double(rows)));
  return score;
}

double block_change_score(std::span<const float> input, std::span<const float> output, int64_t hidden) {
  MOEQ_ASSERT(input.size() == output.size() && hidden > 0 && input.size() % size_t(hidden) == 0);
  double total = 0;
  int64_t counted = 0;
  for (size_t t = 0; t < input.size() / size_t(hidden); ++t) {
    double dot = 0, xx = 0, yy = 0;
    for (size_t k = t * size_t(hidden); k < (t + 1) * size_t(hidden); ++k) {
      dot += double(input[k]) * output[k];
      xx += double(input[k]) * input[k];
      yy += double(output[k]) * output[k];
    }
    if (xx == 0 || yy == 0) continue;
    total += 1.0 - dot / std::sqrt(xx * yy);
    ++counted;
  }
  return counted ? total / double(counted) : 0.0;
}

std::vector<size_t> top_indices(std::span<const double> scores, size_t n) {
  MOEQ_ASSERT(n <= scores.size());
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  order.resize(n);
  return order;
}

uint64_t SeededRandom::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t SeededRandom::below(uint64_t bound) {
  MOEQ_ASSERT(bound > 0);
  // Reject the top partial copy of [0, bound) so every value is equally likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do x = next();
  while (x >= limit);
  return x % bound;
}

std::vector<size_t> SeededRandom::choose(size_t count, size_t n) {
  MOEQ_ASSERT(n <= count);
  std::vector<size_t> pool(count);
  std::iota(pool.begin(), pool.end(), size_t{0});
  for (size_t i = 0; i < n; ++i) std::swap(pool[i], pool[i + below(count - i)]);  // partial Fisher-Yates
  pool.resize(n);
  std::sort(pool.begin(), pool.end());
  return pool;
}

}  // namespace moeq::plan
