#include "arch/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace moeq {
namespace {

constexpr TensorNames kMixtralNames{"block_sparse_moe", "gate", {"w1", "w3", "w2"}, ""};
constexpr TensorNames kQwenNames{"mlp", "gate", {"gate_proj", "up_proj", "down_proj"}, "shared_expert"};
constexpr TensorNames kDeepseekNames{"mlp", "gate", {"gate_proj", "up_proj", "down_proj"}, "shared_experts"};
constexpr TensorNames kGraniteNames{
    "block_sparse_moe", "router.layer", {"input_linear", "input_linear", "output_linear"}, ""};

std::vector<ArchDesc> make_registry() {
  std::vector<ArchDesc> r;
  {
    ArchDesc a{.model_type = "mixtral"};
    a.num_experts_keys = {"num_local_experts"};
    a.expert_ffn_key = "intermediate_size";
    a.norm_topk = {"", true};
    a.names = kMixtralNames;
    r.push_back(a);
  }
  {
    ArchDesc a{.model_type = "qwen2_moe"};
    a.shared = SharedExpertKind::SigmoidGated;
    a.dense_rule = DenseLayerRule::MlpOnlyLayers;
    a.num_experts_keys = {"num_experts", "num_local_experts"};
    a.expert_ffn_key = "moe_intermediate_size";
    a.qkv_bias = {"qkv_bias", true};  // hub configs omit it: Qwen2-MoE always has q/k/v bias
    a.norm_topk = {"norm_topk_prob", false};
    a.names = kQwenNames;
    r.push_back(a);
  }
  {
    ArchDesc a{.model_type = "qwen3_moe"};
    a.qk_norm = QkNormKind::PerHead;
    a.dense_rule = DenseLayerRule::MlpOnlyLayers;
    a.num_experts_keys = {"num_experts", "num_local_experts"};
    a.expert_ffn_key = "moe_intermediate_size";
    a.qkv_bias = {"attention_bias", false};
    a.o_bias_with_qkv = true;
    a.norm_topk = {"norm_topk_prob", false};
    a.names = kQwenNames;
    r.push_back(a);
  }
  {
    ArchDesc a{.model_type = "olmoe"};
    a.qk_norm = QkNormKind::Full;
    a.num_experts_keys = {"num_experts", "num_local_experts"};
    a.expert_ffn_key = "intermediate_size";
    a.qkv_bias = {"attention_bias", false};
    a.o_bias_with_qkv = true;
    a.norm_topk = {"norm_topk_prob", false};
    a.names = kQwenNames;
    r.push_back(a);
  }
  for (auto type : {"deepseek_v2", "deepseek_v3"}) {
    const bool v3 = std::string_view(type) == "deepseek_v3";
    ArchDesc a{.model_type = type};
    a.attention = AttentionKind::Mla;
    a.router = v3 ? RouterKind::SigmoidBias : RouterKind::SoftmaxTopK;
    a.shared = SharedExpertKind::Plain;
    a.dense_rule = DenseLayerRule::FirstKDense;
    a.num_experts_keys = {"n_routed_experts"};
    a.expert_ffn_key = "moe_intermediate_size";
    a.qkv_bias = {"attention_bias", false};
    a.o_bias_with_qkv = true;
    a.norm_topk = {"norm_topk_prob", v3};
    // V2 applies RoPE as a complex product of (x[2i], x[2i+1]) pairs; V3 makes it a config flag.
    a.rope_interleave = v3 ? ConfigFlag{"rope_interleave", true} : ConfigFlag{"", true};
    a.names = kDeepseekNames;
    r.push_back(a);
  }
  {
    ArchDesc a{.model_type = "granitemoe"};
    a.router = RouterKind::TopKSoftmax;
    a.experts = ExpertStorage::Fused3d;
    a.granite_multipliers = true;
    a.num_experts_keys = {"num_local_experts"};
    a.expert_ffn_key = "intermediate_size";
    a.qkv_bias = {"attention_bias", false};
    a.o_bias_with_qkv = true;
    a.names = kGraniteNames;
    r.push_back(a);
  }
  {
    ArchDesc a{.model_type = "phimoe"};
    a.norm = NormKind::LayerNorm;
    a.router = RouterKind::SparseMixer;
    a.head_dim_from_hidden = true;
    a.inv_freq_in_model_dtype = false;
    a.num_experts_keys = {"num_local_experts"};
    a.expert_ffn_key = "intermediate_size";
    a.qkv_bias = {"attention_bias", false};
    a.o_bias_with_qkv = true;
    a.names = kMixtralNames;
    r.push_back(a);
  }
  return r;
}

const std::vector<ArchDesc>& registry() {
  static const std::vector<ArchDesc> r = make_registry();
  return r;
}

}  // namespace

std::vector<std::string_view> supported_model_types() {
  std::vector<std::string_view> out;
  for (const auto& a : registry()) out.push_back(a.model_type);
  return out;
}

const ArchDesc& arch_for(std::string_view model_type, const std::string& config_file) {
  for (const auto& a : registry())
    if (a.model_type == model_type) return a;
  fail("{}: model_type '{}' is not supported (supported: {})", config_file, model_type,
       fmt::join(supported_model_types(), ", "));
}

}  // namespace moeq
