// The quantized matmul kernels of one ISA, as a table, and the one place that picks the table.
// QuantLinear (quant_linear.h) drives them: gemv = fused dequantize-and-dot for a few tokens;
// dequant = one cache-sized tile of fp32 weights for gemm (kernels/gemm.h).
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/quant_layout.h"

namespace moeq {

struct QuantKernels {
  // Int, outputs [o0, o1) (multiples of kOutPad, o1 <= out_pad) for n tokens:
  //   y[t·ldy + o] = Σ_g s[g,o] · (Σ_{i∈g} x[t·in_pad + i] · q[i,o] − z[g,o] · xsum[t·n_groups + g])
  // x is the padded, group-ordered input (quant_layout.h); xsum its per-group sums.
  void (*int_gemv)(const IntLayout& L, const float* x, const float* xsum, int64_t n, int64_t o0, int64_t o1,
                   float* y, int64_t ldy);
  // Int: b[i·(o1−o0) + (o−o0)] = (q[i,o] − z) · s for every padded input i and o in [o0, o1).
  void (*int_dequant)(const IntLayout& L, int64_t o0, int64_t o1, float* b);
  // NF4/FP4, rows [r0, r1): y[t·ldy + r] = Σ_c x[t·cols + c] · table[q[r,c]] · absmax[r, c/64].
  void (*bnb4_gemv)(const Bnb4Tensors& T, const float* x, int64_t n, int64_t r0, int64_t r1, float* y, int64_t ldy);
  // NF4/FP4: w[(r−r0)·cols + c] = table[q[r,c]] · absmax[r, c/64] for rows [r0, r1).
  void (*bnb4_dequant)(const Bnb4Tensors& T, int64_t r0, int64_t r1, float* w);
};

// The kernels of `isa`; throws moeq::Error when this CPU cannot run it.
const QuantKernels& quant_kernels(Isa isa);

// Per-ISA tables (kernels/ref, kernels/cpu/quant_kernels_avx*.cpp); use quant_kernels().
const QuantKernels& scalar_quant_kernels();
const QuantKernels& avx2_quant_kernels();
const QuantKernels& avx512_quant_kernels();

}  // namespace moeq
