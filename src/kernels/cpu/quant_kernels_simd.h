// The SIMD quantized kernels, written once over a vector-ops type `Ops` and compiled once per
// ISA: quant_kernels_avx2.cpp and quant_kernels_avx512.cpp include this AFTER their
// `#pragma GCC target` and define Ops in an anonymous namespace, so every instantiation is
// private to its file and carries that file's target (no AVX code leaks into baseline paths).
//
// Ops provides: W (lanes), F/I (float/int vectors), zero, set1, load, store, add, sub, mul, fma,
// hsum, cvt (int→float), load_words (W uint32), srli<S>, slli<S>, or_, and_, set1_i,
// load_f16 / load_u8 (W values → float), Lut + make_lut + lookup (16-entry table),
// nibbles (W 4-bit codes from W/2 bytes, high nibble first); for range_errors, div, min, max and
// round_even (to the nearest integer, ties to even).
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "kernels/cpu/quant_kernels.h"

namespace moeq::simd {

template <int N, typename Fn>
inline void static_for(Fn&& fn) {
  [&]<int... K>(std::integer_sequence<int, K...>) { (fn(std::integral_constant<int, K>{}), ...); }(
      std::make_integer_sequence<int, N>{});
}

// Code V of a 32-code unit whose Bits words (one vector per word, W outputs) are in w.
template <class Ops, int Bits, int V>
inline typename Ops::I extract(const typename Ops::I* w) {
  constexpr int bit = V * Bits, word = bit / 32, s = bit % 32;
  typename Ops::I q = Ops::template srli<s>(w[word]);
  if constexpr (s + Bits > 32) q = Ops::or_(q, Ops::template slli<32 - s>(w[word + 1]));
  if constexpr (s + Bits != 32) q = Ops::and_(q, Ops::set1_i((1 << Bits) - 1));
  return q;
}

template <class Ops, int Bits>
inline void load_unit(const IntLayout& L, int64_t unit, int64_t o, typename Ops::I* w) {
  const uint32_t* p = L.qweight.data() + unit * Bits * L.out_pad + o;
  for (int j = 0; j < Bits; ++j) w[j] = Ops::load_words(p + j * L.out_pad);
}

// NT tokens × one vector of outputs at o. Four accumulator chains per output vector hide the
// FMA latency: K = 4 / NT partial sums per token.
template <class Ops, int Bits, int NT>
void int_gemv_vector(const IntLayout& L, const float* x, const float* xsum, int64_t o, float* y, int64_t ldy) {
  using F = typename Ops::F;
  constexpr int K = 4 / NT;
  F out[NT];
  for (auto& v : out) v = Ops::zero();
  for (int64_t g = 0; g < L.n_groups; ++g) {
    F acc[NT][K];
    for (auto& row : acc)
      for (auto& v : row) v = Ops::zero();
    for (int64_t i0 = L.group_start[size_t(g)]; i0 < L.group_start[size_t(g + 1)]; i0 += kUnitCodes) {
      typename Ops::I w[Bits];
      load_unit<Ops, Bits>(L, i0 / kUnitCodes, o, w);
      static_for<kUnitCodes>([&](auto v) {
        const F q = Ops::cvt(extract<Ops, Bits, v>(w));
        for (int t = 0; t < NT; ++t)
          acc[t][v % K] = Ops::fma(Ops::set1(x[t * L.in_pad + i0 + v]), q, acc[t][v % K]);
      });
    }
    const F s = Ops::load_f16(L.scales.data() + g * L.out_pad + o);
    const F z = Ops::load_u8(L.zeros.data() + g * L.out_pad + o);
    for (int t = 0; t < NT; ++t) {
      F a = acc[t][0];
      for (int k = 1; k < K; ++k) a = Ops::add(a, acc[t][k]);
      out[t] = Ops::fma(s, Ops::sub(a, Ops::mul(z, Ops::set1(xsum[t * L.n_groups + g]))), out[t]);
    }
  }
  for (int t = 0; t < NT; ++t) Ops::store(y + t * ldy + o, out[t]);
}

// Tokens in batches of 4, then 2, then 1.
template <class Ops, int Bits>
void int_gemv_bits(const IntLayout& L, const float* x, const float* xsum, int64_t n, int64_t o0, int64_t o1,
                   float* y, int64_t ldy) {
  for (int64_t o = o0; o < o1; o += Ops::W) {
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) int_gemv_vector<Ops, Bits, 4>(L, x + t * L.in_pad, xsum + t * L.n_groups, o, y + t * ldy, ldy);
    for (; t + 2 <= n; t += 2) int_gemv_vector<Ops, Bits, 2>(L, x + t * L.in_pad, xsum + t * L.n_groups, o, y + t * ldy, ldy);
    for (; t < n; ++t) int_gemv_vector<Ops, Bits, 1>(L, x + t * L.in_pad, xsum + t * L.n_groups, o, y + t * ldy, ldy);
  }
}

