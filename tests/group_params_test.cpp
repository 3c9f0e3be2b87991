#include "quant/algo/group_params.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace moeq {
namespace {

TEST(GroupParams, HandComputedAsymmetricSymmetricAndAllPositive) {
  QuantSpec asym2{QuantFormat::Int, 2, 4, false};
  // min −1, max 2: scale (2 − (−1)) / 3 = 1, zero = round(1) = 1. 0.5 rounds half-to-even to 0.
  const float w[] = {-1.0f, 0.0f, 0.5f, 2.0f};
  GroupParams p = compute_group_params(w, asym2);
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero, 1.0f);
  const int expected[] = {0, 1, 1, 3};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(quantize_code(w[i], p, max_code(asym2)), expected[i]) << i;

  QuantSpec sym3{QuantFormat::Int, 3, 4, true};
  // absmax 3, qmax 3: scale 1, zero 4; 1.5 → 2 and 2.5 → 2 (half to even), −3 → −3.
  const float v[] = {-3.0f, 1.5f, 0.5f, 2.5f};
  p = compute_group_params(v, sym3);
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero, 4.0f);
  const int expected_sym[] = {1, 6, 4, 6};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(quantize_code(v[i], p, max_code(sym3)), expected_sym[i]) << i;

  // One-signed groups: [min, max] widened to contain 0. All positive {1, 2}: range [0, 2],
  // scale 2/3, zero 0 (the anchor's bare formula would give zero = round(−1 / (1/3)) = −3);
  // 1 → round(1.5) = 2, 2 → 3. All negative {−2, −1}: scale 2/3, zero round(3) = 3 = qmax.
  const float pos[] = {1.0f, 2.0f};
  p = compute_group_params(pos, asym2);
  EXPECT_EQ(p.scale, 2.0f / 3.0f);
  EXPECT_EQ(p.zero, 0.0f);
  EXPECT_EQ(quantize_code(1.0f, p, 3), 2);
  EXPECT_EQ(quantize_code(2.0f, p, 3), 3);
  const float neg[] = {-2.0f, -1.0f};
  p = compute_group_params(neg, asym2);
  EXPECT_EQ(p.zero, 3.0f);
  EXPECT_EQ(quantize_code(-2.0f, p, 3), 0);
  EXPECT_NEAR(dequantize_code(quantize_code(-2.0f, p, 3), p), -2.0f, 1e-6f);

  const float zeros[] = {0.0f, 0.0f};
  EXPECT_EQ(compute_group_params(zeros, asym2).scale, 1e-8f);
}

double squared_error(std::span<const float> w, GroupParams p, const QuantSpec& spec) {
  double e = 0;
  for (float x : w) e += std::pow(double(x) - dequantize_code(quantize_code(x, p, max_code(spec)), p), 2);
  return e;
}

// The range search equals a brute force over the same shrink factors, never loses to min/max,
// and clips a lone outlier so that the other weights get finer steps.
TEST(GroupParams, RangeSearchFindsTheLeastSquaredErrorShrink) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(128);
  for (float& x : w) x = normal(rng);
  w[17] = 9.0f;  // an outlier
  for (const char* text : {"int4 g128 asym", "int3 g128 sym", "int2 g128 asym"}) {
    const QuantSpec spec = parse_quant_spec(text);
    const GroupParams plain = compute_group_params(w, spec), searched = search_group_params(w, spec, {});
    double best = squared_error(w, plain, spec);
    for (int i = 1; i < 80; ++i) {
      const float p = 1.0f - float(i) / 100.0f;
      std::vector<float> shrunk = {p * *std::min_element(w.begin(), w.end()), p * *std::max_element(w.begin(), w.end())};
      best = std::min(best, squared_error(w, compute_group_params(shrunk, spec), spec));
    }
    EXPECT_DOUBLE_EQ(squared_error(w, searched, spec), best) << text;
    EXPECT_LT(searched.scale, plain.scale) << text;
    EXPECT_LT(squared_error(w, searched, spec), squared_error(w, plain, spec)) << text;
  }
}

TEST(GroupParams, RoundHalfEvenMatchesNearbyint) {
  std::vector<float> xs = {0x1p22f - 0.5f, 0x1p22f, 0x1p22f + 0.5f, 0x1p23f - 0.5f, 0x1p23f, 3e7f, 1e9f, -0.0f};
  for (int k = -20000; k <= 20000; ++k) xs.push_back(float(k) * 0.5f);  // every tie up to ±10000
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> wide(-9e6f, 9e6f), narrow(-40.0f, 40.0f);
  for (int i = 0; i < 20000; ++i) xs.push_back(i % 2 ? wide(rng) : narrow(rng));
  for (float x : xs) {
    ASSERT_EQ(round_half_even(x), std::nearbyint(x)) << x;
    ASSERT_EQ(round_half_even(-x), std::nearbyint(-x)) << -x;
  }
}

}  // namespace
}  // namespace moeq
