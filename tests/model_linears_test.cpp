// Model::linears(): every linear layer, named as in the checkpoint, with its role; replacing
// or wrapping a slot's op changes what the forward pass runs.
#include <map>

#include "arch/config.h"
#include "arch/tensor_roles.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test_util.h"

namespace moeq {
namespace {

std::map<TensorRole, int> count_roles(const std::vector<LinearSlot>& slots) {
  std::map<TensorRole, int> n;
  for (const auto& s : slots) ++n[s.role];
  return n;
}

TEST(Linears, MixtralSlotsAreCheckpointTensors) {
  auto model = Model::load(testing::fixture_dir("mixtral"));
  Checkpoint ck = Checkpoint::open(testing::fixture_dir("mixtral"));
  auto slots = model->linears();
  // Per layer: q, k, v, o, router, 8 experts × 3; plus the embedding and lm_head.
  ASSERT_EQ(slots.size(), size_t(3 * (4 + 1 + 24) + 2));
  for (const auto& s : slots) {
    EXPECT_TRUE(ck.contains(s.name)) << s.name;
    EXPECT_EQ((*s.op)->out_features(), ck.get(s.name).shape[0]) << s.name;
  }
  EXPECT_EQ(slots[0].name, "model.embed_tokens.weight");
  EXPECT_EQ(slots[0].role, TensorRole::Embedding);
  EXPECT_EQ(slots[1].name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(slots[6].name, "model.layers.0.block_sparse_moe.experts.0.w1.weight");
  EXPECT_EQ(slots[6].projection, "gate");
  EXPECT_EQ(slots[6].expert, 0);
  EXPECT_EQ(slots.back().role, TensorRole::LmHead);
  auto roles = count_roles(slots);
  EXPECT_EQ(roles[TensorRole::Router], 3);
  EXPECT_EQ(roles[TensorRole::RoutedExpert], 72);
}

TEST(Linears, RolesOfSharedDenseAndMlaLayers) {
  auto q2 = Model::load(testing::fixture_dir("qwen2_moe"));
  auto roles = count_roles(q2->linears());
  EXPECT_EQ(roles[TensorRole::DenseMlp], 3);          // layer 0
  EXPECT_EQ(roles[TensorRole::SharedExpert], 2 * 3);  // layers 1, 2
  EXPECT_EQ(roles[TensorRole::SharedExpertGate], 2);
  auto v3 = Model::load(testing::fixture_dir("deepseek_v3"));
  Checkpoint ck = Checkpoint::open(testing::fixture_dir("deepseek_v3"));
  int attention = 0;
  for (const auto& s : v3->linears()) {
    EXPECT_TRUE(ck.contains(s.name)) << s.name;
    attention += s.role == TensorRole::Attention;
  }
  EXPECT_EQ(attention, 3 * 5);  // q_a, q_b, kv_a, kv_b, o
}

TEST(Linears, GraniteFusedExpertsAreNamedSlices) {
  auto model = Model::load(testing::fixture_dir("granitemoe"));
  std::vector<std::string> names;
  for (const auto& s : model->linears())
    if (s.role == TensorRole::RoutedExpert && s.layer == 1 && s.expert == 5) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"model.layers.1.block_sparse_moe.input_linear.weight[5].gate",
                                             "model.layers.1.block_sparse_moe.input_linear.weight[5].up",
                                             "model.layers.1.block_sparse_moe.output_linear.weight[5].down"}));
}

// Counts the rows it sees, then defers to the wrapped op.
class Counting final : public LinearOp {
 public:
  Counting(LinearPtr inner, int64_t* rows) : inner_(std::move(inner)), rows_(rows) {}
  int64_t in_features() const override { return inner_->in_features(); }
  int64_t out_features() const override { return inner_->out_features(); }
  void forward(const float* x, int64_t n, float* y) const override {
    *rows_ += n;
    inner_->forward(x, n, y);
  }
  void weight_rows(int64_t first, int64_t count, float* out) const override { inner_->weight_rows(first, count, out); }
  size_t storage_bytes() const override { return inner_->storage_bytes(); }
  std::string format_name() const override { return inner_->format_name(); }

 private:
  LinearPtr inner_;
  int64_t* rows_;
};

TEST(Linears, WrappedOpsSeeEveryTokenRoutedToThem) {
  auto model = Model::load(testing::fixture_dir("olmoe"));
  std::vector<int64_t> expert_rows(8, 0);
  int64_t router_rows = 0;
  for (auto& s : model->linears()) {
    if (s.layer != 1) continue;
    if (s.role == TensorRole::Router) *s.op = std::make_unique<Counting>(std::move(*s.op), &router_rows);
    if (s.role == TensorRole::RoutedExpert && s.projection == "down")
      *s.op = std::make_unique<Counting>(std::move(*s.op), &expert_rows[size_t(s.expert)]);
  }
  std::vector<int32_t> ids = {5, 17, 300, 2, 9, 44, 101, 7, 8, 250};
  model->forward(ids, 2, 5);
  EXPECT_EQ(router_rows, 10);
  std::vector<int64_t> routed(8, 0);
  for (int32_t e : model->last_routing()[1].chosen) ++routed[size_t(e)];
  EXPECT_EQ(expert_rows, routed);
  int64_t total = 0;
  for (auto r : expert_rows) total += r;
  EXPECT_EQ(total, 10 * model->config().top_k);
}

}  // namespace
}  // namespace moeq

namespace moeq {
namespace {

// The loader's roles agree with arch/tensor_roles' reading of the same names.
TEST(Linears, RolesAgreeWithTensorRoleClassifier) {
  for (auto name : {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3", "granitemoe", "phimoe"}) {
    auto model = Model::load(testing::fixture_dir(name));
    for (const auto& s : model->linears()) {
      const std::string tensor = s.name.substr(0, s.name.find('['));
      TensorInfo info = classify_tensor(tensor);
      EXPECT_EQ(info.role, s.role) << name << " " << s.name;
      EXPECT_EQ(info.layer, s.layer) << name << " " << s.name;
      if (info.expert == kAllExperts) continue;  // GraniteMoE's stacked experts: sliced by the loader
      EXPECT_EQ(info.expert, s.expert) << name << " " << s.name;
      EXPECT_EQ(info.projection, s.projection) << name << " " << s.name;
    }
  }
}

}  // namespace
}  // namespace moeq
