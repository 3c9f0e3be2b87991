// Stored dense weights (F32, BF16 or F16) read as fp32: the widening that the gemv and the gemm's
// panel packing share. Every widening here is exact, so all three dtypes of the same values give
// the same products. Include after <immintrin.h>.
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/dtype.h"

namespace moeq {

template <DType D>
using StoredWeight = std::conditional_t<D == DType::F32, float, uint16_t>;

template <DType D>
inline float widen(StoredWeight<D> w) {
  if constexpr (D == DType::BF16) return bf16_to_f32(w);
  else if constexpr (D == DType::F16) return f16_to_f32(w);
  else return w;
}

// Sixteen weights from p; lanes outside m read as zero.
template <DType D>
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m512 widen16(const StoredWeight<D>* p, __mmask16 m) {
  if constexpr (D == DType::F32) {
    return _mm512_maskz_loadu_ps(m, p);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if constexpr (D == DType::BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else return _mm512_cvtph_ps(h);
  }
}

}  // namespace moeq
