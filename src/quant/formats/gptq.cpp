#include "quant/formats/gptq.h"

#include <array>

#include "core/dtype.h"
#include "core/error.h"
#include "quant/formats/traits.h"

namespace moeq {
namespace {

constexpr int kUnit = 32;  // codes per packing unit (IntBlock<Bits>::kValues)

// Packs `count` codes read through get(i) (zero bits past count) into `bits` words put(j, word).
template <typename Get, typename Put>
void pack_unit(const FormatTraits& t, int64_t count, Get get, Put put) {
  std::array<uint8_t, kUnit> codes{};
  for (int64_t i = 0; i < count; ++i) codes[size_t(i)] = get(i);
  std::array<uint32_t, 8> words{};
  t.pack_block(codes.data(), words.data());
  for (int j = 0; j < t.bits; ++j) put(j, int32_t(words[size_t(j)]));
}

template <typename Get, typename Put>
void unpack_unit(const FormatTraits& t, int64_t count, Get get, Put put) {
  std::array<uint32_t, 8> words{};
  for (int j = 0; j < t.bits; ++j) words[size_t(j)] = uint32_t(get(j));
  std::array<uint8_t, kUnit> codes{};
  t.unpack_block(words.data(), codes.data());
  for (int64_t i = 0; i < count; ++i) put(i, codes[size_t(i)]);
}

int64_t unit_count(int64_t n, int64_t unit) { return std::min<int64_t>(kUnit, n - unit * kUnit); }

}  // namespace

GptqTensors pack_gptq(const QuantizedMatrix& m, GptqZeros zeros) {
  check_quantized_matrix(m, "pack_gptq");
  const FormatTraits& t = format_traits(m.spec);
  if (t.family != QuantFormat::Int) fail("pack_gptq: {} is not an integer format", to_string(m.spec));
  GptqTensors g;
  g.spec = m.spec;
  g.in_features = m.cols;
  g.out_features = m.rows;
  g.zeros_convention = zeros;
  g.g_idx = m.g_idx;
  const int64_t out = m.rows, ng = m.n_groups, zcols = g.qzeros_cols();
  g.qweight.assign(size_t(g.qweight_rows() * out), 0);
  g.qzeros.assign(size_t(ng * zcols), 0);
  g.scales.resize(size_t(ng * out));
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t k = 0; k * kUnit < m.cols; ++k) {
      pack_unit(t, unit_count(m.cols, k), [&](int64_t i) { return m.codes[size_t(o * m.cols + k * kUnit + i)]; },
                [&](int j, int32_t w) { g.qweight[size_t((k * t.bits + j) * out + o)] = w; });
    }
    for (int64_t gi = 0; gi < ng; ++gi) g.scales[size_t(gi * out + o)] = f32_to_f16(m.scales[size_t(o * ng + gi)]);
  }
  const int shift = zeros == GptqZeros::MinusOne ? 1 : 0;
  for (int64_t gi = 0; gi < ng; ++gi) {
    for (int64_t k = 0; k * kUnit < out; ++k) {
      pack_unit(t, unit_count(out, k),
                [&](int64_t i) {
                  const int64_t o = k * kUnit + i;
                  const int z = int(m.zeros[size_t(o * ng + gi)]) - shift;
                  if (z < 0) fail("pack_gptq: zero point 0 (row {}, group {}) cannot be stored as zero - 1 (GPTQ v1)", o, gi);
                  return uint8_t(z);
                },
                [&](int j, int32_t w) { g.qzeros[size_t(gi * zcols + k * t.bits + j)] = w; });
    }
  }
  return g;
}

QuantizedMatrix unpack_gptq(const GptqTensors& g) {
  const FormatTraits& t = format_traits(g.spec);
  const int64_t in = g.in_features, out = g.out_features, ng = g.n_groups(), zcols = g.qzeros_cols();
  if (t.family != QuantFormat::Int || in <= 0 || out <= 0 || g.qweight.size() != size_t(g.qweight_rows() * out) ||
      g.qzeros.size() != size_t(ng * zcols) || g.scales.size() != size_t(ng * out) || g.g_idx.size() != size_t(in))
    fail("unpack_gptq: tensor sizes qweight {} qzeros {} scales {} g_idx {} do not match {} in, {} out, '{}'",
         g.qweight.size(), g.qzeros.size(), g.scales.size(), g.g_idx.size(), in, out, to_string(g.spec));
  QuantizedMatrix m;
  m.spec = g.spec;
  m.rows = out;
  m.cols = in;
  m.n_groups = ng;
  m.g_idx = g.g_idx;
  m.codes.resize(size_t(out * in));
  m.scales.resize(size_t(out * ng));
  m.zeros.resize(size_t(out * ng));
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t k = 0; k * kUnit < in; ++k) {
      unpack_unit(t, unit_count(in, k), [&](int j) { return g.qweight[size_t((k * t.bits + j) * out + o)]; },
                  [&](int64_t i, uint8_t q) { m.codes[size_t(o * in + k * kUnit + i)] = q; });
    }
    for (int64_t gi = 0; gi < ng; ++gi) m.scales[size_t(o * ng + gi)] = f16_to_f32(g.scales[size_t(gi * out + o)]);
  }
  const float shift = g.zeros_convention == GptqZeros::MinusOne ? 1.0f : 0.0f;
  for (int64_t gi = 0; gi < ng; ++gi) {
    for (int64_t k = 0; k * kUnit < out; ++k) {
      unpack_unit(t, unit_count(out, k), [&](int j) { return g.qzeros[size_t(gi * zcols + k * t.bits + j)]; },
                  [&](int64_t i, uint8_t z) { m.zeros[size_t((k * kUnit + i) * ng + gi)] = float(z) + shift; });
    }
  }
  return m;
}

}  // namespace moeq
