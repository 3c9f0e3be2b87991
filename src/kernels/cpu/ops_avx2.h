// The AVX2 + FMA + F16C vector ops the kernel templates (quant_kernels_simd.h, quant_kernels_a8.h) are
// written over. Include it after the including file's `#pragma GCC target`, with <cstdint>,
// <cstring> and <immintrin.h> included before the pragma (quant_kernels_simd.h says why): the
// struct is in an anonymous namespace, so each file gets its own copy, compiled for its target.
#pragma once

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
  static F load_u8(const uint8_t* p) { return cvt(load_u8_i(p)); }
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

  // For the INT8-activation kernels (quant_kernels_a8.h).
  static constexpr int kChains = 4;  // independent integer accumulators per output vector (16 registers)
  static I zero_i() { return _mm256_setzero_si256(); }
  static I add_i(I a, I b) { return _mm256_add_epi32(a, b); }
  static I sub_i(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I mullo_i(I a, I b) { return _mm256_mullo_epi32(a, b); }
  static I load_u8_i(const uint8_t* p) {
    int64_t bytes;
    std::memcpy(&bytes, p, sizeof(bytes));
    return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(bytes));
  }
  // acc + Σ of each lane's four byte products, codes (unsigned, < 2^Bits) × x (signed): vpmaddubsw
  // adds pairs into int16, which saturates past 32767, so 8-bit codes go as two nibbles
  // (code = 16·high + low; 2 · 15 · 128 fits).
  template <int Bits>
  static I dot4(I acc, I codes, I x) {
    const I ones = _mm256_set1_epi16(1);
    const auto pairs = [&](I c) { return _mm256_madd_epi16(_mm256_maddubs_epi16(c, x), ones); };
    if constexpr (Bits < 8) {
      return _mm256_add_epi32(acc, pairs(codes));
    } else {
      const I low = _mm256_and_si256(codes, _mm256_set1_epi8(15));
      const I high = _mm256_and_si256(_mm256_srli_epi32(codes, 4), _mm256_set1_epi8(15));
      return _mm256_add_epi32(acc, _mm256_add_epi32(pairs(low), _mm256_slli_epi32(pairs(high), 4)));
    }
  }
  static F abs(F v) { return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F round_even(F v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I cvt_rne(F v) { return _mm256_cvtps_epi32(v); }  // MXCSR's rounding: to nearest even
  static float reduce_max(F v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
  static int32_t reduce_add_i(I v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1)));
  }
  // 16 int32 in [−128, 127] (two vectors) as 16 bytes, in order: packs works within 128-bit
  // lanes, so the 64-bit quarters are put back in order before the last pack.
  static __m128i narrow16(const I* q) {
    const I words = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
    return _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
  }
};

}  // namespace
}  // namespace moeq
