#include "kernels/gemv.h"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// flags inside their own headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <omp.h>

#include <algorithm>

#include "core/dtype.h"
#include "core/int_math.h"
#include "kernels/parallel.h"
#include "kernels/widen.h"

namespace moeq {
namespace {

constexpr int64_t kMaxTokens = 4;

// Portable reference: one weight element widened at a time.
template <DType D>
void gemv_rows_ref(const GemvArgs& a, const StoredWeight<D>* w, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t = 0; t < a.n; ++t) {
      float acc = 0.0f;
      for (int64_t c = 0; c < a.cols; ++c) acc += a.x[t * a.cols + c] * widen<D>(w[r * a.cols + c]);
      a.y[t * a.rows + r] = acc;
    }
}

// AVX-512: each weight row is read once and multiplied into every token; two accumulators per
// token hide the FMA latency when there is a single token.
template <DType D>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void gemv_rows_avx512(const GemvArgs& a, const StoredWeight<D>* w,
                                                                   int64_t r0, int64_t r1) {
  const int64_t cols = a.cols;
  for (int64_t r = r0; r < r1; ++r) {
    const StoredWeight<D>* wr = w + r * cols;
    __m512 acc[kMaxTokens][2];
    for (int64_t t = 0; t < a.n; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
      const __m512 w0 = widen16<D>(wr + c, 0xffff), w1 = widen16<D>(wr + c + 16, 0xffff);
      for (int64_t t = 0; t < a.n; ++t) {
        const float* xt = a.x + t * cols + c;
        acc[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xt), acc[t][0]);
        acc[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xt + 16), acc[t][1]);
      }
    }
    for (; c < cols; c += 16) {
      const __mmask16 m = cols - c >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - c)) - 1);
      const __m512 w0 = widen16<D>(wr + c, m);
      for (int64_t t = 0; t < a.n; ++t)
        acc[t][0] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, a.x + t * cols + c), acc[t][0]);
    }
    for (int64_t t = 0; t < a.n; ++t) a.y[t * a.rows + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]));
  }
}

template <DType D>
void gemv(const GemvArgs& a, const StoredWeight<D>* w) {
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  if (a.n > kMaxTokens || !avx512) {
    gemv_rows_ref<D>(a, w, 0, a.rows);
    return;
  }
  // A fork/join costs a few microseconds on an idle machine: worth it from ~64K weights (a decode
  // step of the small trained models runs ~90 such matrices). One contiguous slice per thread
  // (run one after another when not forked: the same rows, the same sums).
  const int64_t parts = omp_get_max_threads(), chunk = ceil_div(a.rows, parts);
  parallel_for(parts, a.rows * a.cols >= (1 << 16), Schedule::Static, [&](int64_t part) {
    const int64_t r0 = std::min(a.rows, part * chunk), r1 = std::min(a.rows, r0 + chunk);
    gemv_rows_avx512<D>(a, w, r0, r1);
  });
}

}  // namespace

void gemv_f32(const GemvArgs& a, const float* w) { gemv<DType::F32>(a, w); }
void gemv_bf16(const GemvArgs& a, const uint16_t* w) { gemv<DType::BF16>(a, w); }
void gemv_f16(const GemvArgs& a, const uint16_t* w) { gemv<DType::F16>(a, w); }

}  // namespace moeq
