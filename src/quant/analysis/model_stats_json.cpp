// The statistics cache: one JSON document with the request it answers ("key"), so a changed
// calibration or candidate list is measured again instead of silently reused.
#include <fmt/format.h>

#include "core/error.h"
#include "quant/analysis/model_stats.h"

namespace moeq::analysis {
namespace {

using nlohmann::json;

template <typename T>
T field(const json& obj, const char* name, const std::string& where) {
  if (!obj.is_object() || !obj.contains(name)) fail("{}: missing field '{}'", where, name);
  try {
    return obj.at(name).get<T>();
  } catch (const json::exception&) {
    fail("{}: field '{}' has the wrong type", where, name);
  }
}

json action_json(const plan::QuantAction& a) {
  return {{"method", plan::method_name(a.method)}, {"bits", a.spec.bits}, {"group_size", a.spec.group_size},
          {"symmetric", a.spec.symmetric}};
}

plan::QuantAction action_from(const json& j, const std::string& where) {
  plan::QuantMethod method;
  if (!plan::parse_method(field<std::string>(j, "method", where), method))
    fail("{}: field 'method' is not a method name", where);
  return plan::QuantAction::int_bits(method, field<int>(j, "bits", where), field<int>(j, "group_size", where),
                                     field<bool>(j, "symmetric", where));
}

}  // namespace

json request_key(const StatsRequest& r) {
  const SensitivityOptions& s = r.sensitivity;
  json candidates = json::array();
  for (const plan::QuantAction& a : s.candidates()) candidates.push_back(action_json(a));
  return {{"model", std::filesystem::absolute(r.model_dir).lexically_normal().string()},
          {"calibration",
           {{"file", r.calib.file.string()}, {"samples", r.calib.samples}, {"seqlen", r.calib.seqlen}, {"seed", r.calib.seed}}},
          {"candidates", candidates},
          {"gptq", {{"damp_percent", s.gptq.damp_percent}, {"block_size", s.gptq.block_size},
                    {"act_order", s.gptq.act_order}, {"static_groups", s.gptq.static_groups}, {"mse", s.gptq.mse},
                    {"mse_skip", role_names(s.gptq.mse_skip)}}},
          {"indivisible", int(s.indivisible)},
          {"version", 4}};  // 2: losses scaled to block output error; 3: and to output KL; 4: lm_head Hessian stored
}

json stats_to_json(const ModelStats& s, const json& key) {
  json candidates = json::array();
  for (const plan::QuantAction& a : s.candidates) candidates.push_back(action_json(a));
  json units = json::array();
  for (size_t i = 0; i < s.units.size(); ++i)
    units.push_back({{"name", s.units[i].name}, {"role", role_name(s.units[i].role)}, {"layer", s.units[i].layer},
                     {"expert", s.units[i].expert}, {"projection", s.units[i].projection}, {"rows", s.units[i].rows},
                     {"cols", s.units[i].cols}, {"tokens", s.per_unit[i].tokens},
                     {"outlier", s.per_unit[i].outlier}, {"block_error", s.per_unit[i].block_error},
                     {"loss", s.per_unit[i].loss}});
  return {{"key", key},           {"tokens", s.tokens},   {"seconds", s.seconds},
          {"other_params", s.other_params}, {"candidates", candidates}, {"routing", s.routing},
          {"block_scores", s.block_scores}, {"layer_block_error", s.layer_block_error},
          {"layer_output_kl", s.layer_output_kl}, {"units", units}};
}

// Units are stored whole (name, role, indices, shape), so strategies can run without the model.
ModelStats stats_from_json(const json& doc, const std::string& source) {
  ModelStats s;
  s.tokens = field<int64_t>(doc, "tokens", source);
  s.seconds = field<double>(doc, "seconds", source);
  s.other_params = field<int64_t>(doc, "other_params", source);
  s.routing = field<std::vector<std::vector<int64_t>>>(doc, "routing", source);
  s.block_scores = field<std::vector<double>>(doc, "block_scores", source);
  s.layer_block_error = field<std::vector<double>>(doc, "layer_block_error", source);
  s.layer_output_kl = field<std::vector<double>>(doc, "layer_output_kl", source);
  for (const json& c : field<json>(doc, "candidates", source)) s.candidates.push_back(action_from(c, source + ": candidates"));
  for (const json& u : field<json>(doc, "units", source)) {
    const std::string where = fmt::format("{}: unit '{}'", source, u.value("name", "?"));
    plan::QuantUnit unit;
    unit.name = field<std::string>(u, "name", where);
    if (!plan::parse_role(field<std::string>(u, "role", where), unit.role)) fail("{}: field 'role' is unknown", where);
    unit.layer = field<int>(u, "layer", where);
    unit.expert = field<int>(u, "expert", where);
    unit.projection = field<std::string>(u, "projection", where);
    unit.rows = field<int64_t>(u, "rows", where);
    unit.cols = field<int64_t>(u, "cols", where);
    UnitStats st{field<int64_t>(u, "tokens", where), field<double>(u, "outlier", where),
                 field<double>(u, "block_error", where), field<std::vector<double>>(u, "loss", where)};
    if (!st.loss.empty() && st.loss.size() != s.candidates.size())
      fail("{}: field 'loss' has {} entries for {} candidates", where, st.loss.size(), s.candidates.size());
    s.units.push_back(std::move(unit));
    s.per_unit.push_back(std::move(st));
  }
  return s;
}

}  // namespace moeq::analysis
