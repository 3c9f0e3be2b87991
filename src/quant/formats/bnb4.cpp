#include "quant/formats/bnb4.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/int_math.h"
#include "quant/formats/blocks.h"
#include "quant/formats/traits.h"

namespace moeq {
namespace {

constexpr std::array<float, 16> kNf4 = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

// bnb: torch.tensor([0, 0.0625, 8, 12, 4, 6, 2, 3, -0, ...]) / 12, divided in fp32.
std::array<float, 16> make_fp4_table() {
  constexpr std::array<float, 8> kMagnitude = {0.0f, 0.0625f, 8.0f, 12.0f, 4.0f, 6.0f, 2.0f, 3.0f};
  std::array<float, 16> t{};
  for (size_t i = 0; i < 8; ++i) {
    t[i] = kMagnitude[i] / 12.0f;
    t[i + 8] = -kMagnitude[i] / 12.0f;
  }
  return t;
}

// torch.linspace(start, end, steps) in fp32, as torch computes it element by element.
std::vector<float> torch_linspace(float start, float end, int steps) {
  const float step = (end - start) / float(steps - 1);
  std::vector<float> v(static_cast<size_t>(steps));
  for (int k = 0; k < steps; ++k)
    v[size_t(k)] = k < steps / 2 ? std::fma(step, float(k), start) : std::fma(-step, float(steps - 1 - k), end);
  return v;
}

// argmin_i |x − code[i]|, first index on ties (torch.argmin). `code` ascending.
uint8_t nearest_sorted(const std::vector<float>& code, float x) {
  const auto hi = std::lower_bound(code.begin(), code.end(), x);
  if (hi == code.begin()) return 0;
  if (hi == code.end()) return uint8_t(code.size() - 1);
  const auto lo = hi - 1;
  // lo is the first of any run of equal values below x, hi the first >= x.
  const auto first_lo = std::lower_bound(code.begin(), lo, *lo);
  return uint8_t((std::fabs(x - *lo) <= std::fabs(*hi - x) ? first_lo : hi) - code.begin());
}

// bnb's quantize_blockwise(x, code, blocksize): per-block fp32 absmax, x · (1 / absmax) clamped
// to [−1, 1], nearest code.
void quantize_blockwise(const std::vector<float>& x, const std::vector<float>& code, int64_t blocksize,
                        std::vector<uint8_t>& q, std::vector<float>& absmax) {
  const int64_t n = int64_t(x.size()), blocks = ceil_div(n, blocksize);
  q.assign(size_t(n), 0);
  absmax.assign(size_t(blocks), 0.0f);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * blocksize, hi = std::min(n, lo + blocksize);
    float amax = 0.0f;
    for (int64_t i = lo; i < hi; ++i) amax = std::max(amax, std::fabs(x[size_t(i)]));
    absmax[size_t(b)] = amax;
    const float inv = 1.0f / amax;
    for (int64_t i = lo; i < hi; ++i)
      q[size_t(i)] = nearest_sorted(code, amax > 0 ? std::clamp(x[size_t(i)] * inv, -1.0f, 1.0f) : 0.0f);
  }
}

// Double quantization (bnb quantize_4bit, compress_statistics=True).
void compress_absmax(const std::vector<float>& absmax, Bnb4Tensors& t) {
  double sum = 0;  // the mean rounded once; torch's fp32 cascade sum can differ in the last ulp
  for (float a : absmax) sum += a;
  t.offset = float(sum / double(absmax.size()));
  std::vector<float> centered(absmax.size());
  for (size_t b = 0; b < absmax.size(); ++b) centered[b] = absmax[b] - t.offset;
  t.nested_quant_map = create_dynamic_map();
  quantize_blockwise(centered, t.nested_quant_map, kBnbNestedBlock, t.absmax_q, t.nested_absmax);
}

}  // namespace

