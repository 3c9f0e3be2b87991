// AVX2 + FMA + F16C instantiation of quant_kernels_simd.h and quant_kernels_a8.h (see the first
// for why the includes come first).
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include <immintrin.h>

#include "kernels/cpu/quant_kernels.h"

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#include "kernels/cpu/quant_kernels_simd.h"

#include "kernels/cpu/ops_avx2.h"
#include "kernels/cpu/quant_kernels_a8.h"

namespace moeq {

const QuantKernels& avx2_quant_kernels() {
  static const QuantKernels k = [] {
    QuantKernels kernels = simd::make_kernels<Avx2Ops>();
    kernels.int_gemv_a8 = simd::int_gemv_a8<Avx2Ops>;
    kernels.int_a8_quantize = simd::int_a8_quantize<Avx2Ops>;
    return kernels;
  }();
  return k;
}

}  // namespace moeq

#pragma GCC pop_options
#else
namespace moeq {
const QuantKernels& avx2_quant_kernels() { return scalar_quant_kernels(); }
}  // namespace moeq
#endif
