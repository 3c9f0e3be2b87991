// What each Hugging Face tensor of a supported MoE checkpoint is for: its role, layer, expert
// and projection, decided from the name alone. The one place that knows HF naming; `moeq info`,
// bit allocation and the loaders ask here instead of matching names themselves.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moeq {

// What a weight matrix is for. Bit allocation, recipes and reports key on this.
enum class TensorRole : uint8_t {
  Embedding, LmHead, Norm, Attention, Router, RoutedExpert, SharedExpert, SharedExpertGate, DenseMlp, Other
};

// `expert` for a tensor that stacks every routed expert in its first dimension (granitemoe's
// input_linear/output_linear [experts, out, in], transformers' fused experts.gate_up_proj).
inline constexpr int kAllExperts = -2;

struct TensorInfo {
  TensorRole role = TensorRole::Other;
  int layer = -1;           // decoder layer, -1 for embedding / lm_head / final norm
  int expert = -1;          // routed expert index, kAllExperts for stacked experts, else -1
  // "q","k","v","o","qkv","q_a","q_b","kv_a","kv_b" (attention); "gate","up","down","gate_up"
  // (MLPs and experts; mixtral/phimoe w1/w3/w2 map to gate/up/down); "router"; "shared_gate";
  // norms: "input_norm","post_attention_norm","final_norm","q_norm","k_norm","q_a_norm",
  // "kv_a_norm"; "embed", "lm_head"; empty for Other.
  std::string projection;
  // The parameter's own name: "weight", "bias", or "e_score_correction_bias" (DeepSeek-V3's
  // router bias, which selects experts but does not weight them).
  std::string param = "weight";
  // The weight of a matrix multiply (lm_head, attention, router, experts, MLPs): what the
  // quantizers may touch. Embeddings are lookups, norms and biases are vectors.
  bool linear = false;
};

// Classifies any tensor name of mixtral, phimoe, qwen2_moe, qwen3_moe, olmoe, deepseek_v2/v3 and
// granitemoe(shared) checkpoints. Unknown names come back as TensorRole::Other (layer still set
// when the name has one), never as an error: callers decide whether Other is acceptable.
TensorInfo classify_tensor(std::string_view name);

// Lower-case names for reports and JSON: "embedding", "lm_head", "norm", "attention", "router",
// "routed_expert", "shared_expert", "shared_expert_gate", "dense_mlp", "other".
std::string_view role_name(TensorRole role);
// role_name of each, in order.
std::vector<std::string_view> role_names(std::span<const TensorRole> roles);

}  // namespace moeq
