// The scalar reference kernels: the definitions of kernels/cpu/quant_kernels.h written out one
// weight at a time, each weight dequantized as (q − z) · s or table[q] · absmax. Every SIMD
// kernel is tested against these.
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "kernels/act_quant_linear.h"
#include "kernels/cpu/quant_kernels.h"

namespace moeq {
namespace {

float int_weight(const IntLayout& L, int64_t g, int64_t i, int64_t o) {
  const size_t go = size_t(g * L.out_pad + o);
  return (float(L.code(i, o)) - float(L.zeros[go])) * f16_to_f32(L.scales[go]);
}

void int_gemv(const IntLayout& L, const float* x, const float*, int64_t n, int64_t o0, int64_t o1, float* y,
              int64_t ldy) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t o = o0; o < o1; ++o) {
      float acc = 0.0f;
      for (int64_t g = 0; g < L.n_groups; ++g)
        for (int64_t i = L.group_start[size_t(g)]; i < L.group_start[size_t(g + 1)]; ++i)
          acc += x[t * L.in_pad + i] * int_weight(L, g, i, o);
      y[t * ldy + o] = acc;
    }
  }
}

void int_dequant(const IntLayout& L, int64_t o0, int64_t o1, float* b) {
  for (int64_t g = 0; g < L.n_groups; ++g)
    for (int64_t i = L.group_start[size_t(g)]; i < L.group_start[size_t(g + 1)]; ++i)
      for (int64_t o = o0; o < o1; ++o) b[i * (o1 - o0) + (o - o0)] = int_weight(L, g, i, o);
}

// std::fma: the SIMD kernel's fused multiply-add, so that the two agree bit for bit.
void int_gemv_a8(const IntLayout& L, const int8_t* xq, const int32_t* xqsum, const float* xscale, int64_t n,
                 int64_t o0, int64_t o1, float* y, int64_t ldy) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t o = o0; o < o1; ++o) {
      float acc = 0.0f;
      for (int64_t g = 0; g < L.n_groups; ++g) {
        int32_t dot = 0;
        for (int64_t i = L.group_start[size_t(g)]; i < L.group_start[size_t(g + 1)]; ++i)
          dot += int32_t(xq[t * L.in_pad + a8_slot(L.bits, i)]) * int32_t(L.code(i, o));
        const size_t go = size_t(g * L.out_pad + o);
        const int32_t zero_term = int32_t(L.zeros[go]) * xqsum[t * L.n_groups + g];
        acc = std::fma(f16_to_f32(L.scales[go]), float(dot - zero_term), acc);
      }
      y[t * ldy + o] = acc * xscale[t];
    }
  }
}

void int_a8_quantize(const IntLayout& L, const float* x, int64_t n, int8_t* xq, int32_t* xqsum, float* xscale) {
  std::vector<int8_t> codes(size_t(L.in_pad));
  for (int64_t t = 0; t < n; ++t) {
    xscale[t] = quantize_activation_codes({x + t * L.in_pad, size_t(L.in_pad)}, codes);
    for (int64_t g = 0; g < L.n_groups; ++g) {
      int32_t sum = 0;
      for (int64_t i = L.group_start[size_t(g)]; i < L.group_start[size_t(g + 1)]; ++i) {
        xq[t * L.in_pad + a8_slot(L.bits, i)] = codes[size_t(i)];
        sum += codes[size_t(i)];
      }
      xqsum[t * L.n_groups + g] = sum;
    }
  }
}

// One row of ŵ: table[q] · absmax.
void bnb4_row(const Bnb4Tensors& T, int64_t r, float* w) {
  for (int64_t c = 0; c < T.cols; ++c) {
    const int64_t flat = r * T.cols + c;
    const uint8_t byte = T.weight[size_t(flat / 2)];
    const uint8_t q = flat % 2 == 0 ? byte >> 4 : byte & 15;
    w[c] = T.quant_map[q] * bnb4_block_absmax(T, flat / 64);
  }
}

void bnb4_gemv(const Bnb4Tensors& T, const float* x, int64_t n, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  std::vector<float> w(size_t(T.cols));
  for (int64_t r = r0; r < r1; ++r) {
    bnb4_row(T, r, w.data());
    for (int64_t t = 0; t < n; ++t) {
      float acc = 0.0f;
      for (int64_t c = 0; c < T.cols; ++c) acc += x[t * T.cols + c] * w[size_t(c)];
      y[t * ldy + r] = acc;
    }
  }
}

void bnb4_dequant(const Bnb4Tensors& T, int64_t r0, int64_t r1, float* w) {
  for (int64_t r = r0; r < r1; ++r) bnb4_row(T, r, w + (r - r0) * T.cols);
}

void range_errors(const float* w, int64_t n, const GroupParams* candidates, int64_t count, int max_code, float* err) {
  for (int64_t c = 0; c < count; ++c) {
    const GroupParams p = candidates[c];
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      const float d = w[i] - dequantize_code(quantize_code(w[i], p, max_code), p);
      sum += d * d;
    }
    err[c] = sum;
  }
}

}  // namespace

const QuantKernels& scalar_quant_kernels() {
  static const QuantKernels k{.int_gemv = int_gemv,
                              .int_dequant = int_dequant,
                              .int_gemv_a8 = int_gemv_a8,
                              .int_a8_quantize = int_a8_quantize,
                              .a8_beats_tile_gemm = false,
                              .bnb4_gemv = bnb4_gemv,
                              .bnb4_dequant = bnb4_dequant,
                              .range_errors = range_errors};
  return k;
}

}  // namespace moeq
