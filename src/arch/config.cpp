#include "arch/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace moeq {
namespace {

using nlohmann::json;

// Typed access to config.json fields; every failure names the file and the field.
class Fields {
 public:
  Fields(const json& j, std::string file) : j_(j), file_(std::move(file)) {}

  // nullptr when the key is absent or null (HF writes unset options as null).
  const json* find(std::string_view key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  int64_t req_int(std::string_view key) const {
    const json* v = find(key);
    if (!v) fail("{}: missing field '{}'", file_, key);
    return as_int(*v, key);
  }
  int64_t req_int_any(const std::vector<std::string_view>& keys) const {
    for (auto key : keys)
      if (const json* v = find(key)) return as_int(*v, key);
    fail("{}: missing field '{}'", file_, keys.front());
  }
  int64_t opt_int(std::string_view key, int64_t fallback) const {
    const json* v = find(key);
    return v ? as_int(*v, key) : fallback;
  }
  double opt_num(std::string_view key, double fallback) const {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_number()) fail("{}: field '{}' must be a number", file_, key);
    return v->get<double>();
  }
  bool opt_bool(std::string_view key, bool fallback) const {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) fail("{}: field '{}' must be true or false", file_, key);
    return v->get<bool>();
  }
  bool flag(ConfigFlag f) const { return f.key.empty() ? f.fallback : opt_bool(f.key, f.fallback); }
  std::string opt_str(std::string_view key, std::string fallback) const {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_string()) fail("{}: field '{}' must be a string", file_, key);
    return v->get<std::string>();
  }
  std::vector<int64_t> opt_int_list(std::string_view key) const {
    std::vector<int64_t> out;
    const json* v = find(key);
    if (!v) return out;
    if (!v->is_array()) fail("{}: field '{}' must be a list of integers", file_, key);
    for (const auto& e : *v) out.push_back(as_int(e, key));
    return out;
  }
  Fields sub(std::string_view key) const {
    const json* v = find(key);
    if (!v->is_object()) fail("{}: field '{}' must be an object", file_, key);
    return Fields(*v, file_ + " " + std::string(key));
  }
  [[noreturn]] void bad(std::string_view key, std::string_view why) const {
    fail("{}: field '{}' {}", file_, key, why);
  }

 private:
  int64_t as_int(const json& v, std::string_view key) const {
    if (!v.is_number_integer()) fail("{}: field '{}' must be an integer", file_, key);
    return v.get<int64_t>();
  }
  const json& j_;
  std::string file_;
};

// RoPE: transformers 5 nests theta and type in rope_parameters; hub configs put rope_theta at
// top level and the type in rope_scaling (null for plain RoPE).
void parse_rope(const Fields& f, ModelConfig& c) {
  std::string type = "default";
  if (f.find("rope_parameters")) {
    Fields rp = f.sub("rope_parameters");
    c.rope_theta = rp.opt_num("rope_theta", c.rope_theta);
    type = rp.opt_str("rope_type", rp.opt_str("type", type));
    if (type != "default") rp.bad("rope_type", fmt::format("is '{}'; only 'default' RoPE is supported", type));
    return;
  }
  c.rope_theta = f.opt_num("rope_theta", c.rope_theta);
  if (f.find("rope_scaling")) {
    Fields rs = f.sub("rope_scaling");
    type = rs.opt_str("rope_type", rs.opt_str("type", type));
    if (type != "default") rs.bad("rope_type", fmt::format("is '{}'; only 'default' RoPE is supported", type));
  }
}

void parse_mla(const Fields& f, ModelConfig& c) {
  c.q_lora_rank = f.opt_int("q_lora_rank", 0);
  c.kv_lora_rank = f.req_int("kv_lora_rank");
  c.qk_nope_head_dim = f.req_int("qk_nope_head_dim");
  c.qk_rope_head_dim = f.req_int("qk_rope_head_dim");
  c.v_head_dim = f.req_int("v_head_dim");
  if (c.qk_rope_head_dim % 2) f.bad("qk_rope_head_dim", "must be even");
}

