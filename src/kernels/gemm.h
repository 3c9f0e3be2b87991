// fp32 matrix multiply with AVX-512 micro-kernels, reading the right-hand matrix in its stored
// dtype: C[m, n] = alpha · A[m, k] · B. B's panels of 32 columns are widened to fp32 and packed
// just before use, so 16-bit weights never exist in fp32 as a whole. Falls back to OpenBLAS on
// CPUs without AVX-512.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace moeq {

struct GemmB {
  enum class Layout : uint8_t {
    NT,  // B = Wᵀ for a row-major W[n, k] (a linear layer's weight, attention keys)
    NN,  // B itself, row-major [k, n] (attention values); fp32 only
  };
  Layout layout = Layout::NT;
  DType dtype = DType::F32;  // F32, BF16 or F16
  const void* data = nullptr;
  int64_t ld = 0;  // row stride of W (NT) or B (NN), in elements
};

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  int64_t lda = 0;
  GemmB b;
  float* c = nullptr;
  int64_t ldc = 0;
  float alpha = 1.0f;
  // Causal attention: when ≥ 0, row i only needs columns j ≤ i + causal (NT: entries beyond
  // are left unwritten) or only reads k-rows kk ≤ i + causal (NN: A is zero beyond them).
  int64_t causal = -1;
};

// B is packed and multiplied in panels of this many columns; a column's result does not depend on
// the panel or the call that holds it, only on A, its own weights and k.
inline constexpr int64_t kGemmPanelCols = 32;

// Runs on the calling thread's OpenMP team when not already inside a parallel region.
void gemm(const GemmArgs& g);

}  // namespace moeq
