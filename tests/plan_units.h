// Units shaped like ../shared/models/qwen2_moe, for the planning tests: 8 layers × hidden 256;
// attention q [256,256], k/v [128,256], o [256,256]; layer 0 a dense MLP (ffn 1024); layers 1-7
// 16 routed experts (ffn 192), router [16,256], a shared expert (ffn 384) and its sigmoid gate
// [1,256]; embedding and lm_head [8192,256]. PlanUnits.MatchQwen2MoeCheckpoint checks every
// name and shape against the real checkpoint.
#pragma once

#include <string>
#include <vector>

#include <fmt/format.h>

#include "quant/plan/unit.h"

namespace moeq::testing {

inline std::vector<plan::QuantUnit> qwen2_moe_units() {
  using R = TensorRole;
  std::vector<plan::QuantUnit> units;
  units.push_back({"model.embed_tokens.weight", R::Embedding, -1, -1, "embed", 8192, 256});
  auto mlp = [&](const std::string& prefix, R role, int layer, int expert, int64_t ffn) {
    units.push_back({prefix + "gate_proj.weight", role, layer, expert, "gate", ffn, 256});
    units.push_back({prefix + "up_proj.weight", role, layer, expert, "up", ffn, 256});
    units.push_back({prefix + "down_proj.weight", role, layer, expert, "down", 256, ffn});
  };
  for (int l = 0; l < 8; ++l) {
    std::string p = fmt::format("model.layers.{}.", l);
    units.push_back({p + "self_attn.q_proj.weight", R::Attention, l, -1, "q", 256, 256});
    units.push_back({p + "self_attn.k_proj.weight", R::Attention, l, -1, "k", 128, 256});
    units.push_back({p + "self_attn.v_proj.weight", R::Attention, l, -1, "v", 128, 256});
    units.push_back({p + "self_attn.o_proj.weight", R::Attention, l, -1, "o", 256, 256});
    if (l == 0) {
      mlp(p + "mlp.", R::DenseMlp, l, -1, 1024);
      continue;
    }
    units.push_back({p + "mlp.gate.weight", R::Router, l, -1, "router", 16, 256});
    for (int e = 0; e < 16; ++e) mlp(fmt::format("{}mlp.experts.{}.", p, e), R::RoutedExpert, l, e, 192);
    mlp(p + "mlp.shared_expert.", R::SharedExpert, l, -1, 384);
    units.push_back({p + "mlp.shared_expert_gate.weight", R::SharedExpertGate, l, -1, "shared_gate", 1, 256});
  }
  units.push_back({"lm_head.weight", R::LmHead, -1, -1, "lm_head", 8192, 256});
  return units;
}

// Parameters of the checkpoint outside those units: 17 RMSNorm weights and the q/k/v biases.
constexpr int64_t kQwen2MoeOtherParams = 17 * 256 + 8 * (256 + 128 + 128);

}  // namespace moeq::testing
