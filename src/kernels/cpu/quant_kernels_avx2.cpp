// AVX2 + FMA + F16C instantiation of quant_kernels_simd.h (see there for why the includes come first).
#include <cstdint>
#include <cstring>
#include <utility>

#include <immintrin.h>

#include "kernels/cpu/quant_kernels.h"

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#include "kernels/cpu/quant_kernels_simd.h"

namespace moeq {
namespace {

struct Avx2Ops {
  static constexpr int W = 8;
  using F = __m256;
  using I = __m256i;
  struct Lut {
    __m256 lo, hi;
  };

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static F cvt(I v) { return _mm256_cvtepi32_ps(v); }
  static I load_words(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  template <int S> static I srli(I v) { return _mm256_srli_epi32(v, S); }
  template <int S> static I slli(I v) { return _mm256_slli_epi32(v, S); }
  static I or_(I a, I b) { return _mm256_or_si256(a, b); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I set1_i(int v) { return _mm256_set1_epi32(v); }
  static F load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static F load_u8(const uint8_t* p) {
    int64_t bytes;
    std::memcpy(&bytes, p, sizeof(bytes));
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(bytes)));
  }
  static Lut make_lut(const float* table) { return {_mm256_loadu_ps(table), _mm256_loadu_ps(table + 8)}; }
  // permutevar8x32 uses the low 3 bits; bit 3, moved to the sign, picks the half.
  static F lookup(Lut lut, I idx) {
    const F lo = _mm256_permutevar8x32_ps(lut.lo, idx), hi = _mm256_permutevar8x32_ps(lut.hi, idx);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
  }
  // 8 codes from 4 bytes: duplicate each byte, then shift even lanes by 4 (high nibble first).
  static I nibbles(const uint8_t* p) {
    int32_t bytes;
    std::memcpy(&bytes, p, sizeof(bytes));
    const __m128i b = _mm_cvtsi32_si128(bytes);
    const I v = _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(b, b));
    const I shift = _mm256_set_epi32(0, 4, 0, 4, 0, 4, 0, 4);
    return _mm256_and_si256(_mm256_srlv_epi32(v, shift), _mm256_set1_epi32(15));
  }
};

}  // namespace

const QuantKernels& avx2_quant_kernels() {
  static const QuantKernels k = simd::make_kernels<Avx2Ops>();
  return k;
}

}  // namespace moeq

#pragma GCC pop_options
#else
namespace moeq {
const QuantKernels& avx2_quant_kernels() { return scalar_quant_kernels(); }
}  // namespace moeq
#endif
