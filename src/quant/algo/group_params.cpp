#include "quant/algo/group_params.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cpu/quant_kernels.h"

namespace moeq {

namespace {

struct Range {
  float lo, hi;
};

// min and max in 8 independent lanes: std::minmax_element is one long dependency chain with
// branches, and without -ffast-math the compiler will not vectorise a float min/max reduction.
Range range_of(std::span<const float> w) {
  constexpr size_t kLanes = 8;
  float lo[kLanes], hi[kLanes];
  std::fill_n(lo, kLanes, w[0]);
  std::fill_n(hi, kLanes, w[0]);
  size_t i = 0;
  for (; i + kLanes <= w.size(); i += kLanes)
    for (size_t k = 0; k < kLanes; ++k) {
      lo[k] = std::min(lo[k], w[i + k]);
      hi[k] = std::max(hi[k], w[i + k]);
    }
  for (; i < w.size(); ++i) {
    lo[0] = std::min(lo[0], w[i]);
    hi[0] = std::max(hi[0], w[i]);
  }
  return {*std::min_element(lo, lo + kLanes), *std::max_element(hi, hi + kLanes)};
}

GroupParams params_for_range(float lo, float hi, const QuantSpec& spec, ScaleDivision division) {
  if (spec.symmetric) {
    const float qmax = float((1 << (spec.bits - 1)) - 1);
    const float absmax = std::max(std::fabs(lo), std::fabs(hi));
    return {std::max(divide_scale(absmax, qmax, division), 1e-8f), float(1 << (spec.bits - 1))};
  }
  const float scale = std::max(divide_scale(hi - lo, float((1 << spec.bits) - 1), division), 1e-8f);
  return {scale, round_half_even(-lo / scale)};
}

}  // namespace

GroupParams compute_group_params(std::span<const float> w, const QuantSpec& spec, ScaleDivision division) {
  MOEQ_ASSERT(!w.empty());
  const Range r = range_of(w);
  return params_for_range(std::min(r.lo, 0.0f), std::max(r.hi, 0.0f), spec, division);  // widened to contain 0
}

GroupParams search_group_params(std::span<const float> w, const QuantSpec& spec, const RangeSearch& search,
                                ScaleDivision division) {
  MOEQ_ASSERT(!w.empty() && search.grid > 0);
  const Range r = range_of(w);
  const float lo = std::min(r.lo, 0.0f), hi = std::max(r.hi, 0.0f);
  const int steps = std::max(1, int(search.max_shrink * float(search.grid)));
  std::vector<GroupParams> candidates(static_cast<size_t>(steps));
  candidates[0] = params_for_range(lo, hi, spec, division);
  for (int i = 1; i < steps; ++i) {
    const float p = 1.0f - float(i) / float(search.grid);
    candidates[size_t(i)] = params_for_range(p * lo, p * hi, spec, division);
  }
  // The table of this CPU's best ISA: every table gives the same sums (quant_kernels.h).
  static const QuantKernels& kernels = quant_kernels(best_isa());
  std::vector<float> err(candidates.size());
  kernels.range_errors(w.data(), int64_t(w.size()), candidates.data(), steps, max_code(spec), err.data());
  size_t best = 0;
  for (size_t i = 1; i < err.size(); ++i)
    if (err[i] < err[best]) best = i;
  return candidates[best];
}

void check_int_spec(const QuantSpec& spec, const char* what) {
  if (spec.format != QuantFormat::Int) fail("{}: field 'format' must be Int (got enum value {})", what, int(spec.format));
  if (spec.bits != 2 && spec.bits != 3 && spec.bits != 4 && spec.bits != 8)
    fail("{}: field 'bits' must be 2, 3, 4 or 8, got {}", what, spec.bits);
  if (spec.group_size != 0 && spec.group_size != 32 && spec.group_size != 64 && spec.group_size != 128)
    fail("{}: field 'group_size' must be 0, 32, 64 or 128, got {}", what, spec.group_size);
}

}  // namespace moeq