std::vector<float> create_dynamic_map() {
  constexpr int kMaxExponentBits = 7;
  std::vector<float> data;
  for (int i = 0; i < kMaxExponentBits; ++i) {
    const std::vector<float> b = torch_linspace(0.1f, 1.0f, (1 << i) + 1);
    // A Python float times an fp32 tensor: the scalar is rounded to fp32 first.
    const float scale = float(std::pow(10.0, double(i - (kMaxExponentBits - 1))));
    for (size_t k = 0; k + 1 < b.size(); ++k) {
      const float mean = (b[k] + b[k + 1]) / 2.0f;
      data.push_back(scale * mean);
      data.push_back(-scale * mean);
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  std::sort(data.begin(), data.end());
  return data;
}

const std::array<float, 16>& nf4_code_table() { return kNf4; }

const std::array<float, 16>& fp4_code_table() {
  static const std::array<float, 16> table = make_fp4_table();
  return table;
}

const std::array<float, 16>& bnb4_code_table(QuantFormat format) {
  if (format == QuantFormat::FP4) return fp4_code_table();
  if (format == QuantFormat::NF4) return nf4_code_table();
  fail("bnb4_code_table: format is not NF4 or FP4");
}

uint8_t bnb4_encode(QuantFormat format, float x) {
  const std::array<float, 16>& table = bnb4_code_table(format);
  uint8_t best = 0;
  for (uint8_t i = 1; i < 16; ++i)
    if (std::fabs(x - table[i]) < std::fabs(x - table[best])) best = i;
  return best;
}

QuantizedMatrix quantize_bnb4(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec) {
  QuantizedMatrix m;
  m.spec = spec;
  m.rows = rows;
  m.cols = cols;
  m.n_groups = cols / kBnbBlock;
  if (cols % kBnbBlock != 0 || spec.group_size != kBnbBlock)
    fail("quantize {}: needs in_features % 64 == 0 and g64, got {} and g{}", to_string(spec), cols, spec.group_size);
  m.codes.resize(size_t(rows * cols));
  m.scales.resize(size_t(rows * m.n_groups));
  m.g_idx.resize(size_t(cols));
  for (int64_t c = 0; c < cols; ++c) m.g_idx[size_t(c)] = int32_t(c / kBnbBlock);
  const uint8_t zero_code = bnb4_encode(spec.format, 0.0f);
  for (int64_t b = 0; b < rows * m.n_groups; ++b) {
    const float* x = w + b * kBnbBlock;
    float amax = 0.0f;
    for (int i = 0; i < kBnbBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
    m.scales[size_t(b)] = amax;
    const float inv = 1.0f / amax;  // bnb multiplies by the reciprocal, it does not divide
    for (int i = 0; i < kBnbBlock; ++i)
      m.codes[size_t(b * kBnbBlock + i)] =
          amax > 0 ? bnb4_encode(spec.format, std::clamp(x[i] * inv, -1.0f, 1.0f)) : zero_code;
  }
  return m;
}

Bnb4Tensors pack_bnb4(const QuantizedMatrix& m) {
  check_quantized_matrix(m, "pack_bnb4");
  const FormatTraits& traits = format_traits(m.spec);
  Bnb4Tensors t;
  t.spec = m.spec;
  t.rows = m.rows;
  t.cols = m.cols;
  const std::array<float, 16>& table = bnb4_code_table(m.spec.format);
  t.quant_map.assign(table.begin(), table.end());
  t.weight.resize(size_t(m.rows * m.cols / 2));
  for (int64_t b = 0; b < t.n_blocks(); ++b)
    traits.pack_block(&m.codes[size_t(b * kBnbBlock)], &t.weight[size_t(b * kBnbBlock / 2)]);
  if (m.spec.double_quant)
    compress_absmax(m.scales, t);
  else
    t.absmax = m.scales;
  return t;
}

float bnb4_block_absmax(const Bnb4Tensors& t, int64_t b) {
  if (!t.spec.double_quant) return t.absmax[size_t(b)];
  // Two fp32 roundings, multiply then add, as bnb's dequantize_blockwise(...) + offset. This
  // file is compiled for baseline x86-64, so the compiler cannot fuse them into an FMA.
  return t.nested_quant_map[t.absmax_q[size_t(b)]] * t.nested_absmax[size_t(b / kBnbNestedBlock)] + t.offset;
}

QuantizedMatrix unpack_bnb4(const Bnb4Tensors& t) {
  const FormatTraits& traits = format_traits(t.spec);
  QuantizedMatrix m;
  m.spec = t.spec;
  m.rows = t.rows;
  m.cols = t.cols;
  m.n_groups = t.cols / kBnbBlock;
  m.codes.resize(size_t(t.rows * t.cols));
  m.scales.resize(size_t(t.n_blocks()));
  m.g_idx.resize(size_t(t.cols));
  for (int64_t c = 0; c < t.cols; ++c) m.g_idx[size_t(c)] = int32_t(c / kBnbBlock);
  for (int64_t b = 0; b < t.n_blocks(); ++b)
    traits.unpack_block(&t.weight[size_t(b * kBnbBlock / 2)], &m.codes[size_t(b * kBnbBlock)]);
  for (int64_t b = 0; b < t.n_blocks(); ++b) m.scales[size_t(b)] = bnb4_block_absmax(t, b);
  return m;
}

}  // namespace moeq
