#include "quant/algo/group_params.h"

#include <algorithm>

#include "core/error.h"

namespace moeq {

GroupParams compute_group_params(std::span<const float> w, const QuantSpec& spec) {
  MOEQ_ASSERT(!w.empty());
  if (spec.symmetric) {
    float absmax = 0.0f;
    for (float v : w) absmax = std::max(absmax, std::fabs(v));
    const float qmax = float((1 << (spec.bits - 1)) - 1);
    return {std::max(absmax / qmax, 1e-8f), float(1 << (spec.bits - 1))};
  }
  const auto [lo, hi] = std::minmax_element(w.begin(), w.end());
  const float qmax = float((1 << spec.bits) - 1);
  const float scale = std::max((*hi - *lo) / qmax, 1e-8f);
  return {scale, std::nearbyint(-*lo / scale)};
}

void check_int_spec(const QuantSpec& spec, const char* what) {
  if (spec.format != QuantFormat::Int) fail("{}: field 'format' must be Int (got enum value {})", what, int(spec.format));
  if (spec.bits != 2 && spec.bits != 3 && spec.bits != 4 && spec.bits != 8)
    fail("{}: field 'bits' must be 2, 3, 4 or 8, got {}", what, spec.bits);
  if (spec.group_size < 0) fail("{}: field 'group_size' must be >= 0, got {}", what, spec.group_size);
}

}  // namespace moeq
