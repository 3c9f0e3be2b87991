// int_gemv_a8 on AVX-512 VNNI: GPTQ-packed weight codes (unsigned) times INT8 activations
// (signed) by vpdpbusd, which sums four byte products into each int32 lane. A word of 4-bit codes
// holds the codes of 8 inputs for one output; masked with 0x0F0F0F0F it gives four of them as
// bytes, shifted right by 4 first the other four (a8_slot orders the activations to match), so
// 16 outputs × 8 inputs take two ALU ops and two dot products, where the fp32 kernel converts
// and multiplies every code on its own. The activations are quantized here too, with AVX-512
// (the generic code is compiled for baseline x86-64). Its own file: only this code is compiled
// for VNNI.
#include <array>
#include <cstdint>
#include <cstring>

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's AVX-512 headers (quant_kernels_avx512.cpp)
#include <immintrin.h>

#include "kernels/cpu/quant_kernels.h"

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vnni,f16c,fma")

#include "kernels/cpu/quant_kernels_simd.h"

namespace moeq {
namespace {

// Four INT8 activations as one int32, broadcast to every lane.
inline __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi32(v);
}

// NT tokens × 16 outputs at o. Each token's dot products alternate over K = 8 / NT accumulators,
// enough independent chains to hide vpdpbusd's latency.
template <int Bits, int NT>
void a8_vector(const IntLayout& L, const int8_t* xq, const int32_t* xqsum, const float* xscale, int64_t o, float* y,
               int64_t ldy) {
  constexpr int per_byte = 8 / Bits, K = 8 / NT;
  const __m512i mask = _mm512_set1_epi32(int32_t(0x01010101u * ((1u << Bits) - 1)));
  __m512 out[NT];
  for (auto& v : out) v = _mm512_setzero_ps();
  for (int64_t g = 0; g < L.n_groups; ++g) {
    __m512i acc[NT][K];
    for (auto& row : acc)
      for (auto& v : row) v = _mm512_setzero_si512();
    for (int64_t i0 = L.group_start[size_t(g)]; i0 < L.group_start[size_t(g + 1)]; i0 += kUnitCodes) {
      const uint32_t* words = L.qweight.data() + i0 / kUnitCodes * Bits * L.out_pad + o;
      simd::static_for<Bits>([&](auto word) {  // the unit's words, 4 · per_byte inputs each
        constexpr int j = decltype(word)::value;
        const __m512i w = _mm512_loadu_si512(words + j * L.out_pad);
        simd::static_for<per_byte>([&](auto shift) {
          constexpr int m = decltype(shift)::value, k = (j * per_byte + m) % K;
          const __m512i codes = Bits == 8 ? w : _mm512_and_si512(_mm512_srli_epi32(w, m * Bits), mask);
          const int64_t slot = i0 + j * 4 * per_byte + m * 4;
          for (int t = 0; t < NT; ++t)
            acc[t][k] = _mm512_dpbusd_epi32(acc[t][k], codes, broadcast4(xq + t * L.in_pad + slot));
        });
      });
    }
    const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(L.scales.data() + g * L.out_pad + o)));
    const __m512i z = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(L.zeros.data() + g * L.out_pad + o)));
    for (int t = 0; t < NT; ++t) {
      __m512i dot = acc[t][0];
      for (int k = 1; k < K; ++k) dot = _mm512_add_epi32(dot, acc[t][k]);
      const __m512i zero_term = _mm512_mullo_epi32(z, _mm512_set1_epi32(xqsum[t * L.n_groups + g]));
      out[t] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(dot, zero_term)), out[t]);
    }
  }
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy + o, _mm512_mul_ps(out[t], _mm512_set1_ps(xscale[t])));
}

// Tokens in batches of 4, then 2, then 1, for every 16 outputs.
template <int Bits>
void a8_bits(const IntLayout& L, const int8_t* xq, const int32_t* xqsum, const float* xscale, int64_t n, int64_t o0,
             int64_t o1, float* y, int64_t ldy) {
  static_assert(kOutPad == 16);
  for (int64_t o = o0; o < o1; o += kOutPad) {
    int64_t t = 0;
    const auto run = [&]<int NT>() {
      a8_vector<Bits, NT>(L, xq + t * L.in_pad, xqsum + t * L.n_groups, xscale + t, o, y + t * ldy, ldy);
      t += NT;
    };
    while (t + 4 <= n) run.template operator()<4>();
    if (t + 2 <= n) run.template operator()<2>();
    if (t < n) run.template operator()<1>();
  }
}

