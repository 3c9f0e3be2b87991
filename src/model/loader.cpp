#include "model/loader.h"

#include "model/checkpoint_io.h"
#include "model/fp8_weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace moeq {
namespace {

class Loader {
 public:
  Loader(const ModelConfig& c, std::shared_ptr<const Checkpoint> ck, DenseStorage storage,
         const QuantManifest* manifest)
      : c_(c), ck_(std::move(ck)), storage_(storage), manifest_(manifest) {}

  WeightView view(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorView& t = ck_->get(name, shape);
    if (t.dtype == DType::F8_E4M3) return widened_fp8(t);
    if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
      fail("{}: tensor '{}' has dtype {}, expected F32, BF16, F16 or F8_E4M3", t.file.string(), name, dtype_name(t.dtype));
    return WeightView{t.dtype, t.data, shape.front(), shape.back(), ck_};
  }

  // An FP8 weight becomes an owned BF16 copy: twice its file's bytes, what a BF16 checkpoint of
  // the model would map.
  WeightView widened_fp8(const TensorView& t) const {
    if (!c_.fp8)
      fail("{}: tensor '{}' is F8_E4M3, but {} has no quantization_config with quant_method 'fp8'", t.file.string(),
           t.name, c_.file.string());
    auto widened = std::make_shared<const std::vector<uint16_t>>(fp8_weight_to_bf16(*ck_, t, *c_.fp8));
    return WeightView{DType::BF16, reinterpret_cast<const std::byte*>(widened->data()), t.shape.front(), t.shape.back(),
                      widened};
  }

  std::vector<float> vec(const std::string& name, int64_t dim) const {
    Tensor t = ck_->get(name, {dim}).to_f32();
    return std::move(t.data);
  }

  Linear linear(const std::string& stem, int64_t out, int64_t in, TensorRole role, std::string projection,
                bool bias = false, int expert = -1) const {
    Linear l;
    l.name = stem + ".weight";
    const TensorQuant* q = manifest_ ? manifest_->find(l.name) : nullptr;
    if (!q) {
      l.op = std::make_unique<DenseLinear>(view(l.name, {out, in}), storage_);
    } else if (q->rows != out || q->cols != in) {
      fail("{}: quantization_config.tensors['{}']: field 'shape' is [{}, {}], the architecture's is [{}, {}]",
           c_.file.string(), l.name, q->rows, q->cols, out, in);
    } else {
      l.op = load_quantized_linear(*ck_, l.name, *q);
    }
    if (bias) l.bias = vec(stem + ".bias", out);
    l.role = role;
    l.projection = std::move(projection);
    l.expert = expert;
    return l;
  }

  Norm norm(const std::string& stem, int64_t dim, double eps, NormKind kind) const {
    Norm n;
    n.kind = kind;
    n.eps = float(eps);
    n.weight = vec(stem + ".weight", dim);
    if (kind == NormKind::LayerNorm) n.bias = vec(stem + ".bias", dim);
    return n;
  }
  Norm norm(const std::string& stem, int64_t dim) const { return norm(stem, dim, c_.norm_eps, c_.arch.norm); }

  Mlp mlp(const std::string& stem, const std::array<std::string_view, 3>& proj, int64_t ffn, TensorRole role,
          int expert = -1) const {
    const int64_t h = c_.hidden_size;
    return Mlp{linear(fmt::format("{}.{}", stem, proj[0]), ffn, h, role, "gate", false, expert),
               linear(fmt::format("{}.{}", stem, proj[1]), ffn, h, role, "up", false, expert),
               linear(fmt::format("{}.{}", stem, proj[2]), h, ffn, role, "down", false, expert)};
  }

  // GraniteMoE: expert e's gate and up are the two row halves of input_linear[e], its down is
  // output_linear[e].
  Mlp fused_expert(const std::string& block, int e) const {
    const int64_t h = c_.hidden_size, f = c_.expert_intermediate_size, n = c_.num_experts;
    const auto& names = c_.arch.names.expert_proj;
    const std::string in_name = fmt::format("{}.{}.weight", block, names[0]);
    const std::string out_name = fmt::format("{}.{}.weight", block, names[2]);
    WeightView in = view(in_name, {n, 2 * f, h}), out = view(out_name, {n, h, f});
    const size_t esize = dtype_size(in.dtype);
    // Rows [row0, row0 + rows) of expert e's [*, cols] matrix inside a [n, *, cols] tensor.
    auto slice = [&](const WeightView& w, const std::string& tensor, int64_t per_expert, int64_t row0,
                     int64_t rows, int64_t cols, const char* proj) {
      WeightView v{w.dtype, w.data + size_t(e * per_expert + row0 * cols) * esize, rows, cols, w.owner};
      Linear l;
      l.op = std::make_unique<DenseLinear>(v, storage_);
      l.name = fmt::format("{}[{}].{}", tensor, e, proj);
      l.role = TensorRole::RoutedExpert;
      l.projection = proj;
      l.expert = e;
      return l;
    };
    return Mlp{slice(in, in_name, 2 * f * h, 0, f, h, "gate"), slice(in, in_name, 2 * f * h, f, f, h, "up"),
               slice(out, out_name, h * f, 0, h, f, "down")};
  }

