// The quantized matmul kernels of one ISA, as a table, and the one place that picks the table.
// QuantLinear (quant_linear.h) drives them: gemv = fused dequantize-and-dot for a few tokens;
// dequant = one cache-sized tile of fp32 weights for gemm (kernels/gemm.h). range_errors serves
// the quantizers' range search (quant/algo/group_params.h).
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/quant_layout.h"
#include "quant/formats/int_code.h"

namespace moeq {

struct QuantKernels {
  // Int, outputs [o0, o1) (multiples of kOutPad, o1 <= out_pad) for n tokens:
  //   y[t·ldy + o] = Σ_g s[g,o] · (Σ_{i∈g} x[t·in_pad + i] · q[i,o] − z[g,o] · xsum[t·n_groups + g])
  // x is the padded, group-ordered input (quant_layout.h); xsum its per-group sums.
  void (*int_gemv)(const IntLayout& L, const float* x, const float* xsum, int64_t n, int64_t o0, int64_t o1,
                   float* y, int64_t ldy);
  // Int: b[i·(o1−o0) + (o−o0)] = (q[i,o] − z) · s for every padded input i and o in [o0, o1).
  void (*int_dequant)(const IntLayout& L, int64_t o0, int64_t o1, float* b);
  // Int × INT8 activations (W8A8 / W4A8), outputs [o0, o1) for n tokens, in integers:
  //   y[t·ldy + o] = xscale[t] · Σ_g s[g,o] · (Σ_{i∈g} xq[t·in_pad + a8_slot(i)] · q[i,o] − z[g,o] · xqsum[t·n_groups + g])
  // where the two inner sums are exact int32 and the rest fp32 (fused multiply-add over g).
  // Bits per a8_kernel_bits; every table has it (AVX-512 without VNNI runs AVX2's).
  void (*int_gemv_a8)(const IntLayout& L, const int8_t* xq, const int32_t* xqsum, const float* xscale, int64_t n,
                      int64_t o0, int64_t o1, float* y, int64_t ldy);
  // The INT8 activations int_gemv_a8 reads, from the padded, group-ordered x [n, in_pad]: row t's
  // codes and scale by quantize_activation_codes (act_quant_linear.h), the code of padded input i
  // at xq[t·in_pad + a8_slot(i)], and each group's sum of codes in xqsum.
  void (*int_a8_quantize)(const IntLayout& L, const float* x, int64_t n, int8_t* xq, int32_t* xqsum, float* xscale);
  // Whether int_gemv_a8 outruns the fp32 tile + gemm path for prefill-sized n, as VNNI's does;
  // where it does not (AVX2: 0.4–0.7× at n = 512), the integer path is for decode only.
  bool a8_beats_tile_gemm;
  // NF4/FP4, rows [r0, r1): y[t·ldy + r] = Σ_c x[t·cols + c] · table[q[r,c]] · absmax[r, c/64].
  void (*bnb4_gemv)(const Bnb4Tensors& T, const float* x, int64_t n, int64_t r0, int64_t r1, float* y, int64_t ldy);
  // NF4/FP4: w[(r−r0)·cols + c] = table[q[r,c]] · absmax[r, c/64] for rows [r0, r1).
  void (*bnb4_dequant)(const Bnb4Tensors& T, int64_t r0, int64_t r1, float* w);
  // err[c] = Σ_i (w[i] − dequantize_code(quantize_code(w[i], candidates[c], max_code), candidates[c]))²
  // for c < count, each sum in fp32 in the order of i (int_code.h's arithmetic, unfused): every
  // table gives the same bits, so a range search picks the same parameters on any CPU.
  void (*range_errors)(const float* w, int64_t n, const GroupParams* candidates, int64_t count, int max_code,
                       float* err);
};

// The kernels of `isa`; throws moeq::Error when this CPU cannot run it.
const QuantKernels& quant_kernels(Isa isa);

// Per-ISA tables (kernels/ref, kernels/cpu/quant_kernels_avx*.cpp); use quant_kernels().
const QuantKernels& scalar_quant_kernels();
const QuantKernels& avx2_quant_kernels();
const QuantKernels& avx512_quant_kernels();
// Sets the AVX-512 table's int_gemv_a8 and int_a8_quantize: the AVX-512 VNNI ones
// (quant_kernels_avx512_vnni.cpp) where this CPU has VNNI, else AVX2's.
void add_int8_activation_kernels(QuantKernels& kernels);

}  // namespace moeq
