// Hugging Face tensor names, decoded part by part: "model.layers.3.mlp.experts.5.down_proj.weight"
// → layer 3, routed expert 5, projection "down". Tables below hold every spelling the supported
// architectures use; the walk over the parts is shared by all of them.
#include "arch/tensor_roles.h"

#include <charconv>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace moeq {

namespace {

using Alias = std::pair<std::string_view, std::string_view>;  // HF module name → projection

constexpr Alias kAttentionLinears[] = {
    {"q_proj", "q"}, {"k_proj", "k"}, {"v_proj", "v"}, {"o_proj", "o"}, {"qkv_proj", "qkv"},
    {"q_a_proj", "q_a"}, {"q_b_proj", "q_b"}, {"kv_a_proj_with_mqa", "kv_a"}, {"kv_b_proj", "kv_b"},
};
constexpr Alias kAttentionNorms[] = {
    {"q_norm", "q_norm"}, {"k_norm", "k_norm"}, {"q_a_layernorm", "q_a_norm"}, {"kv_a_layernorm", "kv_a_norm"},
};
constexpr Alias kLayerNorms[] = {
    {"input_layernorm", "input_norm"}, {"post_attention_layernorm", "post_attention_norm"},
};
// MLP and expert projections. Mixtral/PhiMoE experts: w1 = gate, w3 = up, w2 = down.
// GraniteMoE stacks gate and up in input_linear (chunked in that order) and down in output_linear.
constexpr Alias kMlpLinears[] = {
    {"gate_proj", "gate"}, {"up_proj", "up"}, {"down_proj", "down"}, {"gate_up_proj", "gate_up"},
    {"w1", "gate"}, {"w3", "up"}, {"w2", "down"}, {"input_linear", "gate_up"}, {"output_linear", "down"},
};
// GraniteMoE's sparse block holds every expert in two stacked tensors [experts, out, in].
constexpr Alias kStackedExpertLinears[] = {{"input_linear", "gate_up"}, {"output_linear", "down"}};
constexpr std::string_view kSharedExpertModules[] = {"shared_expert", "shared_experts"};
constexpr std::string_view kParams[] = {"weight", "bias", "e_score_correction_bias"};

std::optional<std::string_view> lookup(std::span<const Alias> table, std::string_view key) {
  for (const auto& [hf, ours] : table)
    if (hf == key) return ours;
  return std::nullopt;
}

std::optional<int> parse_index(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

std::vector<std::string_view> split(std::string_view name) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

// Matrices feed the quantizers only through their weight; their biases are vectors.
void assign(TensorInfo& info, TensorRole role, std::string_view projection, bool is_matrix) {
  info.role = role;
  info.projection = projection;
  info.linear = is_matrix && info.param == "weight";
}

// Sets role/projection when `module` (one or two parts) names a linear in `table`.
bool set_linear(TensorInfo& info, TensorRole role, std::span<const Alias> table,
                std::span<const std::string_view> module) {
  if (module.size() != 1) return false;
  auto proj = lookup(table, module[0]);
  if (!proj) return false;
  assign(info, role, *proj, true);
  return true;
}

bool set_norm(TensorInfo& info, std::span<const Alias> table, std::span<const std::string_view> module) {
  if (module.size() != 1) return false;
  auto proj = lookup(table, module[0]);
  if (!proj) return false;
  assign(info, TensorRole::Norm, *proj, false);
  return true;
}

// The feed-forward block of one layer: "mlp.*" or "block_sparse_moe.*" with the block prefix removed.
void classify_ffn(TensorInfo& info, std::span<const std::string_view> m, bool sparse_block) {
  if (m.empty()) return;
  const bool router = (m.size() == 1 && m[0] == "gate") || (m.size() == 2 && m[0] == "router" && m[1] == "layer");
  if (router) {
    assign(info, TensorRole::Router, "router", true);
    return;
  }
  if (m[0] == "experts") {
    // Per-expert "experts.5.w1", or every expert stacked in one tensor "experts.gate_up_proj".
    auto index = m.size() >= 2 ? parse_index(m[1]) : std::nullopt;
    info.expert = index ? *index : kAllExperts;
    set_linear(info, TensorRole::RoutedExpert, kMlpLinears, m.subspan(index ? 2 : 1));
    return;
  }
  if (m.size() == 1 && m[0] == "shared_expert_gate") {
    assign(info, TensorRole::SharedExpertGate, "shared_gate", true);
    return;
  }
  for (std::string_view shared : kSharedExpertModules)
    if (m[0] == shared) {
      set_linear(info, TensorRole::SharedExpert, kMlpLinears, m.subspan(1));
      return;
    }
  if (sparse_block && set_linear(info, TensorRole::RoutedExpert, kStackedExpertLinears, m)) {
    info.expert = kAllExperts;
    return;
  }
  if (!sparse_block) set_linear(info, TensorRole::DenseMlp, kMlpLinears, m);
}

void classify_layer(TensorInfo& info, std::span<const std::string_view> m) {
  if (m.empty()) return;
  if (m[0] == "self_attn") {
    const auto rest = m.subspan(1);
    if (!set_linear(info, TensorRole::Attention, kAttentionLinears, rest)) set_norm(info, kAttentionNorms, rest);
  } else if (m[0] == "mlp" || m[0] == "block_sparse_moe") {
    classify_ffn(info, m.subspan(1), m[0] == "block_sparse_moe");
  } else if (m[0] == "shared_mlp") {  // GraniteMoeShared keeps its shared expert beside the sparse block
    set_linear(info, TensorRole::SharedExpert, kMlpLinears, m.subspan(1));
  } else {
    set_norm(info, kLayerNorms, m);
  }
}

}  // namespace

TensorInfo classify_tensor(std::string_view name) {
  std::vector<std::string_view> parts = split(name);
  TensorInfo info;
  // The last part is the parameter, unless the module is itself a parameter (fused experts).
  for (std::string_view p : kParams)
    if (parts.size() > 1 && parts.back() == p) {
      info.param = p;
      parts.pop_back();
      break;
    }
  std::span<const std::string_view> m = parts;
  if (m.size() == 1 && m[0] == "lm_head") {
    assign(info, TensorRole::LmHead, "lm_head", true);
    return info;
  }
  if (!m.empty() && m[0] == "model") m = m.subspan(1);
  if (m.size() == 1 && m[0] == "embed_tokens") {
    assign(info, TensorRole::Embedding, "embed", false);
  } else if (m.size() == 1 && m[0] == "norm") {
    assign(info, TensorRole::Norm, "final_norm", false);
  } else if (m.size() >= 2 && m[0] == "layers") {
    if (auto layer = parse_index(m[1])) {
      info.layer = *layer;
      classify_layer(info, m.subspan(2));
    }
  }
  if (info.role == TensorRole::Other) {  // a half-matched "experts.3.foo" is no expert and no linear
    info.expert = -1;
    info.projection.clear();
    info.linear = false;
  }
  return info;
}

std::string_view role_name(TensorRole role) {
  switch (role) {
    case TensorRole::Embedding: return "embedding";
    case TensorRole::LmHead: return "lm_head";
    case TensorRole::Norm: return "norm";
    case TensorRole::Attention: return "attention";
    case TensorRole::Router: return "router";
    case TensorRole::RoutedExpert: return "routed_expert";
    case TensorRole::SharedExpert: return "shared_expert";
    case TensorRole::SharedExpertGate: return "shared_expert_gate";
    case TensorRole::DenseMlp: return "dense_mlp";
    case TensorRole::Other: return "other";
  }
  return "other";
}

std::vector<std::string_view> role_names(std::span<const TensorRole> roles) {
  std::vector<std::string_view> names;
  names.reserve(roles.size());
  for (TensorRole role : roles) names.push_back(role_name(role));
  return names;
}

}  // namespace moeq
