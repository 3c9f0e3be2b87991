// The shared building blocks of the generic decoder: weights of one norm, linear layer, SwiGLU
// MLP, attention and MoE block, and the scratch memory the forward pass reuses between calls.
// Internal to src/model; other layers see linear layers through Model::linears().
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/config.h"
#include "kernels/linear.h"
#include "model/model.h"

namespace moeq {

// Reusable fp32 buffers, one per purpose, grown on demand and never shrunk: the forward pass
// allocates nothing once the largest batch has been seen.
enum class Buf : uint8_t {
  Normed, BlockOut, Q, K, V, Latent, AttnOut, RouterLogits, Gathered, GatheredWeights, Gate, Up, ExpertOut, Shared,
  SharedGate, Count
};

class Workspace {
 public:
  float* get(Buf b, int64_t n) {
    auto& v = bufs_[size_t(b)];
    if (v.size() < size_t(n)) v.resize(size_t(n));
    return v.data();
  }

 private:
  std::array<std::vector<float>, size_t(Buf::Count)> bufs_;
};

// A LinearOp plus what the model knows about it: optional bias (added here, not by the op)
// and its identity for Model::linears().
struct Linear {
  LinearPtr op;
  std::vector<float> bias;
  std::string name;
  TensorRole role = TensorRole::Other;
  std::string projection;
  int expert = -1;

  explicit operator bool() const { return op != nullptr; }
  int64_t out_features() const { return op->out_features(); }
  // y[n, out] = x[n, in] · Wᵀ + b
  void operator()(const float* x, int64_t n, float* y) const;
};

struct Norm {
  NormKind kind = NormKind::RmsNorm;
  std::vector<float> weight, bias;
  float eps = 1e-5f;

  explicit operator bool() const { return !weight.empty(); }
  int64_t dim() const { return int64_t(weight.size()); }
  void apply(float* x, int64_t rows) const;
};

// down(silu(gate · x) ⊙ (up · x))
struct Mlp {
  Linear gate, up, down;
  void forward(const float* x, int64_t n, float* out, Workspace& ws) const;
};

struct AttentionWeights {
  Linear q, k, v, o;        // GQA (MLA without q_lora_rank uses q)
  Norm q_norm, k_norm;      // QkNormKind::PerHead or Full
  Linear q_a, q_b, kv_a, kv_b;  // MLA
  Norm q_a_norm, kv_a_norm;
};

struct MoeWeights {
  Linear router;
  std::vector<float> correction_bias;  // SigmoidBias routers
  std::vector<Mlp> experts;
  std::optional<Mlp> shared;
  Linear shared_gate;                  // SigmoidGated shared expert
};

struct Layer {
  Norm input_norm, post_norm;
  AttentionWeights attn;
  std::optional<Mlp> dense;
  std::optional<MoeWeights> moe;
};

// Calls f(Linear&) for every linear layer of the block, in forward order.
template <typename F>
void for_each_linear(Layer& l, F&& f) {
  for (Linear* lin : {&l.attn.q, &l.attn.q_a, &l.attn.q_b, &l.attn.k, &l.attn.v, &l.attn.kv_a, &l.attn.kv_b,
                      &l.attn.o})
    if (*lin) f(*lin);
  auto mlp = [&](Mlp& m) {
    f(m.gate);
    f(m.up);
    f(m.down);
  };
  if (l.moe) {
    f(l.moe->router);
    for (Mlp& e : l.moe->experts) mlp(e);
    if (l.moe->shared) mlp(*l.moe->shared);
    if (l.moe->shared_gate) f(l.moe->shared_gate);
  }
  if (l.dense) mlp(*l.dense);
}

}  // namespace moeq
