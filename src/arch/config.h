// ModelConfig: a Hugging Face config.json resolved against the architecture registry into the
// numbers and choices the generic decoder needs. Both spellings are read: transformers 5
// (`rope_parameters`) and hub configs (`rope_theta` / `rope_scaling` at top level).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "arch/registry.h"
#include "core/dtype.h"

namespace moeq {

// How the routed experts' top-k is restricted to groups of experts (DeepSeek).
enum class GroupScore : uint8_t {
  None,     // plain top-k over all experts
  Max,      // group score = best expert of the group (DeepSeek-V2 group_limited_greedy)
  Top2Sum,  // group score = sum of the group's two best (DeepSeek-V3)
};

struct ModelConfig {
  std::string model_type;
  ArchDesc arch;
  std::filesystem::path file;  // config.json, for error messages

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // GQA only
  double norm_eps = 1e-5;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;
  bool o_bias = false;
  bool lm_head_bias = false;
  double clip_qkv = 0.0;  // 0: off (OLMoE clamps q/k/v to ±clip_qkv when set)

  // RoPE (rope_type "default" only).
  double rope_theta = 10000.0;
  bool rope_interleave = false;
  // config.json "dtype" ("torch_dtype" on hub configs); see LoadOptions::rope_in_config_dtype.
  DType dtype = DType::F32;
  // A block-scaled FP8 checkpoint (quantization_config.quant_method "fp8", DeepSeek-V3's format):
  // each F8_E4M3 weight has a "<name>_scale_inv" of one fp32 factor per block of this many rows
  // and columns. Its weights are widened to BF16 at load (model/fp8_weights.h).
  struct Fp8Blocks {
    int64_t rows = 128;
    int64_t cols = 128;
  };
  std::optional<Fp8Blocks> fp8;

  // MLA (DeepSeek): q_lora_rank 0 means a plain q_proj.
  int64_t q_lora_rank = 0;
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  // q_a_layernorm / kv_a_layernorm: transformers builds them with RMSNorm's default eps.
  double latent_norm_eps = 1e-6;

  // Feed-forward.
  int64_t intermediate_size = 0;         // dense MLP layers
  int64_t expert_intermediate_size = 0;  // each routed expert
  int64_t shared_intermediate_size = 0;  // all shared experts together; 0 when none
  int64_t num_experts = 0;
  int64_t top_k = 0;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  GroupScore group_score = GroupScore::None;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  double router_jitter = 0.0;  // PhiMoE sparsemixer's jitter_eps
  std::vector<bool> moe_layers;  // per layer: routed experts (true) or a dense MLP

  // GraniteMoE multipliers (1 elsewhere); attention_scale is the softmax scale.
  double embedding_multiplier = 1.0;
  double residual_multiplier = 1.0;
  double logits_scaling = 1.0;
  double attention_scale = 0.0;

  bool is_moe_layer(int64_t layer) const { return moe_layers[size_t(layer)]; }
  int64_t qk_head_dim() const;  // per-head width of q and k (MLA: nope + rope)
  int64_t v_dim() const;        // per-head width of v
  int64_t rope_dim() const;     // rotated width of each q/k head
};

// Parses `dir/config.json` (or a path to a config file). Throws moeq::Error naming the file
// and field for unsupported model types, missing or malformed fields.
ModelConfig load_config(const std::filesystem::path& path);
ModelConfig parse_config(const nlohmann::json& json, const std::filesystem::path& file);
// Whether config.json's quantization_config describes a block-scaled FP8 source checkpoint
// (ModelConfig::fp8) rather than a folder moeq wrote (model/manifest).
bool is_fp8_source(const nlohmann::json& config);

}  // namespace moeq
