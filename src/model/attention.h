// Causal self-attention of one decoder block: GQA (optionally with q/k norms) or DeepSeek MLA,
// RoPE on the positions after the cache's, keys/values appended to the cache.
#pragma once

#include <cstdint>

#include "model/blocks.h"
#include "model/kv_cache.h"

namespace moeq {

struct AttentionContext {
  const ModelConfig& config;
  int64_t batch = 0;
  int64_t seq = 0;
  int64_t past = 0;    // positions already in the cache
  KVCache& kv;         // receives this block's keys/values at [past, past + seq)
  int64_t kv_layer = 0;
  const float* cos = nullptr;  // [seq, rope_dim / 2] angles of positions past..past+seq-1
  const float* sin = nullptr;
  Workspace& ws;
};

// out[batch·seq, hidden] = attention block applied to the normed hidden states x.
void attention_forward(const AttentionWeights& w, const AttentionContext& ctx, const float* x, float* out);

}  // namespace moeq
