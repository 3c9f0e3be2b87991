#include "kernels/ops.h"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// flags inside their own headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace moeq {
namespace {

#define MOEQ_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

const bool kAvx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");

// exp(x) for 16 lanes: x = n·ln2 + r, |r| ≤ ln2/2, exp(r) by its degree-7 Taylor polynomial
// (relative error < 2e-8, as libm's expf to an ulp or two), scaled by 2^n. Underflow (x < −87.3,
// including −inf) gives 0.
MOEQ_AVX512 inline __m512 exp16(__m512 x) {
  const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
  x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  return _mm512_maskz_mov_ps(live, _mm512_scalef_ps(p, n));
}

MOEQ_AVX512 inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

// Σ exp(x[i] − shift), also stored to out[i] when out is not null.
MOEQ_AVX512 float exp_sum_avx512(const float* x, int64_t n, float shift, float* out) {
  __m512 sum = _mm512_setzero_ps();
  const __m512 s = _mm512_set1_ps(shift);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s)));
    sum = _mm512_add_ps(sum, e);
    if (out) _mm512_mask_storeu_ps(out + i, m, e);
  }
  return _mm512_reduce_add_ps(sum);
}

MOEQ_AVX512 void silu_mul_avx512(float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 sig = _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(_mm512_mul_ps(g, sig), _mm512_maskz_loadu_ps(m, up + i)));
  }
}

float exp_sum(const float* x, int64_t n, float shift, float* out) {
  if (kAvx512) return exp_sum_avx512(x, n, shift, out);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - shift);
    sum += e;
    if (out) out[i] = e;
  }
  return sum;
}

}  // namespace

void rms_norm(float* x, int64_t rows, int64_t dim, const float* weight, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * dim;
    float ss = 0.0f;
    for (int64_t i = 0; i < dim; ++i) ss += v[i] * v[i];
    const float inv = 1.0f / std::sqrt(ss / float(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) v[i] = weight[i] * (v[i] * inv);
  }
}

void layer_norm(float* x, int64_t rows, int64_t dim, const float* weight, const float* bias, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * dim;
    float mean = 0.0f;
    for (int64_t i = 0; i < dim; ++i) mean += v[i];
    mean /= float(dim);
    float var = 0.0f;
    for (int64_t i = 0; i < dim; ++i) var += (v[i] - mean) * (v[i] - mean);
    const float inv = 1.0f / std::sqrt(var / float(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) v[i] = (v[i] - mean) * inv * weight[i] + bias[i];
  }
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void silu_mul(float* gate, const float* up, int64_t n) {
  if (kAvx512) return silu_mul_avx512(gate, up, n);
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

void softmax(float* x, int64_t n) {
  const float inv = 1.0f / exp_sum(x, n, *std::max_element(x, x + n), x);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float log_sum_exp(const float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  return mx + std::log(exp_sum(x, n, mx, nullptr));
}

void rope(float* x, int64_t dim, const float* cos, const float* sin, bool interleaved) {
  const int64_t half = dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float c = cos[i], s = sin[i];
    float* a = interleaved ? x + 2 * i : x + i;
    float* b = interleaved ? x + 2 * i + 1 : x + i + half;
    const float x0 = *a, x1 = *b;
    *a = x0 * c - x1 * s;
    *b = x1 * c + x0 * s;
  }
}

}  // namespace moeq
