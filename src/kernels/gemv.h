// Matrix times a few vectors, streaming the weights once in their stored dtype: the decode-time
// path of DenseLinear, where sgemm's packing would cost more than the product itself.
#pragma once

#include <cstdint>

namespace moeq {

// y[n, rows] = x[n, cols] · Wᵀ for row-major W [rows, cols]; n is small (a handful of tokens).
struct GemvArgs {
  const float* x = nullptr;
  int64_t n = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  float* y = nullptr;
};

void gemv_f32(const GemvArgs& a, const float* w);
void gemv_bf16(const GemvArgs& a, const uint16_t* w);
void gemv_f16(const GemvArgs& a, const uint16_t* w);  // IEEE half

}  // namespace moeq
