// CONTRACT (draft, owned by the model workstream; may be refined, but keep these entry points):
// one generic MoE decoder for every supported architecture, running in fp32.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/linear.h"

namespace moeq {

struct ModelConfig;  // arch/config.h: parsed config.json + architecture description
class KVCache;       // model/kv_cache.h: per-layer keys/values; copyable (forks a shared context)

// What a weight matrix is for. Bit allocation, recipes and reports key on this.
enum class TensorRole : uint8_t {
  Embedding, LmHead, Norm, Attention, Router, RoutedExpert, SharedExpert, SharedExpertGate, DenseMlp, Other
};

// One linear layer of the model, addressable by its Hugging Face tensor name.
struct LinearSlot {
  std::string name;        // HF weight name, e.g. "model.layers.3.block_sparse_moe.experts.5.w2.weight"
  TensorRole role;
  int layer = -1;          // -1 for embedding / lm_head
  int expert = -1;         // routed-expert index, else -1
  std::string projection;  // "q","k","v","o","gate","up","down", "router", ...
  LinearPtr* op;           // the op in the model: replace it to quantize, wrap it to observe inputs
};

class Model {
 public:
  // Loads config.json + safetensors (single or sharded) from a Hugging Face folder, or a
  // moeq-quantized folder. Throws moeq::Error naming file and field/tensor on bad input.
  static std::unique_ptr<Model> load(const std::filesystem::path& dir);
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual int64_t vocab_size() const = 0;

  // Runs ids [batch, seq_len] (row-major) after the cache's current positions (no cache:
  // positions start at 0) and returns logits [batch, seq_len, vocab].
  virtual Tensor forward(std::span<const int32_t> ids, int64_t batch, int64_t seq_len,
                         KVCache* cache = nullptr) = 0;
  virtual std::unique_ptr<KVCache> new_cache(int64_t batch, int64_t max_len) const = 0;

  // Every linear layer (attention, router, experts, dense MLP, lm_head), in forward order.
  virtual std::vector<LinearSlot> linears() = 0;
};

}  // namespace moeq