void parse_routing(const Fields& f, ModelConfig& c) {
  const ArchDesc& a = c.arch;
  c.num_experts = f.req_int_any(a.num_experts_keys);
  c.top_k = f.req_int("num_experts_per_tok");
  if (c.num_experts < 1) f.bad(a.num_experts_keys.front(), "must be at least 1");
  if (c.top_k < 1 || c.top_k > c.num_experts) f.bad("num_experts_per_tok", "must be in [1, number of experts]");
  c.expert_intermediate_size = f.req_int(a.expert_ffn_key);
  c.norm_topk_prob = f.flag(a.norm_topk);
  c.routed_scaling_factor = f.opt_num("routed_scaling_factor", 1.0);
  if (a.router == RouterKind::SparseMixer) {
    c.router_jitter = f.opt_num("router_jitter_noise", 0.01);
    if (c.top_k != 2) f.bad("num_experts_per_tok", "must be 2 for PhiMoE's sparsemixer");
  }
  if (a.router == RouterKind::SigmoidBias) {
    c.group_score = GroupScore::Top2Sum;
  } else if (a.attention == AttentionKind::Mla) {
    std::string method = f.opt_str("topk_method", "greedy");
    if (method == "group_limited_greedy") c.group_score = GroupScore::Max;
    else if (method != "greedy") f.bad("topk_method", fmt::format("is '{}'; expected greedy or group_limited_greedy", method));
  }
  if (c.group_score != GroupScore::None) {
    c.n_group = f.opt_int("n_group", 1);
    c.topk_group = f.opt_int("topk_group", 1);
    if (c.n_group < 1 || c.num_experts % c.n_group) f.bad("n_group", "must divide the number of experts");
    if (c.topk_group < 1 || c.topk_group > c.n_group) f.bad("topk_group", "must be in [1, n_group]");
    if (c.group_score == GroupScore::Top2Sum && c.num_experts / c.n_group < 2)
      f.bad("n_group", "leaves fewer than 2 experts per group");
  }
}

void parse_layers(const Fields& f, ModelConfig& c) {
  const ArchDesc& a = c.arch;
  c.moe_layers.assign(size_t(c.num_layers), true);
  if (a.dense_rule == DenseLayerRule::MlpOnlyLayers) {
    auto only = f.opt_int_list("mlp_only_layers");
    int64_t step = f.opt_int("decoder_sparse_step", 1);
    if (step < 1) f.bad("decoder_sparse_step", "must be at least 1");
    for (int64_t i = 0; i < c.num_layers; ++i)
      c.moe_layers[size_t(i)] = std::find(only.begin(), only.end(), i) == only.end() && (i + 1) % step == 0;
  } else if (a.dense_rule == DenseLayerRule::FirstKDense) {
    int64_t k = f.opt_int("first_k_dense_replace", 0);
    for (int64_t i = 0; i < std::min(k, c.num_layers); ++i) c.moe_layers[size_t(i)] = false;
  }
  if (std::find(c.moe_layers.begin(), c.moe_layers.end(), false) != c.moe_layers.end())
    c.intermediate_size = f.req_int("intermediate_size");
  if (a.shared == SharedExpertKind::SigmoidGated) {
    c.shared_intermediate_size = f.opt_int("shared_expert_intermediate_size", 0);
  } else if (a.shared == SharedExpertKind::Plain) {
    c.shared_intermediate_size = f.opt_int("n_shared_experts", 0) * c.expert_intermediate_size;
  }
}

void parse_attention(const Fields& f, ModelConfig& c) {
  const ArchDesc& a = c.arch;
  c.num_heads = f.req_int("num_attention_heads");
  if (c.num_heads < 1) f.bad("num_attention_heads", "must be at least 1");
  c.num_kv_heads = f.opt_int("num_key_value_heads", c.num_heads);
  if (c.num_kv_heads < 1 || c.num_heads % c.num_kv_heads) f.bad("num_key_value_heads", "must divide num_attention_heads");
  c.qkv_bias = f.flag(a.qkv_bias);
  c.o_bias = a.o_bias_with_qkv && c.qkv_bias;
  c.clip_qkv = f.opt_num("clip_qkv", 0.0);
  c.rope_interleave = f.flag(a.rope_interleave);
  if (a.attention == AttentionKind::Mla) {
    parse_mla(f, c);
    c.num_kv_heads = c.num_heads;  // MLA expands the latent into one k/v per head
    c.attention_scale = 1.0 / std::sqrt(double(c.qk_head_dim()));
    return;
  }
  const json* hd = f.find("head_dim");
  if (hd && !a.head_dim_from_hidden) {
    c.head_dim = f.req_int("head_dim");
  } else {
    if (c.hidden_size % c.num_heads) f.bad("num_attention_heads", "must divide hidden_size");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim < 2 || c.head_dim % 2) f.bad("head_dim", "must be even and positive");
  c.attention_scale = 1.0 / std::sqrt(double(c.head_dim));
}

