#include "arch/model_summary.h"

#include <fstream>
#include <initializer_list>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "arch/tensor_roles.h"
#include "core/error.h"
#include "io/safetensors.h"

namespace moeq {

namespace {

using nlohmann::json;

// The first of `keys` present (and not null) as an integer; architectures spell the same
// quantity differently (num_local_experts / num_experts / n_routed_experts).
std::optional<int64_t> find_int(const json& config, const std::filesystem::path& file,
                                std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) continue;
    if (!it->is_number_integer()) fail("{}: field '{}' must be an integer, got {}", file.string(), key, it->dump());
    return it->get<int64_t>();
  }
  return std::nullopt;
}

int64_t require_int(const json& config, const std::filesystem::path& file, const char* key) {
  auto v = find_int(config, file, {key});
  if (!v) fail("{}: missing field '{}'", file.string(), key);
  return *v;
}

json read_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot open for reading", file.string());
  try {
    json config = json::parse(in);
    if (!config.is_object()) fail("{}: must be a JSON object", file.string());
    return config;
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON ({})", file.string(), e.what());
  }
}

void read_shape(ModelSummary& s, const json& config, const std::filesystem::path& file) {
  s.model_type = config.value("model_type", "");
  if (s.model_type.empty()) fail("{}: missing field 'model_type'", file.string());
  auto arch = config.find("architectures");
  if (arch != config.end() && arch->is_array() && !arch->empty() && (*arch)[0].is_string())
    s.architecture = (*arch)[0].get<std::string>();
  s.layers = require_int(config, file, "num_hidden_layers");
  s.hidden = require_int(config, file, "hidden_size");
  s.vocab = require_int(config, file, "vocab_size");
  s.routed_experts = find_int(config, file, {"num_local_experts", "num_experts", "n_routed_experts"}).value_or(0);
  s.top_k = find_int(config, file, {"num_experts_per_tok"}).value_or(0);
  // DeepSeek counts its shared experts; Qwen2-MoE and GraniteMoeShared have one shared MLP.
  const int64_t shared_ffn = find_int(config, file, {"shared_expert_intermediate_size", "shared_intermediate_size"}).value_or(0);
  s.shared_experts = find_int(config, file, {"n_shared_experts"}).value_or(shared_ffn > 0 ? 1 : 0);
  s.tied_embeddings = config.value("tie_word_embeddings", false);
}

void count_tensors(ModelSummary& s, const Checkpoint& ck) {
  std::set<int> moe_layers;
  for (const auto& [name, view] : ck.tensors()) {
    const TensorInfo info = classify_tensor(name);
    RoleTotals& r = s.by_role[size_t(info.role)];
    for (RoleTotals* t : {&r, &s.total}) {
      t->tensors += 1;
      t->params += view.numel();
      t->bytes += int64_t(view.nbytes);
    }
    if (info.role == TensorRole::Router) moe_layers.insert(info.layer);
  }
  s.moe_layers = int64_t(moe_layers.size());
  const int64_t routed = s.role(TensorRole::RoutedExpert).params;
  s.active_params = s.total.params;
  if (s.routed_experts > 0) s.active_params -= routed - routed / s.routed_experts * s.top_k;
}

}  // namespace

ModelSummary summarize_model(const std::filesystem::path& dir, const Checkpoint& checkpoint) {
  const std::filesystem::path config_file = dir / "config.json";
  ModelSummary s;
  read_shape(s, read_config(config_file), config_file);
  count_tensors(s, checkpoint);
  return s;
}

ModelSummary summarize_model(const std::filesystem::path& dir) { return summarize_model(dir, Checkpoint::open(dir)); }

}  // namespace moeq