template <class Ops, int Bits>
void int_dequant_bits(const IntLayout& L, int64_t o0, int64_t o1, float* b) {
  using F = typename Ops::F;
  const int64_t ldb = o1 - o0;
  for (int64_t o = o0; o < o1; o += Ops::W) {
    for (int64_t g = 0; g < L.n_groups; ++g) {
      const F s = Ops::load_f16(L.scales.data() + g * L.out_pad + o);
      const F z = Ops::load_u8(L.zeros.data() + g * L.out_pad + o);
      for (int64_t i0 = L.group_start[size_t(g)]; i0 < L.group_start[size_t(g + 1)]; i0 += kUnitCodes) {
        typename Ops::I w[Bits];
        load_unit<Ops, Bits>(L, i0 / kUnitCodes, o, w);
        float* dst = b + i0 * ldb + (o - o0);
        static_for<kUnitCodes>([&](auto v) {
          // (q − z) · s, the reference's exact rounding: q − z is exact in fp32.
          Ops::store(dst + v * ldb, Ops::mul(Ops::sub(Ops::cvt(extract<Ops, Bits, v>(w)), z), s));
        });
      }
    }
  }
}

template <class Ops>
void int_gemv(const IntLayout& L, const float* x, const float* xsum, int64_t n, int64_t o0, int64_t o1, float* y,
              int64_t ldy) {
  switch (L.bits) {
    case 2: return int_gemv_bits<Ops, 2>(L, x, xsum, n, o0, o1, y, ldy);
    case 3: return int_gemv_bits<Ops, 3>(L, x, xsum, n, o0, o1, y, ldy);
    case 4: return int_gemv_bits<Ops, 4>(L, x, xsum, n, o0, o1, y, ldy);
    default: return int_gemv_bits<Ops, 8>(L, x, xsum, n, o0, o1, y, ldy);
  }
}

template <class Ops>
void int_dequant(const IntLayout& L, int64_t o0, int64_t o1, float* b) {
  switch (L.bits) {
    case 2: return int_dequant_bits<Ops, 2>(L, o0, o1, b);
    case 3: return int_dequant_bits<Ops, 3>(L, o0, o1, b);
    case 4: return int_dequant_bits<Ops, 4>(L, o0, o1, b);
    default: return int_dequant_bits<Ops, 8>(L, o0, o1, b);
  }
}

// One row for NT tokens: two accumulator chains per token.
template <class Ops, int NT>
void bnb4_gemv_row(const Bnb4Tensors& T, const typename Ops::Lut& lut, const float* x, int64_t r, float* y,
                   int64_t ldy) {
  using F = typename Ops::F;
  F acc[NT][2];
  for (auto& row : acc) row[0] = row[1] = Ops::zero();
  const uint8_t* q = T.weight.data() + r * T.cols / 2;
  for (int64_t b = 0; b < T.cols / 64; ++b) {
    const F a = Ops::set1(bnb4_block_absmax(T, r * T.cols / 64 + b));
    static_for<64 / Ops::W>([&](auto k) {
      const int64_t c = b * 64 + k * Ops::W;
      const F w = Ops::mul(Ops::lookup(lut, Ops::nibbles(q + c / 2)), a);
      for (int t = 0; t < NT; ++t) acc[t][k % 2] = Ops::fma(Ops::load(x + t * T.cols + c), w, acc[t][k % 2]);
    });
  }
  for (int t = 0; t < NT; ++t) y[t * ldy + r] = Ops::hsum(Ops::add(acc[t][0], acc[t][1]));
}

