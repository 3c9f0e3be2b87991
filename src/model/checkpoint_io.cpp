#include "model/checkpoint_io.h"

#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/quant_linear.h"
#include "quant/formats/bnb4.h"
#include "quant/formats/gptq.h"

namespace moeq {
namespace {

template <typename T>
TensorToWrite tensor(std::string name, DType dtype, std::vector<int64_t> shape, const std::vector<T>& values) {
  TensorToWrite t{std::move(name), dtype, std::move(shape), {}};
  t.bytes.resize(values.size() * sizeof(T));
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

// Copies a checkpoint tensor of the given dtype and shape into a vector of T.
template <typename T>
std::vector<T> read(const Checkpoint& ck, const std::string& name, DType dtype, const std::vector<int64_t>& shape) {
  const TensorView& v = ck.get(name, shape);
  if (v.dtype != dtype)
    fail("{}: tensor '{}' has dtype {}, expected {}", v.file.string(), name, dtype_name(v.dtype), dtype_name(dtype));
  std::vector<T> out(size_t(v.numel()));
  std::memcpy(out.data(), v.data, out.size() * sizeof(T));
  return out;
}

std::vector<TensorToWrite> gptq_tensors(const std::string& prefix, const QuantizedMatrix& m) {
  const GptqTensors t = pack_gptq(m, GptqZeros::Stored);
  return {tensor(prefix + ".qweight", DType::I32, {t.qweight_rows(), t.out_features}, t.qweight),
          tensor(prefix + ".qzeros", DType::I32, {t.n_groups(), t.qzeros_cols()}, t.qzeros),
          tensor(prefix + ".scales", DType::F16, {t.n_groups(), t.out_features}, t.scales),
          tensor(prefix + ".g_idx", DType::I32, {t.in_features}, t.g_idx)};
}

std::vector<TensorToWrite> bnb4_tensors(const std::string& prefix, const QuantizedMatrix& m) {
  const Bnb4Tensors t = pack_bnb4(m);
  const std::string w = prefix + ".weight";
  std::vector<TensorToWrite> out{tensor(w, DType::U8, {int64_t(t.weight.size())}, t.weight),
                                 tensor(w + ".quant_map", DType::F32, {16}, t.quant_map)};
  if (t.spec.double_quant) {
    out.push_back(tensor(w + ".absmax", DType::U8, {t.n_blocks()}, t.absmax_q));
    out.push_back(tensor(w + ".nested_absmax", DType::F32, {int64_t(t.nested_absmax.size())}, t.nested_absmax));
    out.push_back(tensor(w + ".nested_quant_map", DType::F32, {256}, t.nested_quant_map));
    out.push_back(tensor(w + ".nested_offset", DType::F32, {1}, std::vector<float>{t.offset}));
  } else {
    out.push_back(tensor(w + ".absmax", DType::F32, {t.n_blocks()}, t.absmax));
  }
  return out;
}

LinearPtr load_gptq(const Checkpoint& ck, const std::string& prefix, const QuantSpec& spec, int64_t out, int64_t in) {
  GptqTensors t;
  t.spec = spec;
  t.in_features = in;
  t.out_features = out;
  t.zeros_convention = GptqZeros::Stored;
  t.qweight = read<int32_t>(ck, prefix + ".qweight", DType::I32, {t.qweight_rows(), out});
  t.qzeros = read<int32_t>(ck, prefix + ".qzeros", DType::I32, {t.n_groups(), t.qzeros_cols()});
  t.scales = read<uint16_t>(ck, prefix + ".scales", DType::F16, {t.n_groups(), out});
  t.g_idx = read<int32_t>(ck, prefix + ".g_idx", DType::I32, {in});
  return make_quant_linear(t);
}

LinearPtr load_bnb4(const Checkpoint& ck, const std::string& prefix, const QuantSpec& spec, int64_t out, int64_t in) {
  Bnb4Tensors t;
  t.spec = spec;
  t.rows = out;
  t.cols = in;
  const std::string w = prefix + ".weight";
  t.weight = read<uint8_t>(ck, w, DType::U8, {out * in / 2});
  t.quant_map = read<float>(ck, w + ".quant_map", DType::F32, {16});
  if (spec.double_quant) {
    t.absmax_q = read<uint8_t>(ck, w + ".absmax", DType::U8, {t.n_blocks()});
    t.nested_absmax = read<float>(ck, w + ".nested_absmax", DType::F32, {(t.n_blocks() + 255) / 256});
    t.nested_quant_map = read<float>(ck, w + ".nested_quant_map", DType::F32, {256});
    t.offset = read<float>(ck, w + ".nested_offset", DType::F32, {1})[0];
  } else {
    t.absmax = read<float>(ck, w + ".absmax", DType::F32, {t.n_blocks()});
  }
  return make_quant_linear(t);
}

}  // namespace

std::string linear_prefix(const std::string& weight_name) {
  constexpr std::string_view kSuffix = ".weight";
  if (weight_name.size() > kSuffix.size() && weight_name.ends_with(kSuffix))
    return weight_name.substr(0, weight_name.size() - kSuffix.size());
  return weight_name;
}

std::string stored_weight_name(const std::string& tensor_name) {
  for (std::string_view suffix : {".qweight", ".qzeros", ".scales", ".g_idx", ".input_scale"})
    if (tensor_name.ends_with(suffix)) return tensor_name.substr(0, tensor_name.size() - suffix.size()) + ".weight";
  if (const size_t at = tensor_name.rfind(".weight."); at != std::string::npos) return tensor_name.substr(0, at + 7);
  return tensor_name;
}

std::vector<TensorToWrite> quantized_linear_tensors(const std::string& weight_name, const QuantizedMatrix& m) {
  const std::string prefix = linear_prefix(weight_name);
  return m.spec.format == QuantFormat::Int ? gptq_tensors(prefix, m) : bnb4_tensors(prefix, m);
}

std::string input_scale_name(const std::string& weight_name) { return linear_prefix(weight_name) + ".input_scale"; }

TensorToWrite input_scale_tensor(const std::string& name, std::span<const float> scale) {
  std::vector<uint16_t> half(scale.size());
  for (size_t i = 0; i < scale.size(); ++i) {
    half[i] = f32_to_f16(scale[i]);
    if (f16_to_f32(half[i]) != scale[i]) fail("{}: input scale {} is not an fp16 value", name, scale[i]);
  }
  return tensor(name, DType::F16, {int64_t(scale.size())}, half);
}

LinearPtr load_quantized_linear(const Checkpoint& ck, const std::string& weight_name, const TensorQuant& q) {
  const std::string prefix = linear_prefix(weight_name);
  LinearPtr op = with_act_bits(q.spec.format == QuantFormat::Int ? load_gptq(ck, prefix, q.spec, q.rows, q.cols)
                                                                 : load_bnb4(ck, prefix, q.spec, q.rows, q.cols),
                               q.act_bits);
  if (q.input_scale.empty()) {
    // A scale stored under this linear's name that its manifest entry does not name: a folder
    // from a moeq that found scales by name. Running it without would be silently wrong.
    if (const std::string own = input_scale_name(weight_name); ck.contains(own))
      fail("{}: tensor '{}' is not named by the manifest entry's 'input_scale' of '{}' (written by an older moeq: "
           "quantize again)", ck.get(own).file.string(), own, weight_name);
    return op;
  }
  std::vector<float> scale;
  for (uint16_t h : read<uint16_t>(ck, q.input_scale, DType::F16, {q.cols})) scale.push_back(f16_to_f32(h));
  return std::make_unique<InputScaledLinear>(std::move(op), std::move(scale));
}

InputScaledLinear::InputScaledLinear(LinearPtr inner, std::vector<float> scale) : inner_(std::move(inner)) {
  if (int64_t(scale.size()) != inner_->in_features())
    fail("input scale has {} entries for a linear with {} inputs", scale.size(), inner_->in_features());
  inv_scale_.resize(scale.size());
  for (size_t i = 0; i < scale.size(); ++i) inv_scale_[i] = 1.0f / scale[i];
}

void InputScaledLinear::forward(const float* x, int64_t n, float* y) const {
  const int64_t in = in_features();
  // Reused across calls: a decode step runs this once per AWQ linear, too often for an allocation.
  thread_local std::vector<float> scaled;
  scaled.resize(size_t(n * in));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < in; ++c) scaled[size_t(r * in + c)] = x[r * in + c] * inv_scale_[size_t(c)];
  inner_->forward(scaled.data(), n, y);
}

// W = W'·diag(1/s): the stored rows divided by the scale of their column.
void InputScaledLinear::weight_rows(int64_t first, int64_t count, float* out) const {
  inner_->weight_rows(first, count, out);
  const int64_t in = in_features();
  for (int64_t r = 0; r < count; ++r)
    for (int64_t c = 0; c < in; ++c) out[r * in + c] *= inv_scale_[size_t(c)];
}

}  // namespace moeq
