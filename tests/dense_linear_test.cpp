// DenseLinear keeps BF16 and F16 weights in their stored dtype and widens them inside the
// kernels. The widening is exact, so every batch size (the gemv up to 4 tokens, the gemm above)
// gives the bits of the same values held in fp32.
#include <random>

#include "io/safetensors.h"
#include "kernels/dense_linear.h"
#include "model/model.h"
#include "test_util.h"

namespace moeq {
namespace {

namespace fs = std::filesystem;

std::vector<float> forward(const DenseLinear& op, const std::vector<float>& x, int64_t n) {
  std::vector<float> y(size_t(n * op.out_features()));
  op.forward(x.data(), n, y.data());
  return y;
}

TEST(DenseLinear, SixteenBitWeightsStayMappedAndGiveTheBitsOfF32) {
  const int64_t rows = 70, cols = 300;  // row and column tails of every kernel
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> x(size_t(40 * cols));
  for (float& v : x) v = normal(rng) * 20;
  for (DType dt : {DType::BF16, DType::F16}) {
    auto stored = std::make_shared<std::vector<uint16_t>>(size_t(rows * cols));
    Tensor widened({rows, cols});
    for (size_t i = 0; i < stored->size(); ++i) {
      const float w = normal(rng);
      (*stored)[i] = dt == DType::BF16 ? f32_to_bf16(w) : f32_to_f16(w);
      widened.data[i] = dt == DType::BF16 ? bf16_to_f32((*stored)[i]) : f16_to_f32((*stored)[i]);
    }
    const DenseLinear mapped(WeightView{dt, reinterpret_cast<const std::byte*>(stored->data()), rows, cols, stored},
                             DenseStorage::Mapped);
    const DenseLinear wide(widened);
    EXPECT_EQ(mapped.storage_bytes(), size_t(rows * cols) * 2) << dtype_name(dt);
    EXPECT_EQ(mapped.format_name(), dt == DType::BF16 ? "bf16" : "f16");
    EXPECT_EQ(mapped.weight_f32().data, widened.data);
    for (int64_t n : {1, 3, 4, 5, 40}) EXPECT_EQ(forward(mapped, x, n), forward(wide, x, n)) << dtype_name(dt) << " n " << n;
  }
}

// The demo model saved in F16 loads with its linears mapped in F16 (no fp32 copy) and predicts
// what the BF16 original does: BF16 values in F16's normal range convert exactly, so only the
// smallest weights round.
TEST(DenseLinear, F16CheckpointLoadsMappedAndMatchesItsBf16Original) {
  const fs::path dir = fs::temp_directory_path() / "moeq-f16-demo";
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(testing::demo_model() / "config.json", dir / "config.json");
  std::vector<TensorToWrite> tensors;
  {
    const Checkpoint ck = Checkpoint::open(testing::demo_model());
    for (const auto& [name, view] : ck.tensors()) {
      std::vector<uint16_t> half;
      for (float w : view.to_f32().data) half.push_back(f32_to_f16(w));
      tensors.push_back({name, DType::F16, view.shape, testing::bytes_of(half)});
    }
  }
  write_safetensors(dir / "model.safetensors", tensors);

  auto bf16 = Model::load(testing::demo_model());
  auto f16 = Model::load(dir);
  for (const LinearSlot& s : f16->linears()) {
    if (s.role == TensorRole::Embedding) continue;
    EXPECT_EQ((*s.op)->format_name(), "f16") << s.name;
    EXPECT_EQ((*s.op)->storage_bytes(), size_t((*s.op)->out_features() * (*s.op)->in_features()) * 2) << s.name;
  }
  const std::vector<int32_t> ids = {1, 415, 2936, 960, 285, 1142, 2870, 13, 1014, 5509, 302, 4843, 349, 264, 1369, 723};
  const Tensor a = bf16->forward(ids, 1, int64_t(ids.size())), b = f16->forward(ids, 1, int64_t(ids.size()));
  ASSERT_EQ(a.data.size(), b.data.size());
  double worst = 0;
  for (size_t i = 0; i < a.data.size(); ++i) worst = std::max(worst, double(std::abs(a.data[i] - b.data[i])));
  EXPECT_GT(worst, 0.0);  // some weights did round
  EXPECT_LT(worst, 1e-2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moeq
