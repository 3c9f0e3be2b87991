// The generic decoder: embeddings → blocks (norm, attention, residual, norm, MoE or dense MLP,
// residual) → final norm → lm_head, with every architectural choice read from ModelConfig.
#include <cmath>

#include "arch/config.h"
#include "model/attention.h"
#include "model/kv_cache.h"
#include "model/loader.h"
#include "model/moe.h"

namespace moeq {
namespace {

class Decoder final : public Model {
 public:
  Decoder(ModelConfig config, std::shared_ptr<const Checkpoint> checkpoint, DenseStorage storage,
          const QuantManifest* manifest, bool rope_in_config_dtype)
      : c_(std::move(config)), w_(load_weights(c_, checkpoint, storage, manifest)), routing_(size_t(c_.num_layers)) {
    const int64_t rd = c_.rope_dim();
    // As transformers: 1 / theta^(2i/d) in fp32, optionally rounded to the config's dtype
    // (LoadOptions::rope_in_config_dtype, ArchDesc::inv_freq_in_model_dtype).
    const DType kept = rope_in_config_dtype && c_.arch.inv_freq_in_model_dtype ? c_.dtype : DType::F32;
    for (int64_t i = 0; i < rd / 2; ++i) {
      float f = 1.0f / std::pow(float(c_.rope_theta), float(2 * i) / float(rd));
      if (kept == DType::BF16) f = bf16_to_f32(f32_to_bf16(f));
      if (kept == DType::F16) f = f16_to_f32(f32_to_f16(f));
      inv_freq_.push_back(f);
    }
  }

  const ModelConfig& config() const override { return c_; }
  int64_t vocab_size() const override { return c_.vocab_size; }
  int64_t num_layers() const override { return c_.num_layers; }
  const std::vector<LayerRouting>& last_routing() const override { return routing_; }

  std::unique_ptr<KVCache> new_cache(int64_t batch, int64_t max_len) const override {
    return std::make_unique<KVCache>(
        KvShape{c_.num_layers, batch, max_len, c_.num_kv_heads, c_.qk_head_dim(), c_.v_dim()});
  }

  Tensor embed(std::span<const int32_t> ids) const override {
    const int64_t h = c_.hidden_size;
    Tensor out({int64_t(ids.size()), h});
    for (size_t t = 0; t < ids.size(); ++t) {
      if (ids[t] < 0 || ids[t] >= c_.vocab_size) fail("token id {} is outside the vocabulary [0, {})", ids[t], c_.vocab_size);
      w_.embedding.op->weight_rows(ids[t], 1, out.row(int64_t(t)));
    }
    if (c_.embedding_multiplier != 1.0)
      for (float& v : out.data) v *= float(c_.embedding_multiplier);
    return out;
  }

  void run_block(int layer, Tensor& hidden, int64_t batch, int64_t seq, KVCache* cache) override {
    run_part(BlockPart::Whole, layer, hidden, batch, seq, cache);
  }

  void run_attention(int layer, Tensor& hidden, int64_t batch, int64_t seq) override {
    run_part(BlockPart::Attention, layer, hidden, batch, seq, nullptr);
  }

  void run_mlp(int layer, Tensor& hidden, int64_t batch, int64_t seq) override {
    run_part(BlockPart::Mlp, layer, hidden, batch, seq, nullptr);
  }

  void final_norm(Tensor& hidden) const override { w_.final_norm.apply(hidden.ptr(), hidden.numel() / c_.hidden_size); }

  Tensor lm_head(const Tensor& normed) const override {
    const int64_t rows = normed.numel() / c_.hidden_size;
    Tensor logits({rows, c_.vocab_size});
    lm_head(normed.ptr(), rows, logits.ptr());
    return logits;
  }

  void lm_head(const float* normed, int64_t rows, float* logits) const override {
    w_.lm_head(normed, rows, logits);
    if (c_.logits_scaling == 1.0) return;
    const float s = float(c_.logits_scaling);
    for (int64_t i = 0; i < rows * c_.vocab_size; ++i) logits[i] /= s;
  }

  Tensor forward(std::span<const int32_t> ids, int64_t batch, int64_t seq, KVCache* cache) override {
    if (int64_t(ids.size()) != batch * seq) fail("forward: {} ids for batch {} × seq {}", ids.size(), batch, seq);
    Tensor hidden = embed(ids);
    for (int i = 0; i < int(c_.num_layers); ++i) run_block(i, hidden, batch, seq, cache);
    final_norm(hidden);
    Tensor logits = lm_head(hidden);
    logits.shape = {batch, seq, c_.vocab_size};
    return logits;
  }

  std::vector<LinearSlot> linears() override {
    std::vector<LinearSlot> out;
    auto add = [&](Linear& l, int layer) {
      out.push_back({l.name, l.role, layer, l.expert, l.projection, &l.op});
    };
    // A tied embedding is the lm_head's matrix: one slot for the tensor.
    if (!c_.tie_word_embeddings) add(w_.embedding, -1);
    for (size_t i = 0; i < w_.layers.size(); ++i) for_each_linear(w_.layers[i], [&](Linear& l) { add(l, int(i)); });
    add(w_.lm_head, -1);
    return out;
  }

 private:
  static constexpr int64_t kMaxBlockTokens = 4096;

  enum class BlockPart { Attention, Mlp, Whole };

  static const char* part_name(BlockPart part) {
    return part == BlockPart::Whole ? "run_block" : part == BlockPart::Attention ? "run_attention" : "run_mlp";
  }

