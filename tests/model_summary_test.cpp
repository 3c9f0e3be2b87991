// `moeq info`: parameter counts by role, checked against arithmetic from config.json dimensions
// (the formulas of each architecture's modeling code), against the tensors themselves, and
// against the parameter counts transformers reported when it built the fixtures.
#include "model/model_summary.h"

#include <cstdio>
#include <fstream>
#include <memory>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "test_util.h"

namespace moeq {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json load_json(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

TEST(ModelSummary, TrainedMixtralRolesFromConfigArithmetic) {
  const fs::path dir = testing::shared_model("mixtral");
  const json c = load_json(dir / "config.json");
  const int64_t V = c["vocab_size"], H = c["hidden_size"], L = c["num_hidden_layers"], F = c["intermediate_size"];
  const int64_t E = c["num_local_experts"], K = c["num_experts_per_tok"];
  const int64_t heads = c["num_attention_heads"], kv_heads = c["num_key_value_heads"], head_dim = H / heads;
  const ModelSummary s = summarize_model(dir);

  int64_t numel = 0;  // the tensors themselves, no roles involved
  const Checkpoint ck = Checkpoint::open(dir);
  for (const auto& [name, v] : ck.tensors()) numel += v.numel();
  EXPECT_EQ(s.total.params, numel);
  EXPECT_EQ(s.total.params, 27808000);  // README: 27.8 M
  EXPECT_EQ(s.total.bytes, 2 * numel);  // bf16
  EXPECT_EQ(s.total.tensors, 251);

  EXPECT_EQ(s.role(TensorRole::Embedding).params, V * H);
  EXPECT_EQ(s.role(TensorRole::LmHead).params, V * H);
  EXPECT_EQ(s.role(TensorRole::Attention).params, L * (2 * H * heads * head_dim + 2 * H * kv_heads * head_dim));
  EXPECT_EQ(s.role(TensorRole::Router).params, L * E * H);
  EXPECT_EQ(s.role(TensorRole::RoutedExpert).params, L * E * 3 * F * H);
  EXPECT_EQ(s.role(TensorRole::RoutedExpert).tensors, L * E * 3);
  EXPECT_EQ(s.role(TensorRole::Norm).params, (2 * L + 1) * H);
  EXPECT_EQ(s.role(TensorRole::SharedExpert).params, 0);
  EXPECT_EQ(s.role(TensorRole::DenseMlp).params, 0);
  EXPECT_EQ(s.role(TensorRole::Other).params, 0);
  EXPECT_EQ(s.active_params, s.total.params - L * E * 3 * F * H + L * K * 3 * F * H);

  EXPECT_EQ(s.model_type, "mixtral");
  EXPECT_EQ(s.architecture, "MixtralForCausalLM");
  EXPECT_EQ(std::tuple(s.layers, s.moe_layers, s.hidden, s.vocab), std::tuple(L, L, H, V));
  EXPECT_EQ(std::tuple(s.routed_experts, s.top_k, s.shared_experts), std::tuple(E, K, int64_t{0}));
}

// Shared expert with sigmoid gate, qkv biases, and a dense first layer (mlp_only_layers = [0]).
TEST(ModelSummary, TrainedQwen2MoeRolesFromConfigArithmetic) {
  const fs::path dir = testing::shared_model("qwen2_moe");
  const json c = load_json(dir / "config.json");
  const int64_t V = c["vocab_size"], H = c["hidden_size"], L = c["num_hidden_layers"];
  const int64_t E = c["num_experts"], F = c["moe_intermediate_size"], FS = c["shared_expert_intermediate_size"];
  const int64_t FD = c["intermediate_size"], kv_heads = c["num_key_value_heads"], heads = c["num_attention_heads"];
  const int64_t kv = kv_heads * (H / heads);
  const int64_t dense = int64_t(c["mlp_only_layers"].size()), moe = L - dense;
  const ModelSummary s = summarize_model(dir);
  EXPECT_EQ(s.total.params, 25171968);  // README: 25.2 M
  EXPECT_EQ(s.role(TensorRole::Attention).params, L * (2 * H * H + 2 * H * kv + H + 2 * kv));
  EXPECT_EQ(s.role(TensorRole::Router).params, moe * E * H);
  EXPECT_EQ(s.role(TensorRole::RoutedExpert).params, moe * E * 3 * F * H);
  EXPECT_EQ(s.role(TensorRole::SharedExpert).params, moe * 3 * FS * H);
  EXPECT_EQ(s.role(TensorRole::SharedExpertGate).params, moe * H);
  EXPECT_EQ(s.role(TensorRole::DenseMlp).params, dense * 3 * FD * H);
  EXPECT_EQ(s.role(TensorRole::Embedding).params + s.role(TensorRole::LmHead).params, 2 * V * H);
  EXPECT_EQ(std::tuple(s.moe_layers, s.shared_experts), std::tuple(moe, int64_t{1}));
}

// MLA attention (low-rank q and kv), router correction bias, shared experts, dense first layer.
TEST(ModelSummary, DeepseekV3FixtureRolesFromConfigArithmetic) {
  const fs::path dir = testing::fixture_dir("deepseek_v3");
  const json c = load_json(dir / "config.json");
  const int64_t H = c["hidden_size"], L = c["num_hidden_layers"], heads = c["num_attention_heads"];
  const int64_t q_rank = c["q_lora_rank"], kv_rank = c["kv_lora_rank"], rope = c["qk_rope_head_dim"];
  const int64_t nope = c["qk_nope_head_dim"], vd = c["v_head_dim"], E = c["n_routed_experts"];
  const int64_t F = c["moe_intermediate_size"], NS = c["n_shared_experts"], dense = c["first_k_dense_replace"];
  const int64_t moe = L - dense;
  const ModelSummary s = summarize_model(dir);
  const int64_t attention = q_rank * H + heads * (nope + rope) * q_rank + (kv_rank + rope) * H +
                            heads * (nope + vd) * kv_rank + H * heads * vd;
  EXPECT_EQ(s.role(TensorRole::Attention).params, L * attention);
  EXPECT_EQ(s.role(TensorRole::Router).params, moe * (E * H + E));  // weight + e_score_correction_bias
  EXPECT_EQ(s.role(TensorRole::RoutedExpert).params, moe * E * 3 * F * H);
  EXPECT_EQ(s.role(TensorRole::SharedExpert).params, moe * 3 * NS * F * H);
  EXPECT_EQ(s.role(TensorRole::DenseMlp).params, dense * 3 * int64_t(c["intermediate_size"]) * H);
  EXPECT_EQ(s.role(TensorRole::Norm).params, L * (2 * H + q_rank + kv_rank) + H);
  EXPECT_EQ(std::tuple(s.moe_layers, s.shared_experts), std::tuple(moe, NS));
}

// Totals against transformers' num_parameters() as recorded in fixtures_report.json. That count
// leaves out buffers, which DeepSeek-V3's e_score_correction_bias is.
TEST(ModelSummary, FixtureTotalsMatchTransformers) {
  const fs::path fixtures = testing::shared_dir() / "fixtures";
  const json report = load_json(fixtures / "fixtures_report.json");
  ASSERT_EQ(report.size(), 8u);
  for (const auto& [arch, entry] : report.items()) {
    const ModelSummary s = summarize_model(fixtures / arch);
    int64_t buffers = 0;
    const Checkpoint ck = Checkpoint::open(fixtures / arch);
    for (const auto& [name, v] : ck.tensors())
      if (name.ends_with("e_score_correction_bias")) buffers += v.numel();
    EXPECT_EQ(s.total.params - buffers, entry["params"].get<int64_t>()) << arch;
    EXPECT_EQ(s.role(TensorRole::Other).tensors, 0) << arch;
  }
}

TEST(ModelSummary, CliJson) {
  const fs::path dir = testing::shared_model("demo_mixtral");
  const std::string cmd = fmt::format("{}/moeq info {} --json", MOEQ_BINARY_DIR, dir.string());
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  ASSERT_TRUE(pipe);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe.get())) out.append(buf, n);
  const json j = json::parse(out);
  EXPECT_EQ(j["total"]["params"], 4396160);  // README: 4.4 M, tied embeddings
  EXPECT_EQ(j["tied_embeddings"], true);
  EXPECT_EQ(j["roles"]["lm_head"]["params"], 0);
  EXPECT_EQ(j["roles"]["routed_expert"]["params"], 4 * 8 * 3 * 256 * 128);
}

TEST(ModelSummary, ConfigErrorsNameFileAndField) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("moeq_summary_{}", ::getpid());
  fs::create_directories(dir);
  write_safetensors(dir / "model.safetensors", {{"model.norm.weight", DType::F32, {1}, std::vector<std::byte>(4)}});
  auto message = [&] {
    try {
      summarize_model(dir);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message(), (dir / "config.json").string() + ": cannot open for reading");
  std::ofstream(dir / "config.json") << R"({"model_type": "mixtral", "num_hidden_layers": 1, "vocab_size": 8})";
  EXPECT_EQ(message(), (dir / "config.json").string() + ": missing field 'hidden_size'");
  std::ofstream(dir / "config.json") << R"({"model_type": "mixtral", "num_hidden_layers": 1, "hidden_size": "4", "vocab_size": 8})";
  EXPECT_EQ(message(), (dir / "config.json").string() + ": field 'hidden_size' must be an integer");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moeq
