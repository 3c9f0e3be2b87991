// The feed-forward half of an MoE block: route each token to its top-k experts, run every
// expert once on all the tokens it received, scatter-add the weighted outputs, add shared
// experts.
#pragma once

#include <cstdint>

#include "model/blocks.h"

namespace moeq {

// Fills r.chosen / r.weights from r.logits (already [tokens, experts]) with the config's router.
void route_tokens(const ModelConfig& c, const std::vector<float>& correction_bias, LayerRouting& r);

// out[n, hidden] = MoE block applied to the normed hidden states x; records the routing.
void moe_forward(const MoeWeights& w, const ModelConfig& c, const float* x, int64_t n, float* out, Workspace& ws,
                 LayerRouting& routing);

}  // namespace moeq
