// The AVX-512F vector ops the kernel templates (quant_kernels_simd.h, quant_kernels_a8.h) are
// written over. Include it after the including file's `#pragma GCC target`, with <cstdint>,
// <cstring> and <immintrin.h> included before the pragma (quant_kernels_simd.h says why): the
// struct is in an anonymous namespace, so each file gets its own copy, compiled for its target.
#pragma once

namespace moeq {
namespace {

struct Avx512Ops {
  static constexpr int W = 16;
  using F = __m512;
  using I = __m512i;
  using Lut = __m512;

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(F v) { return _mm512_reduce_add_ps(v); }
  static F cvt(I v) { return _mm512_cvtepi32_ps(v); }
  static I load_words(const uint32_t* p) { return _mm512_loadu_si512(p); }
  template <int S> static I srli(I v) { return _mm512_srli_epi32(v, S); }
  template <int S> static I slli(I v) { return _mm512_slli_epi32(v, S); }
  static I or_(I a, I b) { return _mm512_or_si512(a, b); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I set1_i(int v) { return _mm512_set1_epi32(v); }
  static F load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F load_u8(const uint8_t* p) { return cvt(load_u8_i(p)); }
  static Lut make_lut(const float* table) { return _mm512_loadu_ps(table); }
  static F lookup(Lut lut, I idx) { return _mm512_permutexvar_ps(idx, lut); }
  // 16 codes from 8 bytes: duplicate each byte, then shift even lanes by 4 (high nibble first).
  static I nibbles(const uint8_t* p) {
    int64_t bytes;
    std::memcpy(&bytes, p, sizeof(bytes));
    const __m128i b = _mm_cvtsi64_si128(bytes);
    const I v = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(b, b));
    const I shift = _mm512_set_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
    return _mm512_and_si512(_mm512_srlv_epi32(v, shift), _mm512_set1_epi32(15));
  }

  // For the INT8-activation kernels (quant_kernels_a8.h); their dot4 needs VNNI and lives with them.
  static constexpr int kChains = 8;  // independent integer accumulators per output vector
  static I zero_i() { return _mm512_setzero_si512(); }
  static I add_i(I a, I b) { return _mm512_add_epi32(a, b); }
  static I sub_i(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I mullo_i(I a, I b) { return _mm512_mullo_epi32(a, b); }
  static I load_u8_i(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static F abs(F v) { return _mm512_abs_ps(v); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F round_even(F v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I cvt_rne(F v) { return _mm512_cvtps_epi32(v); }  // MXCSR's rounding: to nearest even
  static float reduce_max(F v) { return _mm512_reduce_max_ps(v); }
  static int32_t reduce_add_i(I v) { return _mm512_reduce_add_epi32(v); }
  // 16 int32 in [−128, 127] (16 / W vectors) as 16 bytes, in order.
  static __m128i narrow16(const I* q) { return _mm512_cvtepi32_epi8(q[0]); }
};

}  // namespace
}  // namespace moeq
