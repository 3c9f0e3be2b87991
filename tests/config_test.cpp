// config.json → ModelConfig for every supported architecture, both config spellings, and the
// errors for what is not supported or malformed.
#include <cmath>

#include <nlohmann/json.hpp>

#include "arch/config.h"
#include "core/error.h"
#include "test_util.h"

namespace moeq {
namespace {

using nlohmann::json;

ModelConfig fixture_config(const std::string& name) {
  return load_config(testing::fixture_dir(name) / "config.json");
}

// The message of the moeq::Error that parse_config throws for j.
std::string error_of(const json& j) {
  try {
    parse_config(j, "some/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

json hub_mixtral() {
  return json::parse(R"({
    "model_type": "mixtral", "vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
    "num_local_experts": 8, "num_experts_per_tok": 2, "rms_norm_eps": 1e-5,
    "rope_theta": 1000000.0, "rope_scaling": null, "torch_dtype": "bfloat16"})");
}

TEST(Config, MixtralFixtureDerivesHeadDimFromHidden) {
  ModelConfig c = fixture_config("mixtral");
  EXPECT_EQ(c.head_dim, 64 / 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.moe_layers, std::vector<bool>(3, true));
  EXPECT_DOUBLE_EQ(c.attention_scale, 0.25);
}

TEST(Config, QwenMoeDenseLayersAndSharedExpert) {
  ModelConfig q2 = fixture_config("qwen2_moe");
  EXPECT_EQ(q2.moe_layers, (std::vector<bool>{false, true, true}));
  EXPECT_EQ(q2.intermediate_size, 128);
  EXPECT_EQ(q2.expert_intermediate_size, 48);
  EXPECT_EQ(q2.shared_intermediate_size, 96);
  EXPECT_TRUE(q2.qkv_bias);
  EXPECT_FALSE(q2.o_bias);
  ModelConfig q3 = fixture_config("qwen3_moe");
  EXPECT_EQ(q3.head_dim, 16);
  EXPECT_EQ(q3.arch.qk_norm, QkNormKind::PerHead);
  EXPECT_TRUE(q3.norm_topk_prob);
}

TEST(Config, DecoderSparseStepSkipsLayers) {
  json j = json::parse(R"({"model_type": "qwen2_moe", "vocab_size": 10, "hidden_size": 8,
    "num_hidden_layers": 4, "num_attention_heads": 2, "intermediate_size": 16, "num_experts": 4,
    "num_experts_per_tok": 2, "moe_intermediate_size": 4, "decoder_sparse_step": 2,
    "mlp_only_layers": [3]})");
  EXPECT_EQ(parse_config(j, "config.json").moe_layers, (std::vector<bool>{false, true, false, false}));
}

TEST(Config, DeepseekMlaRoutingAndDenseFirstLayers) {
  ModelConfig v2 = fixture_config("deepseek_v2");
  EXPECT_EQ(v2.arch.attention, AttentionKind::Mla);
  EXPECT_EQ(v2.q_lora_rank, 0);
  EXPECT_EQ(v2.qk_head_dim(), 24);
  EXPECT_EQ(v2.group_score, GroupScore::None);
  EXPECT_EQ(v2.shared_intermediate_size, 2 * 32);
  EXPECT_TRUE(v2.rope_interleave);
  EXPECT_EQ(v2.moe_layers, (std::vector<bool>{false, true, true}));
  ModelConfig v3 = fixture_config("deepseek_v3");
  EXPECT_EQ(v3.arch.router, RouterKind::SigmoidBias);
  EXPECT_EQ(v3.group_score, GroupScore::Top2Sum);
  EXPECT_EQ(v3.n_group, 2);
  EXPECT_EQ(v3.topk_group, 1);
  EXPECT_DOUBLE_EQ(v3.routed_scaling_factor, 2.5);
  EXPECT_EQ(v3.q_lora_rank, 48);
  EXPECT_DOUBLE_EQ(v3.attention_scale, 1.0 / std::sqrt(24.0));
}

TEST(Config, GraniteMultipliersAndPhimoeLayerNorm) {
  ModelConfig g = fixture_config("granitemoe");
  EXPECT_DOUBLE_EQ(g.embedding_multiplier, 6.0);
  EXPECT_DOUBLE_EQ(g.residual_multiplier, 0.5);
  EXPECT_DOUBLE_EQ(g.attention_scale, 0.05);
  EXPECT_DOUBLE_EQ(g.logits_scaling, 4.0);
  EXPECT_EQ(g.arch.experts, ExpertStorage::Fused3d);
  ModelConfig p = fixture_config("phimoe");
  EXPECT_EQ(p.arch.norm, NormKind::LayerNorm);
  EXPECT_DOUBLE_EQ(p.router_jitter, 0.01);
}

TEST(Config, DemoModelTiesEmbeddings) {
  ModelConfig c = load_config(testing::shared_model("demo_mixtral"));
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.head_dim, 128 / 4);
}

TEST(Config, HubStyleTopLevelRopeTheta) {
  ModelConfig c = parse_config(hub_mixtral(), "config.json");
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.dtype, DType::BF16);
}

TEST(Config, UnsupportedModelTypeListsSupportedOnes) {
  json j = hub_mixtral();
  j["model_type"] = "llama";
  const std::string msg = error_of(j);
  EXPECT_NE(msg.find("some/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'llama'"), std::string::npos) << msg;
  for (auto type : supported_model_types()) EXPECT_NE(msg.find(type), std::string::npos) << msg;
}

TEST(Config, ErrorsNameFileAndField) {
  json missing = hub_mixtral();
  missing.erase("num_experts_per_tok");
  EXPECT_NE(error_of(missing).find("some/config.json: missing field 'num_experts_per_tok'"), std::string::npos);
  json wrong_type = hub_mixtral();
  wrong_type["hidden_size"] = "4096";
  EXPECT_NE(error_of(wrong_type).find("field 'hidden_size' must be an integer"), std::string::npos);
  json yarn = hub_mixtral();
  yarn["rope_scaling"] = json{{"type", "yarn"}, {"factor", 4.0}};
  EXPECT_NE(error_of(yarn).find("'rope_type' is 'yarn'"), std::string::npos) << error_of(yarn);
  json bad_kv = hub_mixtral();
  bad_kv["num_key_value_heads"] = 5;
  EXPECT_NE(error_of(bad_kv).find("num_key_value_heads"), std::string::npos);
  json no_type = hub_mixtral();
  no_type.erase("model_type");
  EXPECT_NE(error_of(no_type).find("model_type"), std::string::npos);
}

}  // namespace
}  // namespace moeq