  AttentionWeights gqa(const std::string& p) const {
    const int64_t h = c_.hidden_size, q_out = c_.num_heads * c_.head_dim, kv_out = c_.num_kv_heads * c_.head_dim;
    const bool b = c_.qkv_bias;
    AttentionWeights a;
    a.q = linear(p + "q_proj", q_out, h, TensorRole::Attention, "q", b);
    a.k = linear(p + "k_proj", kv_out, h, TensorRole::Attention, "k", b);
    a.v = linear(p + "v_proj", kv_out, h, TensorRole::Attention, "v", b);
    a.o = linear(p + "o_proj", h, q_out, TensorRole::Attention, "o", c_.o_bias);
    if (c_.arch.qk_norm == QkNormKind::PerHead) {
      a.q_norm = norm(p + "q_norm", c_.head_dim);
      a.k_norm = norm(p + "k_norm", c_.head_dim);
    } else if (c_.arch.qk_norm == QkNormKind::Full) {
      a.q_norm = norm(p + "q_norm", q_out);
      a.k_norm = norm(p + "k_norm", kv_out);
    }
    return a;
  }

  AttentionWeights mla(const std::string& p) const {
    const int64_t h = c_.hidden_size, heads = c_.num_heads;
    const int64_t q_out = heads * c_.qk_head_dim(), kv_b_out = heads * (c_.qk_nope_head_dim + c_.v_head_dim);
    const bool b = c_.qkv_bias;
    const auto role = TensorRole::Attention;
    AttentionWeights a;
    if (c_.q_lora_rank > 0) {
      a.q_a = linear(p + "q_a_proj", c_.q_lora_rank, h, role, "q_a", b);
      a.q_a_norm = norm(p + "q_a_layernorm", c_.q_lora_rank, c_.latent_norm_eps, NormKind::RmsNorm);
      a.q_b = linear(p + "q_b_proj", q_out, c_.q_lora_rank, role, "q_b");
    } else {
      a.q = linear(p + "q_proj", q_out, h, role, "q");
    }
    a.kv_a = linear(p + "kv_a_proj_with_mqa", c_.kv_lora_rank + c_.qk_rope_head_dim, h, role, "kv_a", b);
    a.kv_a_norm = norm(p + "kv_a_layernorm", c_.kv_lora_rank, c_.latent_norm_eps, NormKind::RmsNorm);
    a.kv_b = linear(p + "kv_b_proj", kv_b_out, c_.kv_lora_rank, role, "kv_b");
    a.o = linear(p + "o_proj", h, heads * c_.v_head_dim, role, "o", c_.o_bias);
    return a;
  }

  MoeWeights moe(const std::string& block) const {
    const ArchDesc& a = c_.arch;
    const int64_t h = c_.hidden_size, n = c_.num_experts;
    MoeWeights m;
    m.router = linear(fmt::format("{}.{}", block, a.names.router), n, h, TensorRole::Router, "router");
    if (a.router == RouterKind::SigmoidBias) m.correction_bias = vec(block + ".gate.e_score_correction_bias", n);
    m.experts.reserve(size_t(n));
    for (int e = 0; e < int(n); ++e)
      m.experts.push_back(a.experts == ExpertStorage::Fused3d
                              ? fused_expert(block, e)
                              : mlp(fmt::format("{}.experts.{}", block, e), a.names.expert_proj,
                                    c_.expert_intermediate_size, TensorRole::RoutedExpert, e));
    if (c_.shared_intermediate_size > 0) {
      m.shared = mlp(fmt::format("{}.{}", block, a.names.shared_expert), {"gate_proj", "up_proj", "down_proj"},
                     c_.shared_intermediate_size, TensorRole::SharedExpert);
      if (a.shared == SharedExpertKind::SigmoidGated)
        m.shared_gate = linear(block + ".shared_expert_gate", 1, h, TensorRole::SharedExpertGate, "shared_gate");
    }
    return m;
  }

  Layer layer(int i) const {
    const std::string p = fmt::format("model.layers.{}.", i);
    Layer l;
    l.input_norm = norm(p + "input_layernorm", c_.hidden_size);
    l.post_norm = norm(p + "post_attention_layernorm", c_.hidden_size);
    l.attn = c_.arch.attention == AttentionKind::Mla ? mla(p + "self_attn.") : gqa(p + "self_attn.");
    if (c_.is_moe_layer(i))
      l.moe = moe(p + std::string(c_.arch.names.moe_block));
    else
      l.dense = mlp(p + "mlp", {"gate_proj", "up_proj", "down_proj"}, c_.intermediate_size, TensorRole::DenseMlp);
    return l;
  }

 private:
  const ModelConfig& c_;
  std::shared_ptr<const Checkpoint> ck_;
  DenseStorage storage_;
  const QuantManifest* manifest_;
};

}  // namespace

DecoderWeights load_weights(const ModelConfig& c, std::shared_ptr<const Checkpoint> ck, DenseStorage storage,
                            const QuantManifest* manifest) {
  Loader ld(c, ck, storage, manifest);
  DecoderWeights w;
  const int64_t h = c.hidden_size, v = c.vocab_size;
  w.embedding = ld.linear("model.embed_tokens", v, h, TensorRole::Embedding, "embed");
  w.layers.reserve(size_t(c.num_layers));
  for (int i = 0; i < int(c.num_layers); ++i) w.layers.push_back(ld.layer(i));
  w.final_norm = ld.norm("model.norm", h);
  // Tied embeddings: lm_head reads the embedding matrix; the slot keeps the HF tensor's name.
  w.lm_head = ld.linear(c.tie_word_embeddings ? "model.embed_tokens" : "lm_head", v, h, TensorRole::LmHead, "lm_head",
                        c.lm_head_bias && !c.tie_word_embeddings);
  return w;
}

}  // namespace moeq
