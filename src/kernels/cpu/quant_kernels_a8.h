// The INT8-activation kernels of quant_kernels.h (int_gemv_a8, int_a8_quantize), written once over
// a vector-ops type and compiled per ISA like quant_kernels_simd.h (include after the pragma).
// Besides the float ops, Ops provides: kChains, zero_i, add_i, sub_i, mullo_i, load_u8_i (W bytes
// → int32), abs, max, min, div, cvt_rne, reduce_max, reduce_add_i, narrow16 (16 int32 → 16
// bytes), and dot4<Bits>(acc, codes, x): acc plus, in each int32 lane, the sum of the four
// products of its bytes, codes unsigned (< 2^Bits) times x signed — vpdpbusd on AVX-512 VNNI.
//
// A word of 4-bit codes holds the codes of 8 inputs for one output; masked with 0x0F0F0F0F it
// gives those of inputs 0, 2, 4, 6 as bytes, shifted right by 4 first those of 1, 3, 5, 7
// (a8_slot orders the activations to match), so W outputs × 8 inputs take two ALU ops and two
// dot4, where the fp32 kernel converts and multiplies every code on its own.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/quant_kernels.h"
#include "kernels/cpu/quant_kernels_simd.h"

namespace moeq::simd {

// Four INT8 activations as one int32, in every lane.
template <class Ops>
inline typename Ops::I broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return Ops::set1_i(v);
}

// NT tokens × W outputs at o. Each token's dot products alternate over kChains / NT accumulators,
// enough independent chains to hide the dot product's latency.
template <class Ops, int Bits, int NT>
void a8_vector(const IntLayout& L, const int8_t* xq, const int32_t* xqsum, const float* xscale, int64_t o, float* y,
               int64_t ldy) {
  using F = typename Ops::F;
  using I = typename Ops::I;
  constexpr int per_byte = 8 / Bits, K = Ops::kChains / NT;
  const I mask = Ops::set1_i(int32_t(0x01010101u * ((1u << Bits) - 1)));
  F out[NT];
  for (auto& v : out) v = Ops::zero();
  for (int64_t g = 0; g < L.n_groups; ++g) {
    I acc[NT][K];
    for (auto& row : acc)
      for (auto& v : row) v = Ops::zero_i();
    for (int64_t i0 = L.group_start[size_t(g)]; i0 < L.group_start[size_t(g + 1)]; i0 += kUnitCodes) {
      const uint32_t* words = L.qweight.data() + i0 / kUnitCodes * Bits * L.out_pad + o;
      static_for<Bits>([&](auto word) {  // the unit's words, 4 · per_byte inputs each
        constexpr int j = decltype(word)::value;
        const I w = Ops::load_words(words + j * L.out_pad);
        static_for<per_byte>([&](auto shift) {
          constexpr int m = decltype(shift)::value, k = (j * per_byte + m) % K;
          const I codes = Bits == 8 ? w : Ops::and_(Ops::template srli<m * Bits>(w), mask);
          const int64_t slot = i0 + j * 4 * per_byte + m * 4;
          for (int t = 0; t < NT; ++t)
            acc[t][k] = Ops::template dot4<Bits>(acc[t][k], codes, broadcast4<Ops>(xq + t * L.in_pad + slot));
        });
      });
    }
    const F s = Ops::load_f16(L.scales.data() + g * L.out_pad + o);
    const I z = Ops::load_u8_i(L.zeros.data() + g * L.out_pad + o);
    for (int t = 0; t < NT; ++t) {
      I dot = acc[t][0];
      for (int k = 1; k < K; ++k) dot = Ops::add_i(dot, acc[t][k]);
      const I zero_term = Ops::mullo_i(z, Ops::set1_i(xqsum[t * L.n_groups + g]));
      out[t] = Ops::fma(s, Ops::cvt(Ops::sub_i(dot, zero_term)), out[t]);
    }
  }
  for (int t = 0; t < NT; ++t) Ops::store(y + t * ldy + o, Ops::mul(out[t], Ops::set1(xscale[t])));
}

