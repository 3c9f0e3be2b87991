// Row-wise fp32 building blocks of the decoder: norms, activations, softmax, RoPE. Each works
// in place on `rows` contiguous rows of width `dim` and matches transformers' fp32 formulas.
#pragma once

#include <cstdint>

namespace moeq {

// x ← x / sqrt(mean(x²) + eps) · weight
void rms_norm(float* x, int64_t rows, int64_t dim, const float* weight, float eps);
// x ← (x − mean) / sqrt(var + eps) · weight + bias (biased variance, as torch.nn.LayerNorm)
void layer_norm(float* x, int64_t rows, int64_t dim, const float* weight, const float* bias, float eps);
// gate ← silu(gate) · up, n elements
void silu_mul(float* gate, const float* up, int64_t n);
// Numerically stable softmax of one row of n values.
void softmax(float* x, int64_t n);
float sigmoid(float x);
// log Σ exp(x[i]) over n values, stable (max subtracted first).
float log_sum_exp(const float* x, int64_t n);

// Rotary embedding of one head vector of width dim, with cos/sin[dim/2] of its position's
// angles. half: pairs (x[i], x[i+dim/2]) (Llama rotate_half); interleaved: pairs (x[2i], x[2i+1])
// (DeepSeek's complex form; V3's de-interleaving permutes q and k alike, so scores agree).
void rope(float* x, int64_t dim, const float* cos, const float* sin, bool interleaved);

}  // namespace moeq
