#include "quant/algo/rtn.h"

#include <algorithm>

#include "quant/algo/group_params.h"
#include "quant/formats/bnb4.h"
#include "quant/formats/traits.h"

namespace moeq {

QuantizedMatrix rtn_quantize(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec,
                             ScaleDivision division) {
  if (spec.format != QuantFormat::Int) return quantize_bnb4(w, rows, cols, spec);
  check_int_spec(spec, "rtn_quantize");
  QuantizedMatrix m;
  m.spec = spec;
  m.rows = rows;
  m.cols = cols;
  const int64_t g = group_width(spec, cols);
  m.n_groups = group_count(spec, cols);
  m.codes.resize(size_t(rows * cols));
  m.scales.resize(size_t(rows * m.n_groups));
  m.zeros.resize(size_t(rows * m.n_groups));
  m.g_idx.resize(size_t(cols));
  for (int64_t c = 0; c < cols; ++c) m.g_idx[size_t(c)] = int32_t(c / g);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t gi = 0; gi < m.n_groups; ++gi) {
      const int64_t c0 = gi * g, n = std::min(g, cols - c0);
      const float* x = w + r * cols + c0;
      const GroupParams p = compute_group_params({x, size_t(n)}, spec, division);  // widens to contain 0
      m.scales[size_t(r * m.n_groups + gi)] = p.scale;
      m.zeros[size_t(r * m.n_groups + gi)] = p.zero;
      for (int64_t i = 0; i < n; ++i) m.codes[size_t(r * cols + c0 + i)] = quantize_code(x[i], p, max_code(spec));
    }
  }
  check_quantized_matrix(m, "rtn_quantize");
  return m;
}

}  // namespace moeq
