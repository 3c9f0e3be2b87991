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

#include "kernels/cpu/ops_avx512.h"

namespace moeq {

const QuantKernels& avx512_quant_kernels() {
  static const QuantKernels k = [] {
    QuantKernels kernels = simd::make_kernels<Avx512Ops>();
    add_int8_activation_kernels(kernels);
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