// Tokens in batches of 4, then 2, then 1, for every W outputs.
template <class Ops, int Bits>
void a8_bits(const IntLayout& L, const int8_t* xq, const int32_t* xqsum, const float* xscale, int64_t n, int64_t o0,
             int64_t o1, float* y, int64_t ldy) {
  for (int64_t o = o0; o < o1; o += Ops::W) {
    int64_t t = 0;
    const auto run = [&]<int NT>() {
      a8_vector<Ops, Bits, NT>(L, xq + t * L.in_pad, xqsum + t * L.n_groups, xscale + t, o, y + t * ldy, ldy);
      t += NT;
    };
    while (t + 4 <= n) run.template operator()<4>();
    if (t + 2 <= n) run.template operator()<2>();
    if (t < n) run.template operator()<1>();
  }
}

// 16 consecutive inputs' codes (a whole number of words for 2, 4 and 8 bits) in a8_slot order.
template <int Bits>
inline __m128i a8_order(__m128i codes) {
  if constexpr (Bits == 8) {
    return codes;
  } else {
    alignas(16) static constexpr std::array<int8_t, 16> source = [] {
      std::array<int8_t, 16> from{};
      for (int k = 0; k < 16; ++k) from[size_t(a8_slot(Bits, k))] = int8_t(k);
      return from;
    }();
    return _mm_shuffle_epi8(codes, _mm_load_si128(reinterpret_cast<const __m128i*>(source.data())));
  }
}

// quantize_activation_codes, 16 inputs at a time: the same division, clamp and ties to even
// (cvt_rne rounds by MXCSR, whose default is to nearest even), so the codes agree bit for bit.
template <class Ops, int Bits>
void a8_quantize_bits(const IntLayout& L, const float* x, int64_t n, int8_t* xq, int32_t* xqsum, float* xscale) {
  using F = typename Ops::F;
  using I = typename Ops::I;
  constexpr int vectors = 16 / Ops::W;
  for (int64_t t = 0; t < n; ++t) {
    const float* row = x + t * L.in_pad;
    int8_t* codes = xq + t * L.in_pad;
    int32_t* sums = xqsum + t * L.n_groups;
    F absmax = Ops::zero();
    for (int64_t i = 0; i < L.in_pad; i += Ops::W) absmax = Ops::max(absmax, Ops::abs(Ops::load(row + i)));
    xscale[t] = Ops::reduce_max(absmax) / 127.0f;
    if (xscale[t] == 0.0f) {  // x / 0 would be NaN, which the clamp below turns into −127
      std::memset(codes, 0, size_t(L.in_pad));
      std::memset(sums, 0, size_t(L.n_groups) * sizeof(int32_t));
      continue;
    }
    const F scale = Ops::set1(xscale[t]), lo = Ops::set1(-127.0f), hi = Ops::set1(127.0f);
    for (int64_t g = 0; g < L.n_groups; ++g) {
      I sum = Ops::zero_i();
      for (int64_t i = L.group_start[size_t(g)]; i < L.group_start[size_t(g + 1)]; i += 16) {
        I q[vectors];
        for (int v = 0; v < vectors; ++v) {
          const F r = Ops::div(Ops::load(row + i + v * Ops::W), scale);
          q[v] = Ops::cvt_rne(Ops::min(Ops::max(r, lo), hi));
          sum = Ops::add_i(sum, q[v]);
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), a8_order<Bits>(Ops::narrow16(q)));
      }
      sums[g] = Ops::reduce_add_i(sum);
    }
  }
}

template <class Ops>
void int_gemv_a8(const IntLayout& L, const int8_t* xq, const int32_t* xqsum, const float* xscale, int64_t n,
                 int64_t o0, int64_t o1, float* y, int64_t ldy) {
  switch (L.bits) {
    case 2: return a8_bits<Ops, 2>(L, xq, xqsum, xscale, n, o0, o1, y, ldy);
    case 4: return a8_bits<Ops, 4>(L, xq, xqsum, xscale, n, o0, o1, y, ldy);
    default: return a8_bits<Ops, 8>(L, xq, xqsum, xscale, n, o0, o1, y, ldy);
  }
}

template <class Ops>
void int_a8_quantize(const IntLayout& L, const float* x, int64_t n, int8_t* xq, int32_t* xqsum, float* xscale) {
  switch (L.bits) {
    case 2: return a8_quantize_bits<Ops, 2>(L, x, n, xq, xqsum, xscale);
    case 4: return a8_quantize_bits<Ops, 4>(L, x, n, xq, xqsum, xscale);
    default: return a8_quantize_bits<Ops, 8>(L, x, n, xq, xqsum, xscale);
  }
}

}  // namespace moeq::simd
