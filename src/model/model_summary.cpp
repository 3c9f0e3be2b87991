#include "model/model_summary.h"

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "arch/config.h"
#include "arch/tensor_roles.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/checkpoint_io.h"
#include "model/manifest.h"

namespace moeq {

namespace {

using nlohmann::json;

json read_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot open for reading", file.string());
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON ({})", file.string(), e.what());
  }
}

// Everything but the architecture name comes from ModelConfig, so `moeq info` accepts exactly
// the configs the model loader accepts and reports the sizes it will build.
void read_shape(ModelSummary& s, const json& j, const std::filesystem::path& file) {
  const ModelConfig c = parse_config(j, file);
  auto arch = j.find("architectures");
  if (arch != j.end() && arch->is_array() && !arch->empty() && (*arch)[0].is_string())
    s.architecture = (*arch)[0].get<std::string>();
  s.model_type = c.model_type;
  s.layers = c.num_layers;
  s.moe_layers = std::count(c.moe_layers.begin(), c.moe_layers.end(), true);
  s.hidden = c.hidden_size;
  s.vocab = c.vocab_size;
  s.routed_experts = c.num_experts;
  s.top_k = c.top_k;
  switch (c.arch.shared) {
    case SharedExpertKind::None: s.shared_experts = 0; break;
    case SharedExpertKind::Plain: s.shared_experts = c.shared_intermediate_size / c.expert_intermediate_size; break;
    case SharedExpertKind::SigmoidGated: s.shared_experts = c.shared_intermediate_size > 0 ? 1 : 0; break;
  }
  s.tied_embeddings = c.tie_word_embeddings;
}

// A quantized weight's tensors (codes, scales, zeros, ...) count their bytes to the weight's
// role; its parameters are counted once, at the logical shape the manifest records.
void count_tensors(ModelSummary& s, const Checkpoint& ck, const QuantManifest* manifest) {
  for (const auto& [name, view] : ck.tensors()) {
    const std::string weight = manifest ? stored_weight_name(name) : name;
    const TensorQuant* q = manifest ? manifest->find(weight) : nullptr;
    RoleTotals& r = s.by_role[size_t(classify_tensor(q ? weight : name).role)];
    for (RoleTotals* t : {&r, &s.total}) {
      t->tensors += 1;
      t->bytes += int64_t(view.nbytes);
      if (!q) t->params += view.numel();
    }
  }
  if (manifest)
    for (const auto& [weight, q] : manifest->tensors) {
      RoleTotals& r = s.by_role[size_t(classify_tensor(weight).role)];
      for (RoleTotals* t : {&r, &s.total}) {
        t->params += q.rows * q.cols;
        t->quantized_params += q.rows * q.cols;
        t->code_bits += double(q.spec.bits) * double(q.rows * q.cols);
        if (q.act_bits != kActBitsNone) t->act8_params += q.rows * q.cols;
      }
    }
  const int64_t routed = s.role(TensorRole::RoutedExpert).params;
  s.active_params = s.total.params;
  if (s.routed_experts > 0) s.active_params -= routed - routed / s.routed_experts * s.top_k;
}

}  // namespace

ModelSummary summarize_model(const std::filesystem::path& dir, const Checkpoint& checkpoint) {
  const std::filesystem::path config_file = dir / "config.json";
  ModelSummary s;
  read_shape(s, read_config(config_file), config_file);
  const std::optional<QuantManifest> manifest = read_manifest(dir);
  s.quantized = manifest.has_value();
  count_tensors(s, checkpoint, manifest ? &*manifest : nullptr);
  return s;
}

ModelSummary summarize_model(const std::filesystem::path& dir) { return summarize_model(dir, Checkpoint::open(dir)); }

}  // namespace moeq
