#include "model/fp8_weights.h"

#include "core/error.h"
#include "core/int_math.h"

namespace moeq {

namespace {

constexpr std::string_view kScaleSuffix = "_scale_inv";

}  // namespace

std::string fp8_scale_name(const std::string& weight_name) { return weight_name + std::string(kScaleSuffix); }

bool is_fp8_scale(const Checkpoint& checkpoint, const std::string& name) {
  if (!name.ends_with(kScaleSuffix)) return false;
  const std::string weight = name.substr(0, name.size() - kScaleSuffix.size());
  return checkpoint.contains(weight) && checkpoint.get(weight).dtype == DType::F8_E4M3;
}

std::vector<uint16_t> fp8_weight_to_bf16(const Checkpoint& checkpoint, const TensorView& weight,
                                         ModelConfig::Fp8Blocks blocks) {
  if (weight.dtype != DType::F8_E4M3 || weight.shape.size() != 2)
    fail("{}: tensor '{}' is not a 2-D F8_E4M3 weight", weight.file.string(), weight.name);
  const int64_t rows = weight.shape[0], cols = weight.shape[1];
  const int64_t block_cols = ceil_div(cols, blocks.cols);
  const Tensor scale = checkpoint.get(fp8_scale_name(weight.name), {ceil_div(rows, blocks.rows), block_cols}).to_f32();
  std::vector<uint16_t> out(size_t(rows * cols));
  const auto* codes = reinterpret_cast<const uint8_t*>(weight.data);
  for (int64_t i = 0; i < rows; ++i) {
    const float* scale_row = scale.ptr() + (i / blocks.rows) * block_cols;
    for (int64_t j = 0; j < cols; ++j)
      out[size_t(i * cols + j)] = f32_to_bf16(f8e4m3_to_f32(codes[i * cols + j]) * scale_row[j / blocks.cols]);
  }
  return out;
}

}  // namespace moeq
