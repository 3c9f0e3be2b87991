// Tensor roles over every tensor of every fixture and trained model: nothing left as Other, and
// the decoded structure (layers, experts, projections) agrees with the tensors' shapes and config.
#include "arch/tensor_roles.h"

#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "test_util.h"

namespace moeq {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> all_checkpoints() {
  const fs::path shared = testing::shared_dir();
  std::vector<fs::path> dirs;
  for (const char* arch : {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3", "granitemoe", "phimoe"})
    dirs.push_back(shared / "fixtures" / arch);
  for (const char* model : {"mixtral", "qwen2_moe", "qwen3_moe", "demo_mixtral"}) dirs.push_back(shared / "models" / model);
  return dirs;
}

// Checks one checkpoint's classification against its own shapes and config.json.
void check_checkpoint(const fs::path& dir) {
  SCOPED_TRACE(dir.string());
  const Checkpoint ck = Checkpoint::open(dir);
  std::ifstream config_file(dir / "config.json");
  const nlohmann::json config = nlohmann::json::parse(config_file);
  const int layers = config.at("num_hidden_layers").get<int>();
  const int64_t hidden = config.at("hidden_size").get<int64_t>();

  std::map<TensorRole, int> count;
  std::map<int, int64_t> router_rows;                                  // layer → experts
  std::map<int, std::map<int, std::set<std::string>>> expert_projs;   // layer → expert → projections
  std::set<int> seen_layers;
  for (const auto& [name, v] : ck.tensors()) {
    const TensorInfo info = classify_tensor(name);
    ++count[info.role];
    EXPECT_NE(info.role, TensorRole::Other) << name;
    EXPECT_FALSE(info.projection.empty()) << name;
    if (info.layer >= 0) seen_layers.insert(info.layer);
    // Linear weights are matrices (stacked experts: one matrix per expert); everything else is a vector
    // except the embedding table.
    const size_t rank = info.expert == kAllExperts ? 3 : 2;
    const size_t expected_rank = info.linear ? rank : info.role == TensorRole::Embedding ? 2 : 1;
    EXPECT_EQ(v.shape.size(), expected_rank) << name;
    if (info.role == TensorRole::Router && info.linear) {
      EXPECT_EQ(v.shape[1], hidden) << name;
      router_rows[info.layer] = v.shape[0];
    }
    if (info.role == TensorRole::RoutedExpert) {
      EXPECT_TRUE(info.expert >= 0 || info.expert == kAllExperts) << name;
      expert_projs[info.layer][info.expert].insert(info.projection);
      if (info.expert == kAllExperts) expert_projs[info.layer][info.expert].insert("experts=" + std::to_string(v.shape[0]));
    }
  }
  EXPECT_EQ(seen_layers.size(), size_t(layers));
  EXPECT_EQ(count[TensorRole::Embedding], 1);
  EXPECT_EQ(count[TensorRole::LmHead], config.value("tie_word_embeddings", false) ? 0 : 1);
  EXPECT_FALSE(router_rows.empty());
  // Every MoE layer holds exactly its router's experts, each with gate, up and down.
  EXPECT_EQ(expert_projs.size(), router_rows.size());
  for (const auto& [layer, experts] : expert_projs) {
    const int64_t n = router_rows.at(layer);
    if (experts.contains(kAllExperts)) {
      EXPECT_EQ(experts.at(kAllExperts), (std::set<std::string>{"down", "gate_up", "experts=" + std::to_string(n)}));
      continue;
    }
    ASSERT_EQ(int64_t(experts.size()), n) << "layer " << layer;
    for (const auto& [e, projs] : experts) {
      EXPECT_LT(e, n);
      EXPECT_EQ(projs, (std::set<std::string>{"gate", "up", "down"})) << "layer " << layer << " expert " << e;
    }
  }
}

TEST(TensorRoles, EveryTensorOfEveryCheckpoint) {
  for (const fs::path& dir : all_checkpoints()) check_checkpoint(dir);
}

struct Expected {
  const char* name;
  TensorRole role;
  int layer, expert;
  const char* projection;
  const char* param;
  bool linear;
};

TEST(TensorRoles, SpotChecks) {
  using R = TensorRole;
  const Expected cases[] = {
      {"model.embed_tokens.weight", R::Embedding, -1, -1, "embed", "weight", false},
      {"lm_head.weight", R::LmHead, -1, -1, "lm_head", "weight", true},
      {"model.norm.bias", R::Norm, -1, -1, "final_norm", "bias", false},
      {"model.layers.2.input_layernorm.weight", R::Norm, 2, -1, "input_norm", "weight", false},
      {"model.layers.0.post_attention_layernorm.bias", R::Norm, 0, -1, "post_attention_norm", "bias", false},
      {"model.layers.1.self_attn.q_proj.bias", R::Attention, 1, -1, "q", "bias", false},
      {"model.layers.7.self_attn.o_proj.weight", R::Attention, 7, -1, "o", "weight", true},
      {"model.layers.1.self_attn.k_norm.weight", R::Norm, 1, -1, "k_norm", "weight", false},
      {"model.layers.1.self_attn.kv_a_proj_with_mqa.weight", R::Attention, 1, -1, "kv_a", "weight", true},
      {"model.layers.1.self_attn.kv_a_layernorm.weight", R::Norm, 1, -1, "kv_a_norm", "weight", false},
      {"model.layers.2.self_attn.q_b_proj.weight", R::Attention, 2, -1, "q_b", "weight", true},
      {"model.layers.3.block_sparse_moe.gate.weight", R::Router, 3, -1, "router", "weight", true},
      {"model.layers.3.block_sparse_moe.experts.5.w1.weight", R::RoutedExpert, 3, 5, "gate", "weight", true},
      {"model.layers.3.block_sparse_moe.experts.5.w3.weight", R::RoutedExpert, 3, 5, "up", "weight", true},
      {"model.layers.3.block_sparse_moe.experts.15.w2.weight", R::RoutedExpert, 3, 15, "down", "weight", true},
      {"model.layers.1.mlp.gate.weight", R::Router, 1, -1, "router", "weight", true},
      {"model.layers.1.mlp.gate.e_score_correction_bias", R::Router, 1, -1, "router", "e_score_correction_bias", false},
      {"model.layers.1.mlp.experts.31.up_proj.weight", R::RoutedExpert, 1, 31, "up", "weight", true},
      {"model.layers.1.mlp.shared_expert.down_proj.weight", R::SharedExpert, 1, -1, "down", "weight", true},
      {"model.layers.1.mlp.shared_experts.gate_proj.weight", R::SharedExpert, 1, -1, "gate", "weight", true},
      {"model.layers.1.mlp.shared_expert_gate.weight", R::SharedExpertGate, 1, -1, "shared_gate", "weight", true},
      {"model.layers.0.mlp.gate_proj.weight", R::DenseMlp, 0, -1, "gate", "weight", true},
      {"model.layers.0.block_sparse_moe.input_linear.weight", R::RoutedExpert, 0, kAllExperts, "gate_up", "weight", true},
      {"model.layers.0.block_sparse_moe.output_linear.weight", R::RoutedExpert, 0, kAllExperts, "down", "weight", true},
      {"model.layers.0.block_sparse_moe.router.layer.weight", R::Router, 0, -1, "router", "weight", true},
      {"model.layers.0.shared_mlp.input_linear.weight", R::SharedExpert, 0, -1, "gate_up", "weight", true},
      {"model.layers.0.shared_mlp.output_linear.weight", R::SharedExpert, 0, -1, "down", "weight", true},
      {"model.layers.4.mlp.experts.gate_up_proj", R::RoutedExpert, 4, kAllExperts, "gate_up", "weight", true},
      // Not part of any supported model: Other, keeping the layer for the message.
      {"model.layers.2.mlp.experts.3.foo.weight", R::Other, 2, -1, "", "weight", false},
      {"model.layers.x.self_attn.q_proj.weight", R::Other, -1, -1, "", "weight", false},
      {"model.rotary_emb.inv_freq", R::Other, -1, -1, "", "weight", false},
      {"model.layers.2.block_sparse_moe.gate_proj.weight", R::Other, 2, -1, "", "weight", false},
  };
  for (const Expected& c : cases) {
    const TensorInfo info = classify_tensor(c.name);
    EXPECT_EQ(role_name(info.role), role_name(c.role)) << c.name;
    EXPECT_EQ(info.layer, c.layer) << c.name;
    EXPECT_EQ(info.expert, c.expert) << c.name;
    EXPECT_EQ(info.projection, c.projection) << c.name;
    EXPECT_EQ(info.param, c.param) << c.name;
    EXPECT_EQ(info.linear, c.linear) << c.name;
  }
}

}  // namespace
}  // namespace moeq