  void run_part(BlockPart part, int layer, Tensor& hidden, int64_t batch, int64_t seq, KVCache* cache) {
    const int64_t h = c_.hidden_size;
    const char* what = part_name(part);
    if (layer < 0 || layer >= c_.num_layers) fail("{}: layer {} out of range [0, {})", what, layer, c_.num_layers);
    if (hidden.numel() != batch * seq * h)
      fail("{}: hidden has {} values, expected {}·{}·{}", what, hidden.numel(), batch, seq, h);
    // Without a cache the sequences are independent: a few at a time keep the scratch buffers
    // (sized by the tokens of one call) small when calibration passes 128 × 512 tokens at once.
    const int64_t per_chunk = cache ? batch : std::max<int64_t>(1, kMaxBlockTokens / seq);
    if (per_chunk >= batch) {
      run_block_rows(part, layer, hidden.ptr(), batch, seq, cache);
      return;
    }
    const bool routes = part != BlockPart::Attention;  // else last_routing() stays as it was
    LayerRouting all;
    for (int64_t b = 0; b < batch; b += per_chunk) {
      run_block_rows(part, layer, hidden.ptr() + b * seq * h, std::min(per_chunk, batch - b), seq, nullptr);
      if (routes) append_routing(all, routing_[size_t(layer)]);
    }
    if (routes) routing_[size_t(layer)] = std::move(all);
  }

  // One block (or one half of it) over hidden[batch, seq, hidden_size], in place.
  void run_block_rows(BlockPart part, int layer, float* hidden, int64_t batch, int64_t seq, KVCache* cache) {
    const int64_t past = cache ? cache->layer_length(layer) : 0;
    if (part != BlockPart::Mlp) attention_half(layer, hidden, batch, seq, cache, past);
    if (part != BlockPart::Attention) mlp_half(layer, hidden, batch * seq);
    if (cache) cache->set_layer_length(layer, past + seq);
  }

  void attention_half(int layer, float* hidden, int64_t batch, int64_t seq, KVCache* cache, int64_t past) {
    const int64_t n = batch * seq, h = c_.hidden_size;
    KVCache& kv = cache ? *cache : scratch(batch, seq);
    const int64_t kv_layer = cache ? layer : 0;
    if (cache && (cache->batch() != batch || past + seq > cache->max_len()))
      fail("KV cache holds batch {} × {} positions; asked for batch {} at positions {}..{}", cache->batch(),
           cache->max_len(), batch, past, past + seq);
    update_rope_table(past, seq);
    const Layer& l = w_.layers[size_t(layer)];
    float* x = ws_.get(Buf::Normed, n * h);
    float* y = ws_.get(Buf::BlockOut, n * h);
    std::copy_n(hidden, n * h, x);
    l.input_norm.apply(x, n);
    attention_forward(l.attn, {c_, batch, seq, past, kv, kv_layer, cos_.data(), sin_.data(), ws_}, x, y);
    add_residual(hidden, y, n * h);
  }

  void mlp_half(int layer, float* hidden, int64_t n) {
    const int64_t h = c_.hidden_size;
    const Layer& l = w_.layers[size_t(layer)];
    float* x = ws_.get(Buf::Normed, n * h);
    float* y = ws_.get(Buf::BlockOut, n * h);
    std::copy_n(hidden, n * h, x);
    l.post_norm.apply(x, n);
    if (l.moe)
      moe_forward(*l.moe, c_, x, n, y, ws_, routing_[size_t(layer)]);
    else
      l.dense->forward(x, n, y, ws_);
    add_residual(hidden, y, n * h);
  }

  static void append_routing(LayerRouting& all, const LayerRouting& part) {
    all.tokens += part.tokens;
    all.experts = part.experts;
    all.top_k = part.top_k;
    all.logits.insert(all.logits.end(), part.logits.begin(), part.logits.end());
    all.chosen.insert(all.chosen.end(), part.chosen.begin(), part.chosen.end());
    all.weights.insert(all.weights.end(), part.weights.begin(), part.weights.end());
  }

  void add_residual(float* hidden, const float* y, int64_t n) const {
    const float m = float(c_.residual_multiplier);
    for (int64_t i = 0; i < n; ++i) hidden[i] += y[i] * m;
  }

  // Without a cache, a block's keys/values only live during the block: one reusable store.
  KVCache& scratch(int64_t batch, int64_t seq) {
    if (!scratch_ || scratch_->batch() != batch || scratch_->max_len() < seq)
      scratch_ = std::make_unique<KVCache>(KvShape{1, batch, seq, c_.num_kv_heads, c_.qk_head_dim(), c_.v_dim()});
    return *scratch_;
  }

  void update_rope_table(int64_t past, int64_t seq) {
    if (past == table_past_ && seq == table_seq_) return;
    const int64_t half = int64_t(inv_freq_.size());
    cos_.resize(size_t(seq * half));
    sin_.resize(size_t(seq * half));
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t i = 0; i < half; ++i) {
        const float angle = float(past + s) * inv_freq_[size_t(i)];
        cos_[size_t(s * half + i)] = std::cos(angle);
        sin_[size_t(s * half + i)] = std::sin(angle);
      }
    table_past_ = past;
    table_seq_ = seq;
  }

  ModelConfig c_;
  DecoderWeights w_;
  std::vector<LayerRouting> routing_;
  std::vector<float> inv_freq_, cos_, sin_;
  int64_t table_past_ = -1, table_seq_ = -1;
  Workspace ws_;
  std::unique_ptr<KVCache> scratch_;
};

}  // namespace

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir, const LoadOptions& options) {
  ModelConfig config = load_config(dir);
  auto checkpoint = std::make_shared<const Checkpoint>(Checkpoint::open(dir));
  warn_nonfinite(*checkpoint);
  const std::optional<QuantManifest> manifest = read_manifest(dir);
  return std::make_unique<Decoder>(std::move(config), std::move(checkpoint), options.storage,
                                   manifest ? &*manifest : nullptr, options.rope_in_config_dtype);
}

}  // namespace moeq
