#include "model/manifest.h"

#include <fstream>

#include "arch/config.h"
#include "core/error.h"
#include "kernels/act_quant_linear.h"

namespace moeq {
namespace {

std::string_view format_key(QuantFormat f) {
  switch (f) {
    case QuantFormat::Int: return "int";
    case QuantFormat::NF4: return "nf4";
    case QuantFormat::FP4: return "fp4";
  }
  return "?";
}

template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) fail("{}: missing field '{}'", where, key);
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("{}: field '{}' has the wrong type", where, key);
  }
}

}  // namespace

const TensorQuant* QuantManifest::find(const std::string& weight_name) const {
  auto it = tensors.find(weight_name);
  return it == tensors.end() ? nullptr : &it->second;
}

nlohmann::json QuantManifest::to_json() const {
  nlohmann::json list = nlohmann::json::object();
  for (const auto& [name, q] : tensors) {
    list[name] = {{"method", q.method},
                  {"format", format_key(q.spec.format)},
                  {"bits", q.spec.bits},
                  {"group_size", q.spec.group_size},
                  {"symmetric", q.spec.symmetric},
                  {"double_quant", q.spec.double_quant},
                  {"shape", {q.rows, q.cols}}};
    if (!q.input_scale.empty()) list[name]["input_scale"] = q.input_scale;
    if (q.act_bits != kActBitsNone) list[name]["act_bits"] = q.act_bits;
  }
  return {{"quant_method", "moeq"}, {"format_version", kFormatVersion}, {"zeros", "stored"}, {"tensors", list}};
}

QuantManifest QuantManifest::from_json(const nlohmann::json& config, const std::string& file) {
  const nlohmann::json& qc = config.at("quantization_config");
  const std::string where = file + ": quantization_config";
  if (field<std::string>(qc, "quant_method", where) != "moeq")
    fail("{}: field 'quant_method' is '{}'; moeq reads only its own quantized checkpoints ('moeq')", where,
         qc["quant_method"].dump());
  const int version = field<int>(qc, "format_version", where);
  if (version != kFormatVersion)
    fail("{}: field 'format_version' is {}, this moeq reads version {}", where, version, kFormatVersion);
  if (!qc.contains("tensors") || !qc["tensors"].is_object()) fail("{}: field 'tensors' must be an object", where);
  QuantManifest m;
  for (const auto& [name, entry] : qc["tensors"].items()) {
    const std::string at = fmt::format("{}.tensors['{}']", where, name);
    TensorQuant q;
    q.method = field<std::string>(entry, "method", at);
    const std::string format = field<std::string>(entry, "format", at);
    if (format == "int") q.spec.format = QuantFormat::Int;
    else if (format == "nf4") q.spec.format = QuantFormat::NF4;
    else if (format == "fp4") q.spec.format = QuantFormat::FP4;
    else fail("{}: field 'format' is '{}', expected int, nf4 or fp4", at, format);
    q.spec.bits = field<int>(entry, "bits", at);
    q.spec.group_size = field<int>(entry, "group_size", at);
    q.spec.symmetric = field<bool>(entry, "symmetric", at);
    q.spec.double_quant = field<bool>(entry, "double_quant", at);
    const auto shape = field<std::vector<int64_t>>(entry, "shape", at);
    if (shape.size() != 2 || shape[0] < 1 || shape[1] < 1) fail("{}: field 'shape' must be [out, in]", at);
    q.rows = shape[0];
    q.cols = shape[1];
    if (entry.contains("input_scale")) q.input_scale = field<std::string>(entry, "input_scale", at);
    if (entry.contains("act_bits")) q.act_bits = field<int>(entry, "act_bits", at);
    if (!valid_act_bits(q.act_bits)) fail("{}: field 'act_bits' is {}, expected 8 or 16", at, q.act_bits);
    m.tensors.emplace(name, q);
  }
  return m;
}

std::optional<QuantManifest> read_manifest(const std::filesystem::path& model_dir) {
  const std::filesystem::path file = model_dir / "config.json";
  std::ifstream in(file);
  if (!in) fail("{}: cannot open", file.string());
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON ({})", file.string(), e.what());
  }
  if (!config.contains("quantization_config") || is_fp8_source(config)) return std::nullopt;
  return QuantManifest::from_json(config, file.string());
}

}  // namespace moeq
