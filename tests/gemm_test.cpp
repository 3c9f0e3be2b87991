// The AVX-512 gemm against a double-precision reference, over shapes that exercise every row
// and column tail, k blocking, bf16 and f16 widening and the causal shortcuts.
#include <cmath>
#include <random>

#include "kernels/gemm.h"
#include "test_util.h"

namespace moeq {
namespace {

struct Case {
  int64_t m, n, k;
};

std::vector<float> random_vec(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// C = alpha · A · op(B) in double; nt: B is [n, k], else [k, n].
std::vector<double> reference(const Case& s, const std::vector<float>& a, const std::vector<float>& b, bool nt,
                              float alpha) {
  std::vector<double> c(size_t(s.m * s.n), 0.0);
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      double acc = 0.0;
      for (int64_t kk = 0; kk < s.k; ++kk)
        acc += double(a[size_t(i * s.k + kk)]) * double(nt ? b[size_t(j * s.k + kk)] : b[size_t(kk * s.n + j)]);
      c[size_t(i * s.n + j)] = alpha * acc;
    }
  return c;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, const Case& s, int64_t causal,
                  bool nt) {
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      if (nt && causal >= 0 && j > i + causal) continue;  // unspecified
      const double w = want[size_t(i * s.n + j)];
      ASSERT_NEAR(got[size_t(i * s.n + j)], w, 1e-4 * (1.0 + std::sqrt(double(s.k))))
          << s.m << "x" << s.n << "x" << s.k << " at " << i << "," << j;
    }
}

const Case kCases[] = {{1, 1, 1}, {5, 7, 3}, {12, 32, 64}, {13, 33, 100}, {25, 70, 600}, {37, 64, 513}, {100, 40, 256}};

std::vector<float> gemm_nt(const Case& s, const std::vector<float>& a, DType dt, const void* b) {
  std::vector<float> c(size_t(s.m * s.n), -7.0f);
  gemm({.m = s.m, .n = s.n, .k = s.k, .a = a.data(), .lda = s.k, .b = {GemmB::Layout::NT, dt, b, s.k}, .c = c.data(),
        .ldc = s.n, .alpha = 0.5f});
  return c;
}

// F32 against the reference; BF16 and F16 weights widen exactly, so each gives the bits of F32
// on the same values.
TEST(Gemm, NtF32MatchesReferenceAndSixteenBitDtypesMatchF32) {
  std::mt19937 rng(1);
  for (const Case& s : kCases) {
    const auto a = random_vec(size_t(s.m * s.k), rng);
    const auto b = random_vec(size_t(s.n * s.k), rng);
    expect_close(gemm_nt(s, a, DType::F32, b.data()), reference(s, a, b, true, 0.5f), s, -1, true);
    for (DType dt : {DType::BF16, DType::F16}) {
      std::vector<uint16_t> stored(b.size());
      std::vector<float> widened(b.size());
      for (size_t i = 0; i < b.size(); ++i) {
        stored[i] = dt == DType::BF16 ? f32_to_bf16(b[i]) : f32_to_f16(b[i]);
        widened[i] = dt == DType::BF16 ? bf16_to_f32(stored[i]) : f16_to_f32(stored[i]);
      }
      EXPECT_EQ(gemm_nt(s, a, dt, stored.data()), gemm_nt(s, a, DType::F32, widened.data()))
          << dtype_name(dt) << " " << s.m << "x" << s.n << "x" << s.k;
    }
  }
}

TEST(Gemm, NnMatchesReference) {
  std::mt19937 rng(2);
  for (const Case& s : kCases) {
    auto a = random_vec(size_t(s.m * s.k), rng);
    auto b = random_vec(size_t(s.k * s.n), rng);
    std::vector<float> c(size_t(s.m * s.n));
    gemm({.m = s.m, .n = s.n, .k = s.k, .a = a.data(), .lda = s.k, .b = {GemmB::Layout::NN, DType::F32, b.data(), s.n},
          .c = c.data(), .ldc = s.n});
    expect_close(c, reference(s, a, b, false, 1.0f), s, -1, false);
  }
}

TEST(Gemm, CausalSkipsOnlyMaskedWork) {
  std::mt19937 rng(3);
  for (int64_t past : {0, 5, 40}) {
    const Case s{50, 50 + past, 64};
    // Scores: row i sees columns ≤ i + past.
    auto q = random_vec(size_t(s.m * s.k), rng);
    auto kmat = random_vec(size_t(s.n * s.k), rng);
    std::vector<float> scores(size_t(s.m * s.n));
    gemm({.m = s.m, .n = s.n, .k = s.k, .a = q.data(), .lda = s.k, .b = {GemmB::Layout::NT, DType::F32, kmat.data(), s.k},
          .c = scores.data(), .ldc = s.n, .causal = past});
    expect_close(scores, reference(s, q, kmat, true, 1.0f), s, past, true);
    // Weights · values: zero beyond the visible columns.
    const Case pv{s.m, 24, s.n};
    auto p = random_vec(size_t(pv.m * pv.k), rng);
    for (int64_t i = 0; i < pv.m; ++i)
      for (int64_t j = i + past + 1; j < pv.k; ++j) p[size_t(i * pv.k + j)] = 0.0f;
    auto v = random_vec(size_t(pv.k * pv.n), rng);
    std::vector<float> out(size_t(pv.m * pv.n));
    gemm({.m = pv.m, .n = pv.n, .k = pv.k, .a = p.data(), .lda = pv.k,
          .b = {GemmB::Layout::NN, DType::F32, v.data(), pv.n}, .c = out.data(), .ldc = pv.n, .causal = past});
    expect_close(out, reference(pv, p, v, false, 1.0f), pv, -1, false);
  }
}

}  // namespace
}  // namespace moeq
