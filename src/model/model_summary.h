// What `moeq info` reports: a model's shape from config.json (through ModelConfig, arch/config.h)
// and its parameters by role, counted from the checkpoint through tensor_roles.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "arch/tensor_roles.h"
#include "io/safetensors.h"

namespace moeq {

struct RoleTotals {
  int64_t tensors = 0;           // stored tensors (a quantized weight stores several)
  int64_t params = 0;            // elements of the weights, quantized ones at their logical shape
  int64_t bytes = 0;             // as stored in the checkpoint: codes, scales, zeros included
  int64_t quantized_params = 0;  // elements of the quantized weights among them
  double code_bits = 0;          // Σ format bits · elements over the quantized weights
  int64_t act8_params = 0;       // elements of the quantized weights whose linears read INT8 activations

  // The paper's average (Li et al. 2024): format bits over the quantized weights only.
  double nominal_bits() const { return quantized_params ? code_bits / double(quantized_params) : 0.0; }
  // True storage: every stored byte of the role per parameter.
  double stored_bits() const { return params ? 8.0 * double(bytes) / double(params) : 0.0; }
};

struct ModelSummary {
  std::string model_type;    // config "model_type"
  std::string architecture;  // config "architectures"[0]
  int64_t layers = 0;
  int64_t moe_layers = 0;    // layers with routed experts (the rest have a dense MLP)
  int64_t hidden = 0;
  int64_t vocab = 0;
  int64_t routed_experts = 0;  // per MoE layer
  int64_t top_k = 0;
  int64_t shared_experts = 0;  // DeepSeek's n_shared_experts; 1 for Qwen2-MoE's / GraniteMoeShared's shared MLP
  bool tied_embeddings = false;
  bool quantized = false;      // config.json has moeq's quantization_config
  std::array<RoleTotals, size_t(TensorRole::Other) + 1> by_role{};  // indexed by TensorRole
  RoleTotals total;
  // Parameters one token runs through: everything but the routed experts, plus top_k of them.
  int64_t active_params = 0;

  const RoleTotals& role(TensorRole r) const { return by_role[size_t(r)]; }
};

// `dir` is a Hugging Face model folder (config.json + model.safetensors or a sharded index).
// Throws moeq::Error naming config.json and the field for a config the model loader rejects.
ModelSummary summarize_model(const std::filesystem::path& dir);
// The same for a checkpoint the caller already opened from `dir`.
ModelSummary summarize_model(const std::filesystem::path& dir, const Checkpoint& checkpoint);

}  // namespace moeq
