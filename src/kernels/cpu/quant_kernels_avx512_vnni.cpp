// The INT8-activation kernels (quant_kernels_a8.h) on AVX-512 VNNI, whose vpdpbusd sums four byte
// products into each int32 lane in one instruction. Their own file: only this code is compiled
// for VNNI, and the AVX-512 table takes it where the CPU has it (else AVX2's).
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's AVX-512 headers (quant_kernels_avx512.cpp)
#include <immintrin.h>

#include "kernels/cpu/quant_kernels.h"

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vnni,avx2,fma,f16c")

#include "kernels/cpu/ops_avx512.h"
#include "kernels/cpu/quant_kernels_a8.h"

namespace moeq {
namespace {

struct VnniOps : Avx512Ops {
  template <int Bits>
  static I dot4(I acc, I codes, I x) { return _mm512_dpbusd_epi32(acc, codes, x); }
};

}  // namespace

void add_int8_activation_kernels(QuantKernels& kernels) {
  const bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
  kernels.int_gemv_a8 = vnni ? simd::int_gemv_a8<VnniOps> : avx2_quant_kernels().int_gemv_a8;
  kernels.int_a8_quantize = vnni ? simd::int_a8_quantize<VnniOps> : avx2_quant_kernels().int_a8_quantize;
  kernels.a8_beats_tile_gemm = vnni;
}

}  // namespace moeq

#pragma GCC pop_options
#else
namespace moeq {
void add_int8_activation_kernels(QuantKernels&) {}
}  // namespace moeq
#endif
