#include "kernels/cpu/quant_layout.h"

#include <algorithm>
#include <numeric>

#include "core/dtype.h"
#include "core/int_math.h"
#include "quant/formats/traits.h"

namespace moeq {

uint32_t IntLayout::code(int64_t i, int64_t o) const {
  const int64_t bit = (i % kUnitCodes) * bits, word = i / kUnitCodes * bits + bit / 32, s = bit % 32;
  uint64_t w = qweight[size_t(word * out_pad + o)];
  if (s + bits > 32) w |= uint64_t(qweight[size_t((word + 1) * out_pad + o)]) << 32;
  return uint32_t(w >> s) & ((1u << bits) - 1);
}

IntLayout make_int_layout(const QuantizedMatrix& m) {
  check_quantized_matrix(m, "make_int_layout");
  const FormatTraits& traits = format_traits(m.spec);
  IntLayout L;
  L.bits = traits.bits;
  L.out = m.rows;
  L.in = m.cols;
  L.out_pad = round_up(m.rows, kOutPad);
  L.n_groups = m.n_groups;

  // Columns by group (stable), each group padded to whole 32-code units.
  std::vector<int32_t> order(size_t(m.cols));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return m.g_idx[size_t(a)] < m.g_idx[size_t(b)]; });
  L.group_start.assign(size_t(m.n_groups + 1), 0);
  for (size_t k = 0, g = 0; g < size_t(m.n_groups); ++g) {
    const size_t begin = k;
    while (k < order.size() && m.g_idx[size_t(order[k])] == int32_t(g)) ++k;
    const int64_t width = round_up(int64_t(k - begin), kUnitCodes);
    L.group_start[g + 1] = L.group_start[g] + width;
    L.src_col.insert(L.src_col.end(), order.begin() + int64_t(begin), order.begin() + int64_t(k));
    L.src_col.resize(size_t(L.group_start[g + 1]), -1);
  }
  L.in_pad = L.group_start.back();
  L.identity = L.in_pad == L.in;
  for (int64_t i = 0; i < L.in_pad && L.identity; ++i) L.identity = L.src_col[size_t(i)] == i;

  L.qweight.assign(size_t(L.in_pad / kUnitCodes * L.bits * L.out_pad), 0);
  std::vector<uint8_t> unit(kUnitCodes);
  std::vector<uint32_t> words(size_t(L.bits));
  for (int64_t o = 0; o < L.out; ++o) {
    for (int64_t u = 0; u < L.in_pad / kUnitCodes; ++u) {
      for (int64_t v = 0; v < kUnitCodes; ++v) {
        const int32_t c = L.src_col[size_t(u * kUnitCodes + v)];
        unit[size_t(v)] = c < 0 ? 0 : m.codes[size_t(o * m.cols + c)];
      }
      traits.pack_block(unit.data(), words.data());
      for (int j = 0; j < L.bits; ++j) L.qweight[size_t((u * L.bits + j) * L.out_pad + o)] = words[size_t(j)];
    }
  }
  L.scales.assign(size_t(L.n_groups * L.out_pad), 0);
  L.zeros.assign(size_t(L.n_groups * L.out_pad), 0);
  for (int64_t o = 0; o < L.out; ++o) {
    for (int64_t g = 0; g < L.n_groups; ++g) {
      L.scales[size_t(g * L.out_pad + o)] = f32_to_f16(m.scales[size_t(o * m.n_groups + g)]);
      L.zeros[size_t(g * L.out_pad + o)] = uint8_t(m.zeros[size_t(o * m.n_groups + g)]);
    }
  }
  return L;
}

}  // namespace moeq
