#include "kernels/gemm.h"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// flags inside their own headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "core/int_math.h"
#include "kernels/parallel.h"
#include "kernels/widen.h"

namespace moeq {
namespace {

constexpr int64_t kNr = kGemmPanelCols;  // two zmm
constexpr int64_t kMr = 12;   // rows per micro-tile: 24 accumulators
constexpr int64_t kKc = 512;  // k per packed block (64 KiB of panel)

#define MOEQ_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

// One column of a packed panel: w's kc stored weights widened into dst[kk · 32].
template <DType D>
MOEQ_AVX512 void pack_column(const StoredWeight<D>* w, int64_t kc, float* dst) {
  alignas(64) float wide[16];
  for (int64_t kk = 0; kk < kc; kk += 16) {
    const int64_t len = std::min<int64_t>(16, kc - kk);
    _mm512_store_ps(wide, widen16<D>(w + kk, __mmask16((1u << len) - 1)));
    for (int64_t i = 0; i < len; ++i) dst[(kk + i) * kNr] = wide[i];
  }
}

// Widens and packs B[k0..k0+kc) × [j0..j0+cols) into p[kk·32 + jj], zero-padding to 32 columns.
MOEQ_AVX512 void pack_panel(const GemmB& b, int64_t k0, int64_t kc, int64_t j0, int64_t cols, float* p) {
  if (b.layout == GemmB::Layout::NN) {
    const __mmask16 m0 = __mmask16(cols >= 16 ? 0xffff : (1u << cols) - 1);
    const __mmask16 m1 = __mmask16(cols >= 32 ? 0xffff : cols > 16 ? (1u << (cols - 16)) - 1 : 0);
    const float* src = static_cast<const float*>(b.data) + k0 * b.ld + j0;
    for (int64_t kk = 0; kk < kc; ++kk, src += b.ld) {
      _mm512_storeu_ps(p + kk * kNr, _mm512_maskz_loadu_ps(m0, src));
      _mm512_storeu_ps(p + kk * kNr + 16, _mm512_maskz_loadu_ps(m1, src + 16));
    }
    return;
  }
  if (cols < kNr) std::fill_n(p, kc * kNr, 0.0f);
  const int64_t first = j0 * b.ld + k0;
  for (int64_t jj = 0; jj < cols; ++jj) {
    const int64_t at = first + jj * b.ld;
    switch (b.dtype) {
      case DType::BF16: pack_column<DType::BF16>(static_cast<const uint16_t*>(b.data) + at, kc, p + jj); break;
      case DType::F16: pack_column<DType::F16>(static_cast<const uint16_t*>(b.data) + at, kc, p + jj); break;
      default: pack_column<DType::F32>(static_cast<const float*>(b.data) + at, kc, p + jj);
    }
  }
}

// C[MR rows, 32 cols] (+)= alpha · A[MR, kc] · panel; `cols` ≤ 32 columns stored.
template <int MR>
MOEQ_AVX512 void micro(const float* a, int64_t lda, const float* p, int64_t kc, float* c, int64_t ldc, int64_t cols,
                       float alpha, bool accumulate) {
  __m512 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m512 b0 = _mm512_loadu_ps(p + kk * kNr), b1 = _mm512_loadu_ps(p + kk * kNr + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * lda + kk]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  const __mmask16 m0 = __mmask16(cols >= 16 ? 0xffff : (1u << cols) - 1);
  const __mmask16 m1 = __mmask16(cols >= 32 ? 0xffff : cols > 16 ? (1u << (cols - 16)) - 1 : 0);
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(acc[i][0], va), r1 = _mm512_mul_ps(acc[i][1], va);
    if (accumulate) {
      r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, ci));
      r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}

using MicroFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t, float, bool);

template <int... R>
constexpr auto micro_table(std::integer_sequence<int, R...>) {
  return std::array<MicroFn, sizeof...(R)>{&micro<R + 1>...};
}
constexpr auto kMicro = micro_table(std::make_integer_sequence<int, kMr>{});

// One panel of 32 columns against every row tile of A.
void panel_times_rows(const GemmArgs& g, int64_t j0, std::vector<float>& buf) {
  const int64_t cols = std::min(kNr, g.n - j0);
  for (int64_t k0 = 0; k0 < g.k; k0 += kKc) {
    const int64_t kc = std::min(kKc, g.k - k0);
    buf.resize(size_t(kc * kNr));
    pack_panel(g.b, k0, kc, j0, cols, buf.data());
    for (int64_t i0 = 0; i0 < g.m; i0 += kMr) {
      const int64_t mr = std::min(kMr, g.m - i0);
      int64_t kc_tile = kc;
      if (g.causal >= 0 && g.b.layout == GemmB::Layout::NT && j0 > i0 + mr - 1 + g.causal) continue;
      if (g.causal >= 0 && g.b.layout == GemmB::Layout::NN) {
        kc_tile = std::clamp<int64_t>(i0 + mr + g.causal - k0, 0, kc);
        if (kc_tile == 0 && k0 > 0) continue;
      }
      kMicro[size_t(mr - 1)](g.a + i0 * g.lda + k0, g.lda, buf.data(), kc_tile, g.c + i0 * g.ldc + j0, g.ldc, cols,
                             g.alpha, k0 > 0);
    }
  }
}

void gemm_blas(const GemmArgs& g) {
  const bool nt = g.b.layout == GemmB::Layout::NT;
  std::vector<float> wide;
  const float* b = static_cast<const float*>(g.b.data);
  if (g.b.dtype != DType::F32) {
    wide.resize(size_t(g.n * g.b.ld));
    convert_to_f32(g.b.dtype, static_cast<const std::byte*>(g.b.data), wide.data(), wide.size());
    b = wide.data();
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, nt ? CblasTrans : CblasNoTrans, int(g.m), int(g.n), int(g.k), g.alpha, g.a,
              int(g.lda), b, int(g.b.ld), 0.0f, g.c, int(g.ldc));
}

}  // namespace

void gemm(const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (!avx512) {
    gemm_blas(g);
    return;
  }
  const int64_t panels = ceil_div(g.n, kNr);
  // A fork/join costs microseconds on a quiet machine and far more on a busy one: only products
  // of a few million multiply-adds or more are split.
  parallel_for(panels, g.m * g.n * g.k >= (1 << 22), Schedule::Static, [&](int64_t p) {
    thread_local std::vector<float> buf;
    panel_times_rows(g, p * kNr, buf);
  });
}

}  // namespace moeq
