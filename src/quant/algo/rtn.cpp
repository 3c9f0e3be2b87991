#include "quant/algo/rtn.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quant/formats/bnb4.h"
#include "quant/formats/traits.h"

namespace moeq {
namespace {

struct GroupParams {
  float scale, zero;
  float lo, hi;  // clamp range of round(w / scale) + zero
};

GroupParams int_group_params(const float* w, int64_t n, const QuantSpec& spec) {
  float mn = 0.0f, mx = 0.0f;  // starting at 0 widens [min, max] to contain 0
  for (int64_t i = 0; i < n; ++i) {
    mn = std::min(mn, w[i]);
    mx = std::max(mx, w[i]);
  }
  if (spec.symmetric) {
    const float qmax = float((1 << (spec.bits - 1)) - 1);
    const float scale = std::max(std::max(-mn, mx) / qmax, 1e-8f);
    const float offset = float(1 << (spec.bits - 1));
    return {scale, offset, 0.0f, 2.0f * offset - 1.0f};
  }
  const float qmax = float((1 << spec.bits) - 1);
  const float scale = std::max((mx - mn) / qmax, 1e-8f);
  return {scale, std::nearbyint(-mn / scale), 0.0f, qmax};
}

}  // namespace

QuantizedMatrix rtn_quantize(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec) {
  if (spec.format != QuantFormat::Int) return quantize_bnb4(w, rows, cols, spec);
  QuantizedMatrix m;
  m.spec = spec;
  m.rows = rows;
  m.cols = cols;
  const int64_t g = spec.group_size == 0 ? cols : spec.group_size;
  m.n_groups = (cols + g - 1) / g;
  m.codes.resize(size_t(rows * cols));
  m.scales.resize(size_t(rows * m.n_groups));
  m.zeros.resize(size_t(rows * m.n_groups));
  m.g_idx.resize(size_t(cols));
  for (int64_t c = 0; c < cols; ++c) m.g_idx[size_t(c)] = int32_t(c / g);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t gi = 0; gi < m.n_groups; ++gi) {
      const int64_t c0 = gi * g, n = std::min(g, cols - c0);
      const float* x = w + r * cols + c0;
      const GroupParams p = int_group_params(x, n, spec);
      m.scales[size_t(r * m.n_groups + gi)] = p.scale;
      m.zeros[size_t(r * m.n_groups + gi)] = p.zero;
      for (int64_t i = 0; i < n; ++i)
        m.codes[size_t(r * cols + c0 + i)] = uint8_t(std::clamp(std::nearbyint(x[i] / p.scale) + p.zero, p.lo, p.hi));
    }
  }
  check_quantized_matrix(m, "rtn_quantize");
  return m;
}

}  // namespace moeq
