// Block-scaled FP8 checkpoints (DeepSeek-V3's format): the deepseek_v3 fixture's projections are
// stored as F8_E4M3 with one fp32 scale per block of 16 × 24 weights (ragged at the edges), the
// router and norms as BF16. moeq widens each FP8 weight to bf16(f32(code) · scale) at load, so the
// FP8 folder must compute exactly what a BF16 folder holding those widened values computes; and
// `moeq quantize` must write a folder that holds no FP8 and no scales and equals the BF16 one's.
#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/model.h"
#include "quant/pipeline/quantize.h"
#include "test_util.h"

namespace moeq {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::bytes_of;

constexpr int64_t kBlockRows = 16, kBlockCols = 24;

// The e4m3 code nearest to x (|x| ≤ 448), ties to the even code, by search over every code.
uint8_t to_e4m3(float x) {
  uint8_t best = 0;
  for (int code = 0; code < 0x7f; ++code) {
    const float d = std::abs(std::abs(x) - f8e4m3_to_f32(uint8_t(code)));
    const float best_d = std::abs(std::abs(x) - f8e4m3_to_f32(best));
    if (d < best_d || (d == best_d && code % 2 == 0)) best = uint8_t(code);
  }
  return x < 0 ? uint8_t(best | 0x80) : best;
}

struct Folders {
  fs::path fp8, widened;  // the FP8 checkpoint, and BF16 holding its widened weights
};

// Folders named by `tag`: ctest runs the tests of this file side by side.
Folders write_fp8_fixture(const std::string& tag) {
  const fs::path fixture = testing::fixture_dir("deepseek_v3");
  const fs::path tmp = fs::temp_directory_path();
  const Folders f{tmp / ("moeq-fp8-" + tag), tmp / ("moeq-fp8-widened-" + tag)};
  json config = json::parse(testing::read_file(fixture / "config.json"));
  std::vector<TensorToWrite> fp8, widened;
  const Checkpoint ck = Checkpoint::open(fixture);
  for (const auto& [name, view] : ck.tensors()) {
    const bool projection = name.starts_with("model.layers.") && name.ends_with("_proj.weight") && view.shape.size() == 2;
    if (!projection) {
      TensorToWrite t{name, view.dtype, view.shape, std::vector<std::byte>(view.nbytes)};
      std::memcpy(t.bytes.data(), view.data, view.nbytes);
      fp8.push_back(t);
      widened.push_back(t);
      continue;
    }
    const Tensor w = view.to_f32();
    const int64_t rows = view.shape[0], cols = view.shape[1];
    const int64_t block_rows = (rows + kBlockRows - 1) / kBlockRows, block_cols = (cols + kBlockCols - 1) / kBlockCols;
    std::vector<float> scale(size_t(block_rows * block_cols), 0.0f);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        float& s = scale[size_t(i / kBlockRows * block_cols + j / kBlockCols)];
        s = std::max(s, std::abs(w.data[size_t(i * cols + j)]) / 448.0f);
      }
    std::vector<uint8_t> codes(size_t(rows * cols));
    std::vector<uint16_t> bf16(codes.size());
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const size_t at = size_t(i * cols + j);
        const float s = scale[size_t(i / kBlockRows * block_cols + j / kBlockCols)];
        codes[at] = to_e4m3(s > 0 ? w.data[at] / s : 0.0f);
        bf16[at] = f32_to_bf16(f8e4m3_to_f32(codes[at]) * s);
      }
    fp8.push_back({name, DType::F8_E4M3, view.shape, bytes_of(codes)});
    fp8.push_back({name + "_scale_inv", DType::F32, {block_rows, block_cols}, bytes_of(scale)});
    widened.push_back({name, DType::BF16, view.shape, bytes_of(bf16)});
  }
  for (const fs::path& dir : {f.fp8, f.widened}) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  std::ofstream(f.widened / "config.json") << config.dump(1);
  config["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"},
                                   {"weight_block_size", {kBlockRows, kBlockCols}}};
  std::ofstream(f.fp8 / "config.json") << config.dump(1);
  write_safetensors(f.fp8 / "model.safetensors", fp8);
  write_safetensors(f.widened / "model.safetensors", widened);
  return f;
}

