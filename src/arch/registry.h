// Architectures as data: one ArchDesc per supported Hugging Face model_type says which shared
// building block the generic decoder (src/model/) uses at each point, which config.json keys
// hold the sizes, and how the checkpoint names its tensors. Adding an architecture that only
// recombines existing blocks means adding one entry to the table in registry.cpp.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace moeq {

enum class AttentionKind : uint8_t {
  Gqa,  // q/k/v/o projections, grouped-query heads
  Mla,  // DeepSeek multi-head latent attention (low-rank q and kv, decoupled RoPE part)
};

enum class QkNormKind : uint8_t {
  None,
  PerHead,  // RMSNorm over each head's head_dim (Qwen3-MoE)
  Full,     // RMSNorm over the whole q and k projections (OLMoE)
};

enum class NormKind : uint8_t { RmsNorm, LayerNorm };

enum class RouterKind : uint8_t {
  SoftmaxTopK,   // softmax over all experts, top-k of the probabilities (optionally group-limited)
  TopKSoftmax,   // top-k of the logits, softmax over the k chosen (GraniteMoE / JetMoE)
  SigmoidBias,   // sigmoid scores, top-k chosen on scores + e_score_correction_bias (DeepSeek-V3)
  SparseMixer,   // PhiMoE sparsemixer in eval mode (top-2, masked softmax per pick)
};

enum class SharedExpertKind : uint8_t {
  None,
  Plain,         // n_shared_experts × moe_intermediate_size, always added (DeepSeek)
  SigmoidGated,  // shared_expert_intermediate_size, scaled by sigmoid(shared_expert_gate · x) (Qwen2-MoE)
};

enum class DenseLayerRule : uint8_t {
  None,           // every layer is MoE
  MlpOnlyLayers,  // mlp_only_layers + decoder_sparse_step (Qwen-MoE)
  FirstKDense,    // first_k_dense_replace (DeepSeek)
};

enum class ExpertStorage : uint8_t {
  PerExpert,  // experts.{e}.{gate,up,down} 2-D tensors
  Fused3d,    // input_linear [E, 2·ffn, H] (gate rows then up rows) and output_linear [E, H, ffn]
};

// A boolean that config.json may set under `key`; `fallback` when absent (or when key is empty).
struct ConfigFlag {
  std::string_view key;
  bool fallback = false;
};

struct TensorNames {
  std::string_view moe_block;  // "block_sparse_moe" or "mlp" (under model.layers.{i}.)
  std::string_view router;     // "gate" or "router.layer"
  // Expert projections gate, up, down. Fused3d: {"input_linear", "input_linear", "output_linear"}.
  std::array<std::string_view, 3> expert_proj;
  std::string_view shared_expert;  // "shared_expert" or "shared_experts"
};

struct ArchDesc {
  std::string_view model_type;
  AttentionKind attention = AttentionKind::Gqa;
  QkNormKind qk_norm = QkNormKind::None;
  NormKind norm = NormKind::RmsNorm;
  RouterKind router = RouterKind::SoftmaxTopK;
  SharedExpertKind shared = SharedExpertKind::None;
  DenseLayerRule dense_rule = DenseLayerRule::None;
  ExpertStorage experts = ExpertStorage::PerExpert;
  bool granite_multipliers = false;  // embedding/residual/attention/logits multipliers
  bool head_dim_from_hidden = false; // ignore config head_dim (PhiMoE derives it)
  // Whether a model built in bf16 keeps bf16-rounded RoPE frequencies in its buffer
  // (LoadOptions::rope_in_config_dtype); PhiMoE recomputes them in fp32 on every forward.
  bool inv_freq_in_model_dtype = true;
  // config.json keys, in order of preference (hub and transformers-5 spellings differ).
  std::vector<std::string_view> num_experts_keys{};
  std::string_view expert_ffn_key{};
  ConfigFlag qkv_bias{};      // bias on q, k, v (MLA: on q_a and kv_a)
  bool o_bias_with_qkv = false;  // o_proj carries a bias whenever q/k/v do (Llama attention_bias)
  ConfigFlag norm_topk{};     // renormalise the k routing weights to sum 1
  ConfigFlag rope_interleave{};  // rotate (x[2i], x[2i+1]) pairs instead of (x[i], x[i+d/2])
  TensorNames names{};
};

// The description for `model_type`, or moeq::Error naming `config_file` and listing the
// supported types.
const ArchDesc& arch_for(std::string_view model_type, const std::string& config_file);
std::vector<std::string_view> supported_model_types();

}  // namespace moeq
