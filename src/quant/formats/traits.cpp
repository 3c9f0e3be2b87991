#include "quant/formats/traits.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "quant/formats/blocks.h"
#include "quant/formats/bnb4.h"

namespace moeq {
namespace {

// Code v at bits [v·Bits, v·Bits + Bits) of a little-endian stream of 32-bit words.
template <int Bits>
void pack_int_block(const uint8_t* codes, void* out) {
  IntBlock<Bits> block{};
  for (int v = 0; v < IntBlock<Bits>::kValues; ++v) {
    const int bit = v * Bits, w = bit / 32, s = bit % 32;
    block.words[w] |= uint32_t(codes[v]) << s;
    if (s + Bits > 32) block.words[w + 1] |= uint32_t(codes[v]) >> (32 - s);
  }
  std::memcpy(out, &block, sizeof(block));
}

template <int Bits>
void unpack_int_block(const void* in, uint8_t* codes) {
  IntBlock<Bits> block;
  std::memcpy(&block, in, sizeof(block));
  for (int v = 0; v < IntBlock<Bits>::kValues; ++v) {
    const int bit = v * Bits, w = bit / 32, s = bit % 32;
    uint32_t q = block.words[w] >> s;
    if (s + Bits > 32) q |= block.words[w + 1] << (32 - s);
    codes[v] = uint8_t(q & ((1u << Bits) - 1));
  }
}

void pack_bnb4_block(const uint8_t* codes, void* out) {
  Bnb4Block block;
  for (int i = 0; i < Bnb4Block::kValues / 2; ++i) block.qs[i] = uint8_t(codes[2 * i] << 4 | codes[2 * i + 1]);
  std::memcpy(out, &block, sizeof(block));
}

void unpack_bnb4_block(const void* in, uint8_t* codes) {
  Bnb4Block block;
  std::memcpy(&block, in, sizeof(block));
  for (int i = 0; i < Bnb4Block::kValues / 2; ++i) {
    codes[2 * i] = block.qs[i] >> 4;
    codes[2 * i + 1] = block.qs[i] & 15;
  }
}

float dequant_int(uint8_t code, float scale, float zero) { return (float(code) - zero) * scale; }
float dequant_nf4(uint8_t code, float scale, float) { return nf4_code_table()[code] * scale; }
float dequant_fp4(uint8_t code, float scale, float) { return fp4_code_table()[code] * scale; }

template <int Bits>
constexpr FormatTraits int_traits(FormatId id, std::string_view name) {
  return {id, name, QuantFormat::Int, Bits, IntBlock<Bits>::kValues, int(sizeof(IntBlock<Bits>)), 128,
          pack_int_block<Bits>, unpack_int_block<Bits>, dequant_int};
}

constexpr FormatTraits bnb4_traits(FormatId id, std::string_view name, QuantFormat family,
                                   float (*dequant)(uint8_t, float, float)) {
  return {id, name, family, 4, Bnb4Block::kValues, int(sizeof(Bnb4Block)), kBnbBlock,
          pack_bnb4_block, unpack_bnb4_block, dequant};
}

constexpr std::array<FormatTraits, kFormatCount> kTraits = {
    int_traits<2>(FormatId::Int2, "int2"),
    int_traits<3>(FormatId::Int3, "int3"),
    int_traits<4>(FormatId::Int4, "int4"),
    int_traits<8>(FormatId::Int8, "int8"),
    bnb4_traits(FormatId::NF4, "nf4", QuantFormat::NF4, dequant_nf4),
    bnb4_traits(FormatId::FP4, "fp4", QuantFormat::FP4, dequant_fp4),
};

constexpr bool table_is_indexed_by_id() {
  for (int i = 0; i < kFormatCount; ++i)
    if (int(kTraits[size_t(i)].id) != i || kTraits[size_t(i)].block_bytes * 8 !=
                                               kTraits[size_t(i)].block_values * kTraits[size_t(i)].bits)
      return false;
  return true;
}
static_assert(table_is_indexed_by_id(), "kTraits must be in FormatId order, units exactly bits-dense");

}  // namespace

const FormatTraits& format_traits(FormatId id) { return kTraits[size_t(id)]; }

FormatId format_id(const QuantSpec& spec) {
  switch (spec.format) {
    case QuantFormat::NF4: return FormatId::NF4;
    case QuantFormat::FP4: return FormatId::FP4;
    case QuantFormat::Int:
      switch (spec.bits) {
        case 2: return FormatId::Int2;
        case 3: return FormatId::Int3;
        case 4: return FormatId::Int4;
        case 8: return FormatId::Int8;
        default: break;
      }
  }
  fail("quant spec '{}': no weight format has {} bits", to_string(spec), spec.bits);
}

void check_quantized_matrix(const QuantizedMatrix& m, std::string_view what) {
  const FormatTraits& t = format_traits(m.spec);
  const bool is_int = t.family == QuantFormat::Int;
  const int64_t g = m.spec.group_size;
  if (m.rows <= 0 || m.cols <= 0) fail("{}: empty quantized matrix ({} x {})", what, m.rows, m.cols);
  if (!is_int && (g != kBnbBlock || m.cols % kBnbBlock != 0))
    fail("{}: {} needs group_size 64 and in_features % 64 == 0, got g{} and {}", what, t.name, g, m.cols);
  if (is_int && g != 0 && g != 32 && g != 64 && g != 128)
    fail("{}: group_size {} is not one of 0, 32, 64, 128", what, g);
  if (m.n_groups != group_count(m.spec, m.cols))
    fail("{}: n_groups {} does not fit {} columns at group size {}", what, m.n_groups, m.cols, g);
  const size_t n = size_t(m.rows * m.cols), ng = size_t(m.rows * m.n_groups);
  if (m.codes.size() != n || m.scales.size() != ng || m.g_idx.size() != size_t(m.cols) ||
      m.zeros.size() != (is_int ? ng : 0))
    fail("{}: field sizes codes {} scales {} zeros {} g_idx {} do not match {} x {} with {} groups", what,
         m.codes.size(), m.scales.size(), m.zeros.size(), m.g_idx.size(), m.rows, m.cols, m.n_groups);
  for (size_t i = 0; i < n; ++i)
    if (m.codes[i] >> t.bits) fail("{}: code {} at {} does not fit {} bits", what, m.codes[i], i, t.bits);
  for (int64_t c = 0; c < m.cols; ++c)
    if (m.g_idx[size_t(c)] < 0 || m.g_idx[size_t(c)] >= m.n_groups || (!is_int && m.g_idx[size_t(c)] != c / g))
      fail("{}: g_idx[{}] = {} is out of range or not the bnb block", what, c, m.g_idx[size_t(c)]);
  for (size_t i = 0; i < m.zeros.size(); ++i) {
    const float z = m.zeros[i];
    if (z != std::nearbyint(z) || z < 0 || z >= float(1 << t.bits))
      fail("{}: zero point {} of row {}, group {} is not an integer in [0, {})", what, z, int64_t(i) / m.n_groups,
           int64_t(i) % m.n_groups, 1 << t.bits);
  }
}

std::vector<float> dequantize(const QuantizedMatrix& m) {
  const FormatTraits& t = format_traits(m.spec);
  std::vector<float> w(size_t(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t c = 0; c < m.cols; ++c) {
      const size_t gi = size_t(r * m.n_groups + m.g_idx[size_t(c)]);
      const float zero = m.zeros.empty() ? 0.0f : m.zeros[gi];
      w[size_t(r * m.cols + c)] = t.dequant(m.codes[size_t(r * m.cols + c)], m.scales[gi], zero);
    }
  }
  return w;
}

}  // namespace moeq
