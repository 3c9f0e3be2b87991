// Integer rounding used wherever sizes are split into tiles, groups, blocks or packing units.
#pragma once

#include <cstdint>

namespace moeq {

// ⌈a / b⌉ for a ≥ 0, b > 0.
constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// The smallest multiple of align that is ≥ v (v ≥ 0, align > 0).
constexpr int64_t round_up(int64_t v, int64_t align) { return ceil_div(v, align) * align; }

}  // namespace moeq