template <class Ops>
void bnb4_gemv(const Bnb4Tensors& T, const float* x, int64_t n, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  const typename Ops::Lut lut = Ops::make_lut(T.quant_map.data());
  for (int64_t r = r0; r < r1; ++r) {
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) bnb4_gemv_row<Ops, 4>(T, lut, x + t * T.cols, r, y + t * ldy, ldy);
    for (; t < n; ++t) bnb4_gemv_row<Ops, 1>(T, lut, x + t * T.cols, r, y + t * ldy, ldy);
  }
}

template <class Ops>
void bnb4_dequant(const Bnb4Tensors& T, int64_t r0, int64_t r1, float* w) {
  const typename Ops::Lut lut = Ops::make_lut(T.quant_map.data());
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* q = T.weight.data() + r * T.cols / 2;
    float* dst = w + (r - r0) * T.cols;
    for (int64_t b = 0; b < T.cols / 64; ++b) {
      const typename Ops::F a = Ops::set1(bnb4_block_absmax(T, r * T.cols / 64 + b));
      for (int64_t c = b * 64; c < b * 64 + 64; c += Ops::W)
        Ops::store(dst + c, Ops::mul(Ops::lookup(lut, Ops::nibbles(q + c / 2)), a));
    }
  }
}

// One lane per candidate, W candidates at a time; each lane sums its errors in the order of the
// weights, as the scalar reference does, so the sums agree to the bit.
template <class Ops>
void range_errors(const float* w, int64_t n, const GroupParams* candidates, int64_t count, int max_code, float* err) {
  using F = typename Ops::F;
  constexpr int W = Ops::W;
  const F lowest = Ops::zero(), highest = Ops::set1(float(max_code));
  for (int64_t c0 = 0; c0 < count; c0 += W) {
    const int64_t m = std::min<int64_t>(W, count - c0);
    float scale[W], zero[W], sum[W];
    for (int k = 0; k < W; ++k) {  // spare lanes repeat the last candidate
      const GroupParams& p = candidates[c0 + std::min<int64_t>(k, m - 1)];
      scale[k] = p.scale;
      zero[k] = p.zero;
    }
    const F s = Ops::load(scale), z = Ops::load(zero);
    F acc = Ops::zero();
    for (int64_t i = 0; i < n; ++i) {
      const F x = Ops::set1(w[i]);
      const F code = Ops::min(Ops::max(Ops::add(Ops::round_even(Ops::div(x, s)), z), lowest), highest);
      const F d = Ops::sub(x, Ops::mul(Ops::sub(code, z), s));
      acc = Ops::add(acc, Ops::mul(d, d));
    }
    Ops::store(sum, acc);
    std::copy_n(sum, m, err + c0);
  }
}

// The INT8-activation kernels (quant_kernels_a8.h) are left to each ISA's file: AVX-512 takes
// them from a file compiled for VNNI.
template <class Ops>
QuantKernels make_kernels() {
  return {.int_gemv = int_gemv<Ops>,
          .int_dequant = int_dequant<Ops>,
          .int_gemv_a8 = nullptr,
          .int_a8_quantize = nullptr,
          .a8_beats_tile_gemm = false,
          .bnb4_gemv = bnb4_gemv<Ops>,
          .bnb4_dequant = bnb4_dequant<Ops>,
          .range_errors = range_errors<Ops>};
}

}  // namespace moeq::simd
