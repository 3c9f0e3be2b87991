// One generic MoE decoder for every supported architecture (arch/registry.h), running in fp32.
// Owned by the model workstream.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "arch/tensor_roles.h"
#include "core/tensor.h"
#include "kernels/dense_linear.h"
#include "kernels/linear.h"

namespace moeq {

struct ModelConfig;  // arch/config.h: parsed config.json + architecture description
class KVCache;       // model/kv_cache.h: per-layer keys/values; copyable (forks a shared context)

// One linear layer of the model, addressable by its Hugging Face tensor name.
struct LinearSlot {
  // HF weight name, e.g. "model.layers.3.block_sparse_moe.experts.5.w2.weight". Experts stored
  // fused in one 3-D tensor (GraniteMoE) are named "<tensor>[<expert>].<projection>", e.g.
  // "model.layers.0.block_sparse_moe.input_linear.weight[5].up" (rows ffn..2·ffn of expert 5).
  std::string name;
  TensorRole role;
  int layer = -1;          // -1 for the embedding and lm_head
  int expert = -1;         // routed-expert index, else -1
  std::string projection;  // "q","k","v","o","q_a","q_b","kv_a","kv_b","gate","up","down","router","shared_gate","embed","lm_head"
  LinearPtr* op;           // the op in the model: replace it to quantize, wrap it to observe inputs
};

// The routing of one MoE layer during the last forward/run_block/run_mlp call.
struct LayerRouting {
  int64_t tokens = 0;
  int64_t experts = 0;
  int64_t top_k = 0;
  std::vector<float> logits;    // [tokens, experts] router logits (as transformers' router_logits)
  std::vector<int32_t> chosen;  // [tokens, top_k] expert ids, best first
  std::vector<float> weights;   // [tokens, top_k] the weights their outputs are summed with
};

struct LoadOptions {
  DenseStorage storage = DenseStorage::Mapped;
  // RoPE inverse frequencies rounded to config.json's dtype: what transformers computes when
  // the model is built in that dtype and then upcast with .float() (the buffer keeps the
  // rounding). Off: fp32 frequencies, as from_pretrained(dtype=torch.float32) — the protocol of
  // the trained models' references. The random fixtures were generated the first way.
  bool rope_in_config_dtype = false;
};

class Model {
 public:
  // Loads config.json + safetensors (single or sharded) from a Hugging Face folder. Throws
  // moeq::Error naming file and field/tensor on bad input.
  static std::unique_ptr<Model> load(const std::filesystem::path& dir, const LoadOptions& options = {});
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t num_layers() const = 0;

  // Runs ids [batch, seq_len] (row-major) after the cache's current positions (no cache:
  // positions start at 0) and returns logits [batch, seq_len, vocab].
  virtual Tensor forward(std::span<const int32_t> ids, int64_t batch, int64_t seq_len,
                         KVCache* cache = nullptr) = 0;
  virtual std::unique_ptr<KVCache> new_cache(int64_t batch, int64_t max_len) const = 0;

  // Every weight matrix in forward order: the embedding table (unless tied to lm_head), then
  // attention, router, experts and dense MLPs block by block, then lm_head.
  virtual std::vector<LinearSlot> linears() = 0;

  // The forward pass one block at a time (calibration, parity tests): forward() is
  // head(run_block(L-1, … run_block(0, embed(ids)))). Hidden states are [batch·seq, hidden].
  virtual Tensor embed(std::span<const int32_t> ids) const = 0;
  // Runs decoder block `layer` in place. With a cache, its positions start at the cache's
  // length for that layer, and the block appends its keys/values.
  virtual void run_block(int layer, Tensor& hidden, int64_t batch, int64_t seq_len, KVCache* cache = nullptr) = 0;
  // Only the first half of block `layer`, in place: input norm, attention, residual. Calibrating
  // the attention projections needs no more, and the MoE half is most of a block's work.
  virtual void run_attention(int layer, Tensor& hidden, int64_t batch, int64_t seq_len) = 0;
  // The second half, in place: post-attention norm, MoE or dense MLP, residual. run_attention
  // then run_mlp is run_block to the bit (same chunks, same routing): calibration runs the
  // attention half once and the MLP half for each of its later passes.
  virtual void run_mlp(int layer, Tensor& hidden, int64_t batch, int64_t seq_len) = 0;
  virtual void final_norm(Tensor& hidden) const = 0;
  virtual Tensor lm_head(const Tensor& normed) const = 0;  // logits [rows, vocab]
  // The same into caller-owned memory: logits[rows, vocab] for normed[rows, hidden].
  virtual void lm_head(const float* normed, int64_t rows, float* logits) const = 0;

  // Per layer, the routing of the last run of that block (empty for dense layers).
  virtual const std::vector<LayerRouting>& last_routing() const = 0;
};

}  // namespace moeq
