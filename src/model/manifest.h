// The quantization_config that `moeq quantize` writes into config.json: which tensors are
// quantized, with which method and spec. Loaders read it to know how to rebuild each LinearOp.
//
//   "quantization_config": {
//     "quant_method": "moeq", "format_version": 1, "zeros": "stored",
//     "tensors": { "<HF weight name>": {"method": "gptq", "format": "int", "bits": 4,
//                                       "group_size": 128, "symmetric": false, "double_quant": false,
//                                       "shape": [out, in],
//                                       "input_scale": "<tensor name>", "act_bits": 8} } }
// "input_scale" (AWQ only, optional) names the F16 tensor [in] that the linear divides its input
// by; linears that read one input share one such tensor. "act_bits" (optional, 16 when absent):
// 8 quantizes each token's input to INT8 on the fly (kernels/act_quant_linear.h).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kernels/act_quant_linear.h"
#include "quant/formats/qtensor.h"

namespace moeq {

struct TensorQuant {
  std::string method;  // "rtn", "gptq", "awq"
  QuantSpec spec;
  int64_t rows = 0, cols = 0;  // the weight's logical shape [out, in] (reports count parameters)
  std::string input_scale;     // AWQ: the tensor holding the input scale s; empty: none
  int act_bits = kActBitsNone;  // kernels/act_quant_linear.h
};

struct QuantManifest {
  static constexpr int kFormatVersion = 1;
  std::map<std::string, TensorQuant> tensors;  // by HF weight name

  const TensorQuant* find(const std::string& weight_name) const;
  nlohmann::json to_json() const;
  // Throws moeq::Error naming `file` and the field for a malformed or newer-version config.
  static QuantManifest from_json(const nlohmann::json& config, const std::string& file);
};

// The manifest of the model folder's config.json, or nullopt for an unquantized model.
std::optional<QuantManifest> read_manifest(const std::filesystem::path& model_dir);

}  // namespace moeq