// 16 consecutive inputs' codes (a whole number of words for 2, 4 and 8 bits) in a8_slot order.
template <int Bits>
inline __m128i a8_order(__m128i codes) {
  if constexpr (Bits == 8) {
    return codes;
  } else {
    alignas(16) static constexpr std::array<int8_t, 16> source = [] {
      std::array<int8_t, 16> from{};
      for (int k = 0; k < 16; ++k) from[size_t(a8_slot(Bits, k))] = int8_t(k);
      return from;
    }();
    return _mm_shuffle_epi8(codes, _mm_load_si128(reinterpret_cast<const __m128i*>(source.data())));
  }
}

// quantize_activation_codes, 16 inputs at a time: the same division, clamp and ties to even
// (vcvtps2dq rounds by MXCSR, whose default is to nearest even), so the codes agree bit for bit.
template <int Bits>
void a8_quantize_bits(const IntLayout& L, const float* x, int64_t n, int8_t* xq, int32_t* xqsum, float* xscale) {
  for (int64_t t = 0; t < n; ++t) {
    const float* row = x + t * L.in_pad;
    int8_t* codes = xq + t * L.in_pad;
    int32_t* sums = xqsum + t * L.n_groups;
    __m512 absmax = _mm512_setzero_ps();
    for (int64_t i = 0; i < L.in_pad; i += 16) absmax = _mm512_max_ps(absmax, _mm512_abs_ps(_mm512_loadu_ps(row + i)));
    xscale[t] = _mm512_reduce_max_ps(absmax) / 127.0f;
    if (xscale[t] == 0.0f) {  // x / 0 would be NaN, which the clamp below turns into −127
      std::memset(codes, 0, size_t(L.in_pad));
      std::memset(sums, 0, size_t(L.n_groups) * sizeof(int32_t));
      continue;
    }
    const __m512 scale = _mm512_set1_ps(xscale[t]), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (int64_t g = 0; g < L.n_groups; ++g) {
      __m512i sum = _mm512_setzero_si512();
      for (int64_t i = L.group_start[size_t(g)]; i < L.group_start[size_t(g + 1)]; i += 16) {
        const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(_mm512_loadu_ps(row + i), scale), lo), hi);
        const __m512i q = _mm512_cvtps_epi32(v);
        sum = _mm512_add_epi32(sum, q);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), a8_order<Bits>(_mm512_cvtepi32_epi8(q)));
      }
      sums[g] = _mm512_reduce_add_epi32(sum);
    }
  }
}

void int_a8_quantize(const IntLayout& L, const float* x, int64_t n, int8_t* xq, int32_t* xqsum, float* xscale) {
  switch (L.bits) {
    case 2: return a8_quantize_bits<2>(L, x, n, xq, xqsum, xscale);
    case 4: return a8_quantize_bits<4>(L, x, n, xq, xqsum, xscale);
    default: return a8_quantize_bits<8>(L, x, n, xq, xqsum, xscale);
  }
}

void int_gemv_a8(const IntLayout& L, const int8_t* xq, const int32_t* xqsum, const float* xscale, int64_t n,
                 int64_t o0, int64_t o1, float* y, int64_t ldy) {
  switch (L.bits) {
    case 2: return a8_bits<2>(L, xq, xqsum, xscale, n, o0, o1, y, ldy);
    case 4: return a8_bits<4>(L, xq, xqsum, xscale, n, o0, o1, y, ldy);
    default: return a8_bits<8>(L, xq, xqsum, xscale, n, o0, o1, y, ldy);
  }
}

}  // namespace

void add_avx512_vnni_kernels(QuantKernels& kernels) {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vnni")) return;
  kernels.int_gemv_a8 = int_gemv_a8;
  kernels.int_a8_quantize = int_a8_quantize;
}

}  // namespace moeq

#pragma GCC pop_options
#else
namespace moeq {
void add_avx512_vnni_kernels(QuantKernels&) {}
}  // namespace moeq
#endif
