#include "calib/hessian.h"

#include <omp.h>

#include <cmath>

#include <gtest/gtest.h>

#include "algo_test_util.h"
#include "calib/input_recorder.h"
#include "kernels/dense_linear.h"

namespace moeq {
namespace {

using testing::correlated_inputs;
using testing::naive_hessian;

std::span<const float> rows_of(const Tensor& x, int64_t r0, int64_t r1) {
  return std::span<const float>(x.data).subspan(size_t(r0 * x.cols()), size_t((r1 - r0) * x.cols()));
}

void expect_close(const Tensor& h, const std::vector<double>& ref, double rel) {
  double scale = 0.0;
  for (double v : ref) scale = std::max(scale, std::fabs(v));
  ASSERT_EQ(h.data.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(h.data[i], ref[i], rel * scale) << i;
}

// Uneven batches crossing the 4096-row chunk and the per-thread split, against 2/N XᵀX.
TEST(Hessian, MatchesNaiveTwoOverNXtX) {
  const Tensor x = correlated_inputs(6000, 48, 3, 1);
  HessianAccumulator acc(48);
  acc.add(rows_of(x, 0, 37));
  acc.add(rows_of(x, 37, 5037));
  acc.add(rows_of(x, 5037, 6000));
  EXPECT_EQ(acc.tokens(), 6000);
  EXPECT_EQ(acc.weight_sum(), 6000.0);
  const std::vector<double> ref = naive_hessian(x);
  expect_close(acc.hessian(), ref, 1e-5);

  std::vector<double> mean_abs(48, 0.0);
  for (int64_t r = 0; r < 6000; ++r)
    for (int c = 0; c < 48; ++c) mean_abs[size_t(c)] += std::fabs(x.data[size_t(r * 48 + c)]) / 6000.0;
  const std::vector<float> got = acc.mean_abs();
  for (int c = 0; c < 48; ++c) EXPECT_NEAR(got[size_t(c)], mean_abs[size_t(c)], 1e-5 * mean_abs[size_t(c)]);

  // Other order, other split, and via merge: the same matrix.
  HessianAccumulator a(48), b(48);
  b.add(rows_of(x, 3000, 6000));
  a.add(rows_of(x, 0, 3000));
  a.merge(b);
  EXPECT_EQ(a.tokens(), 6000);
  expect_close(a.hessian(), ref, 1e-5);

  // One accumulator per thread of an enclosing parallel region (as a pipeline filling several
  // experts' Hessians at once would): the inner split must not drop rows.
  std::vector<HessianAccumulator> halves(2, HessianAccumulator(48));
#pragma omp parallel for num_threads(2)
  for (int t = 0; t < 2; ++t) halves[size_t(t)].add(rows_of(x, t * 3000, (t + 1) * 3000));
  halves[0].merge(halves[1]);
  expect_close(halves[0].hessian(), ref, 1e-5);
}

// The sums are the same bit for bit on one thread, on two, and inside a parallel region (where
// the model's experts run side by side): quantizing gives one model whatever the machine.
TEST(Hessian, SameSumsOnAnyNumberOfThreads) {
  const Tensor x = correlated_inputs(5000, 40, 3, 2);
  std::vector<float> weights(5000);
  for (size_t r = 0; r < weights.size(); ++r) weights[r] = 0.25f + float(r % 7) / 8.0f;
  const auto sums = [&] {
    HessianAccumulator acc(40);
    acc.add(rows_of(x, 0, 1500));
    acc.add(rows_of(x, 1500, 5000), std::span(weights).subspan(1500));
    return std::pair(acc.hessian().data, acc.mean_abs());
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = sums();
  omp_set_num_threads(2);
  const auto two = sums();
  std::pair<std::vector<float>, std::vector<float>> nested;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    nested = sums();
  }
  omp_set_num_threads(threads);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, nested);
}

// Weighted rows: H = 2 Σ w x xᵀ / Σ w. A row of weight 2 counts as two copies of the row.
TEST(Hessian, RowWeights) {
  const Tensor x = correlated_inputs(900, 16, 1, 2);
  std::vector<float> weights(900);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = float(i % 3);  // 0, 1, 2
  HessianAccumulator weighted(16);
  weighted.add(x.data, weights);
  EXPECT_EQ(weighted.tokens(), 900);
  EXPECT_EQ(weighted.weight_sum(), 900.0);

  Tensor copies({900, 16});  // row i repeated weights[i] times
  int64_t n = 0;
  for (int64_t r = 0; r < 900; ++r)
    for (int k = 0; k < int(weights[size_t(r)]); ++k, ++n)
      std::copy_n(x.row(r), 16, copies.row(n));
  copies.shape[0] = n;
  copies.data.resize(size_t(n * 16));
  expect_close(weighted.hessian(), naive_hessian(copies), 1e-5);

  EXPECT_THROW(weighted.add(x.data, std::vector<float>(899, 1.0f)), Error);
  EXPECT_THROW(weighted.add(rows_of(x, 0, 1), std::vector<float>{-1.0f}), Error);
  EXPECT_THROW(weighted.add(std::vector<float>(15, 1.0f)), Error);
}

// A recorder keeps the Hessian of what went through; record_only keeps the same one without
// running the wrapped op (its output is zeros), for passes that need only a linear's input.
TEST(Hessian, RecorderRecordsTheSameWithOrWithoutRunningItsOp) {
  const Tensor x = correlated_inputs(300, 16, 1, 4);
  Tensor w({8, 16});
  for (size_t i = 0; i < w.data.size(); ++i) w.data[i] = float(i % 7) - 3.0f;
  const std::vector<float> weights(300, 0.5f);
  const RowWeightsScope scope(weights);
  InputRecorder through(std::make_unique<DenseLinear>(w), {.weight_by_routing = true});
  InputRecorder record_only(std::make_unique<DenseLinear>(w), {.weight_by_routing = true, .record_only = true});
  std::vector<float> y_through(300 * 8), y_record(300 * 8, 1.0f), y_ref(300 * 8);
  through.forward(x.ptr(), 300, y_through.data());
  record_only.forward(x.ptr(), 300, y_record.data());
  DenseLinear(w).forward(x.ptr(), 300, y_ref.data());

  EXPECT_EQ(y_through, y_ref);
  for (float v : y_record) ASSERT_EQ(v, 0.0f);
  EXPECT_EQ(record_only.stats().weight_sum(), 150.0);
  EXPECT_EQ(record_only.stats().hessian().data, through.stats().hessian().data);
  expect_close(through.stats().hessian(), naive_hessian(x), 1e-5);
}

TEST(Hessian, EmptyAccumulatorGivesZeros) {
  HessianAccumulator acc(8);
  for (float v : acc.hessian().data) EXPECT_EQ(v, 0.0f);
  for (float v : acc.mean_abs()) EXPECT_EQ(v, 0.0f);
  EXPECT_THROW(HessianAccumulator(0), Error);
}

// ½ Σ_r δ_r H δ_rᵀ with H = 2/N XᵀX is the mean squared output error of δ over the rows.
TEST(Hessian, LossIsMeanOutputError) {
  const Tensor x = correlated_inputs(700, 24, 2, 3);
  HessianAccumulator acc(24);
  acc.add(x.data);
  const Tensor delta = testing::random_matrix(5, 24, 4, 0.1f);
  const double expected = testing::output_error(delta, Tensor({5, 24}), x) / 700.0;
  EXPECT_NEAR(hessian_loss(delta.data, acc.hessian()), expected, 1e-5 * expected);
}

}  // namespace
}  // namespace moeq
