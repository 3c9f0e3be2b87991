// The generic decoder against transformers' own fp32 outputs for each architecture's fixture:
// embeddings, every layer's hidden states, router logits and logits within 1e-4.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "arch/config.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test_util.h"

namespace moeq {
namespace {

constexpr float kParityTol = 1e-4f;

std::vector<int32_t> read_ids(const Checkpoint& ref) {
  const TensorView& t = ref.get("input_ids");
  EXPECT_EQ(t.dtype, DType::I32);
  std::vector<int32_t> ids(size_t(t.numel()));
  std::memcpy(ids.data(), t.data, ids.size() * sizeof(int32_t));
  return ids;
}

float max_abs_diff(const float* a, const Tensor& ref) {
  float d = 0.0f;
  for (int64_t i = 0; i < ref.numel(); ++i) d = std::max(d, std::abs(a[i] - ref.data[size_t(i)]));
  return d;
}

class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, HiddenStatesRouterLogitsAndLogitsMatchTransformers) {
  const auto dir = testing::fixture_dir(GetParam());
  // The fixtures' references come from a model built in bf16 and upcast with .float().
  auto model = Model::load(dir, {.rope_in_config_dtype = true});
  Checkpoint ref = Checkpoint::open(dir / "reference.safetensors");
  const std::vector<int32_t> ids = read_ids(ref);
  const int64_t batch = ref.get("input_ids").shape[0], seq = ref.get("input_ids").shape[1];
  const int64_t layers = model->num_layers();

  std::string report;
  auto check = [&](const std::string& name, const float* ours) {
    const float d = max_abs_diff(ours, ref.get(name).to_f32());
    report += fmt::format(" {}={:.2e}", name, d);
    EXPECT_LE(d, kParityTol) << GetParam() << " " << name;
  };

  Tensor hidden = model->embed(ids);
  check("hidden_states.0", hidden.ptr());
  int moe_index = 0;
  for (int i = 0; i < layers; ++i) {
    model->run_block(i, hidden, batch, seq);
    if (i + 1 < layers) check(fmt::format("hidden_states.{}", i + 1), hidden.ptr());
    const auto& routing = model->last_routing()[size_t(i)];
    if (routing.tokens == 0) continue;
    const std::string name = fmt::format("router_logits.{}", moe_index++);
    if (ref.contains(name)) check(name, routing.logits.data());
  }
  model->final_norm(hidden);
  check(fmt::format("hidden_states.{}", layers), hidden.ptr());
  Tensor logits = model->lm_head(hidden);
  check("logits", logits.ptr());
  std::printf("[parity %s]%s\n", GetParam().c_str(), report.c_str());

  // forward() is exactly the block-by-block pipeline.
  Tensor full = model->forward(ids, batch, seq);
  EXPECT_EQ(full.shape, (std::vector<int64_t>{batch, seq, model->vocab_size()}));
  EXPECT_EQ(full.data, logits.data);
}

// Calibrating attention runs only a block's first half: exactly the whole block once every MLP's
// output projection (routed, shared or dense) gives zeros; and it leaves the routing alone.
TEST_P(Parity, RunAttentionIsTheBlockWithItsMlpSilenced) {
  auto model = Model::load(testing::fixture_dir(GetParam()), {.rope_in_config_dtype = true});
  Checkpoint ref = Checkpoint::open(testing::fixture_dir(GetParam()) / "reference.safetensors");
  const int64_t batch = ref.get("input_ids").shape[0], seq = ref.get("input_ids").shape[1];
  std::vector<Tensor> inputs{model->embed(read_ids(ref))}, attention_only;
  for (int i = 0; i < int(model->num_layers()); ++i) {
    Tensor h = inputs.back();
    model->run_block(i, h, batch, seq);
    const std::vector<float> logits = model->last_routing()[size_t(i)].logits;
    attention_only.push_back(inputs.back());
    model->run_attention(i, attention_only.back(), batch, seq);
    EXPECT_EQ(model->last_routing()[size_t(i)].logits, logits) << "layer " << i;
    EXPECT_NE(attention_only.back().data, inputs.back().data) << "layer " << i;
    inputs.push_back(std::move(h));
  }
  int silenced = 0;
  for (LinearSlot& slot : model->linears())
    if (slot.role != TensorRole::Attention && slot.projection == "down") {
      *slot.op = std::make_unique<DenseLinear>(Tensor({(*slot.op)->out_features(), (*slot.op)->in_features()}));
      ++silenced;
    }
  EXPECT_GT(silenced, 0);
  for (int i = 0; i < int(model->num_layers()); ++i) {
    model->run_block(i, inputs[size_t(i)], batch, seq);
    EXPECT_EQ(inputs[size_t(i)].data, attention_only[size_t(i)].data) << GetParam() << " layer " << i;
  }
}

// run_attention then run_mlp is run_block to the bit, with the same routing: calibration runs the
// attention half once and the MLP half for each of its later passes. Whole blocks and halves go
// through the same chunks; `batch` sequences of `seq` tokens from `ids`.
void expect_halves_make_the_block(Model& model, std::span<const int32_t> ids, int64_t batch, int64_t seq,
                                  const std::string& what) {
  Tensor h = model.embed(ids);
  for (int i = 0; i < int(model.num_layers()); ++i) {
    Tensor halves = h;
    model.run_attention(i, halves, batch, seq);
    model.run_mlp(i, halves, batch, seq);
    const LayerRouting routing = model.last_routing()[size_t(i)];
    model.run_block(i, h, batch, seq);
    EXPECT_EQ(halves.data, h.data) << what << " layer " << i;
    EXPECT_EQ(model.last_routing()[size_t(i)].tokens, routing.tokens) << what << " layer " << i;
    EXPECT_EQ(model.last_routing()[size_t(i)].chosen, routing.chosen) << what << " layer " << i;
    EXPECT_EQ(model.last_routing()[size_t(i)].weights, routing.weights) << what << " layer " << i;
  }
}

TEST_P(Parity, RunAttentionThenRunMlpIsRunBlock) {
  auto model = Model::load(testing::fixture_dir(GetParam()), {.rope_in_config_dtype = true});
  Checkpoint ref = Checkpoint::open(testing::fixture_dir(GetParam()) / "reference.safetensors");
  expect_halves_make_the_block(*model, read_ids(ref), ref.get("input_ids").shape[0], ref.get("input_ids").shape[1],
                               GetParam());
}

// 9 sequences of 512 tokens: more than one chunk of a block's run (4096 tokens).
TEST(ModelHalves, RunAttentionThenRunMlpIsRunBlockOverSeveralChunks) {
  auto model = Model::load(testing::demo_model());
  std::vector<int32_t> ids(9 * 512);
  for (size_t t = 0; t < ids.size(); ++t) ids[t] = int32_t((t * 7919) % size_t(model->vocab_size()));
  expect_halves_make_the_block(*model, ids, 9, 512, "demo_mixtral");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Parity,
                         ::testing::Values("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3",
                                           "granitemoe", "phimoe"));

}  // namespace
}  // namespace moeq