Tensor logits(const fs::path& dir) {
  const std::vector<int32_t> ids = {3, 141, 59, 265, 358, 97, 93, 238, 46, 264, 338, 327, 95, 28, 84, 197};
  return Model::load(dir)->forward(ids, 1, int64_t(ids.size()));
}

TEST(Fp8Checkpoint, LoadsAsItsWidenedBf16AndQuantizesWithoutFp8Tensors) {
  const Folders f = write_fp8_fixture("load");
  const Tensor fp8 = logits(f.fp8), widened = logits(f.widened), original = logits(testing::fixture_dir("deepseek_v3"));
  EXPECT_EQ(fp8.data, widened.data);
  EXPECT_NE(fp8.data, original.data);  // FP8 rounding did change the weights

  // Experts to RTN INT4; the attention projections stay FP8 in the source and come out BF16.
  const fs::path recipe = fs::temp_directory_path() / "moeq-fp8-recipe.toml";
  std::ofstream(recipe) << "[[rule]]\nmethod = \"rtn\"\nbits = 4\ngroup_size = 32\nrole = [\"routed_expert\", \"shared_expert\"]\n";
  auto quantize = [&](const fs::path& model, const std::string& out) {
    QuantizeOptions o;
    o.model_dir = model;
    o.recipe_file = recipe;
    o.out_dir = fs::temp_directory_path() / out;
    quantize_model(o);
    return o.out_dir;
  };
  const fs::path from_fp8 = quantize(f.fp8, "moeq-fp8-quantized"), from_widened = quantize(f.widened, "moeq-fp8-widened-quantized");
  const Checkpoint out = Checkpoint::open(from_fp8);
  for (const auto& [name, view] : out.tensors()) {
    EXPECT_NE(view.dtype, DType::F8_E4M3) << name;
    EXPECT_FALSE(name.ends_with("_scale_inv")) << name;
  }
  EXPECT_EQ(out.get("model.layers.1.self_attn.o_proj.weight").dtype, DType::BF16);
  EXPECT_EQ(json::parse(testing::read_file(from_fp8 / "config.json"))["quantization_config"]["quant_method"], "moeq");
  EXPECT_EQ(logits(from_fp8).data, logits(from_widened).data);
  for (const fs::path& dir : {f.fp8, f.widened, from_fp8, from_widened}) fs::remove_all(dir);
}

TEST(Fp8Checkpoint, MissingScaleOrConfigIsAnErrorNamingTheTensor) {
  const Folders f = write_fp8_fixture("errors");
  auto load_error = [](const fs::path& dir) { return testing::error_of([&] { Model::load(dir); }); };
  // Without the FP8 quantization_config the F8_E4M3 weights have no meaning.
  std::ofstream(f.fp8 / "config.json") << testing::read_file(f.widened / "config.json");
  EXPECT_NE(load_error(f.fp8).find("is F8_E4M3, but"), std::string::npos) << load_error(f.fp8);
  // A scale tensor of the wrong shape names the scale tensor.
  json config = json::parse(testing::read_file(f.widened / "config.json"));
  config["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {16, 16}}};
  std::ofstream(f.fp8 / "config.json") << config.dump();
  EXPECT_NE(load_error(f.fp8).find("_scale_inv' has shape"), std::string::npos) << load_error(f.fp8);
  config["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {16}}};
  std::ofstream(f.fp8 / "config.json") << config.dump();
  EXPECT_NE(load_error(f.fp8).find("field 'weight_block_size' must be [rows, cols]"), std::string::npos) << load_error(f.fp8);
  for (const fs::path& dir : {f.fp8, f.widened}) fs::remove_all(dir);
}

}  // namespace
}  // namespace moeq
