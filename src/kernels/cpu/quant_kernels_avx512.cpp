// AVX-512F instantiation of quant_kernels_simd.h (see there for why the includes come first).
#include <cstdint>
#include <cstring>
#include <utility>

// GCC 12 flags its own AVX-512 headers (the `__Y = __Y` idiom of _mm512_undefined_*) as
// maybe-uninitialized once inlined; the diagnostic is attributed to the header's lines, so it is
// silenced where the header is read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/quant_kernels.h"

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")

#include "kernels/cpu/quant_kernels_simd.h"

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
  static F load_u8(const uint8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
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
};

}  // namespace

const QuantKernels& avx512_quant_kernels() {
  static const QuantKernels k = [] {
    QuantKernels kernels = simd::make_kernels<Avx512Ops>();
    add_avx512_vnni_kernels(kernels);
    return kernels;
  }();
  return k;
}

}  // namespace moeq

#pragma GCC pop_options
#else
namespace moeq {
const QuantKernels& avx512_quant_kernels() { return scalar_quant_kernels(); }
}  // namespace moeq
#endif