// quantization_config of a block-scaled FP8 checkpoint. moeq's own quantization_config (a
// quantized folder) is read by model/manifest; other methods are not source formats moeq reads.
void parse_fp8_source(const json& j, ModelConfig& c) {
  if (!is_fp8_source(j)) return;
  const Fields q(j.at("quantization_config"), c.file.string() + ": quantization_config");
  if (const std::string fmt = q.opt_str("fmt", "e4m3"); fmt != "e4m3")
    q.bad("fmt", fmt::format("is '{}'; moeq reads e4m3 FP8 weights only", fmt));
  if (const std::string scheme = q.opt_str("activation_scheme", "dynamic"); scheme != "dynamic")
    q.bad("activation_scheme", fmt::format("is '{}'; moeq reads FP8 weights with dynamic activations only", scheme));
  ModelConfig::Fp8Blocks blocks;
  if (const json* size = q.find("weight_block_size")) {
    if (!size->is_array() || size->size() != 2 || !(*size)[0].is_number_integer() || !(*size)[1].is_number_integer() ||
        (*size)[0].get<int64_t>() < 1 || (*size)[1].get<int64_t>() < 1)
      q.bad("weight_block_size", "must be [rows, cols], two positive integers");
    blocks = {(*size)[0].get<int64_t>(), (*size)[1].get<int64_t>()};
  }
  c.fp8 = blocks;
}

}  // namespace

bool is_fp8_source(const json& config) {
  const auto qc = config.find("quantization_config");
  return qc != config.end() && qc->is_object() && qc->value("quant_method", json()) == "fp8";
}

int64_t ModelConfig::qk_head_dim() const {
  return arch.attention == AttentionKind::Mla ? qk_nope_head_dim + qk_rope_head_dim : head_dim;
}
int64_t ModelConfig::v_dim() const { return arch.attention == AttentionKind::Mla ? v_head_dim : head_dim; }
int64_t ModelConfig::rope_dim() const { return arch.attention == AttentionKind::Mla ? qk_rope_head_dim : head_dim; }

ModelConfig parse_config(const json& j, const std::filesystem::path& file) {
  if (!j.is_object()) fail("{}: expected a JSON object", file.string());
  Fields f(j, file.string());
  ModelConfig c;
  c.file = file;
  c.model_type = f.opt_str("model_type", "");
  if (c.model_type.empty()) f.bad("model_type", "is missing");
  c.arch = arch_for(c.model_type, file.string());
  if (std::string act = f.opt_str("hidden_act", "silu"); act != "silu")
    f.bad("hidden_act", fmt::format("is '{}'; only silu is supported", act));

  c.vocab_size = f.req_int("vocab_size");
  c.hidden_size = f.req_int("hidden_size");
  c.num_layers = f.req_int("num_hidden_layers");
  if (c.vocab_size < 1) f.bad("vocab_size", "must be at least 1");
  if (c.hidden_size < 1) f.bad("hidden_size", "must be at least 1");
  if (c.num_layers < 1) f.bad("num_hidden_layers", "must be at least 1");
  c.norm_eps = f.opt_num("rms_norm_eps", 1e-5);
  c.tie_word_embeddings = f.opt_bool("tie_word_embeddings", false);
  c.lm_head_bias = f.opt_bool("lm_head_bias", false);
  const std::string dtype = f.opt_str("dtype", f.opt_str("torch_dtype", "float32"));
  if (dtype == "bfloat16") c.dtype = DType::BF16;
  else if (dtype == "float16") c.dtype = DType::F16;
  else if (dtype != "float32") f.bad("dtype", fmt::format("is '{}'; expected bfloat16, float16 or float32", dtype));

  parse_fp8_source(j, c);
  parse_attention(f, c);
  parse_rope(f, c);
  parse_routing(f, c);
  parse_layers(f, c);
  if (c.arch.granite_multipliers) {
    c.embedding_multiplier = f.opt_num("embedding_multiplier", 1.0);
    c.residual_multiplier = f.opt_num("residual_multiplier", 1.0);
    c.logits_scaling = f.opt_num("logits_scaling", 1.0);
    c.attention_scale = f.opt_num("attention_multiplier", 1.0);
  }
  return c;
}

ModelConfig load_config(const std::filesystem::path& path) {
  auto file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  std::ifstream in(file);
  if (!in) fail("{}: cannot open", file.string());
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON ({})", file.string(), e.what());
  }
  return parse_config(j, file);
}

}  // namespace moeq
