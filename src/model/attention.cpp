#include "model/attention.h"

#include <algorithm>

#include "kernels/gemm.h"
#include "kernels/gemv.h"
#include "kernels/ops.h"
#include "kernels/parallel.h"

namespace moeq {
namespace {

// Shapes of one attention call: q is [batch·seq, heads·k_dim], out [batch·seq, heads·v_dim].
struct AttendShape {
  int64_t batch, seq, past, heads, kv_heads, k_dim, v_dim;
  float scale;
};

// One query row against its visible keys: the decode step.
void attend_one(const AttendShape& s, const float* q, const float* k, const float* v, float* scores, float* out) {
  const int64_t total = s.past + 1;
  gemv_f32({.x = q, .n = 1, .rows = total, .cols = s.k_dim, .y = scores}, k);
  for (int64_t t = 0; t < total; ++t) scores[t] *= s.scale;
  softmax(scores, total);
  std::fill_n(out, s.v_dim, 0.0f);
  for (int64_t t = 0; t < total; ++t)
    for (int64_t d = 0; d < s.v_dim; ++d) out[d] += scores[t] * v[t * s.v_dim + d];
}

// softmax(q·Kᵀ·scale + causal mask)·V for every (sequence, head), keys/values from the cache.
void attend(const AttendShape& s, const float* q, const KVCache& kv, int64_t layer, float* out) {
  const int64_t total = s.past + s.seq, group = s.heads / s.kv_heads;
  const int64_t ldq = s.heads * s.k_dim, ldo = s.heads * s.v_dim;
  // A decode step's attention is microseconds of work: not worth waking a second thread.
  const bool worth_it = s.batch * s.heads * s.seq * total * (s.k_dim + s.v_dim) >= (1 << 20);
  parallel_for(s.batch * s.heads, worth_it, Schedule::Dynamic, [&](int64_t item) {
    const int64_t b = item / s.heads, h = item % s.heads;
    thread_local std::vector<float> scores;
    scores.resize(size_t(s.seq * total));
    const float* k = kv.keys(layer, b, h / group);
    const float* v = kv.values(layer, b, h / group);
    const float* qbh = q + b * s.seq * ldq + h * s.k_dim;
    float* obh = out + b * s.seq * ldo + h * s.v_dim;
    if (s.seq == 1) {
      attend_one(s, qbh, k, v, scores.data(), obh);
      return;
    }
    gemm({.m = s.seq, .n = total, .k = s.k_dim, .a = qbh, .lda = ldq, .b = {GemmB::Layout::NT, DType::F32, k, s.k_dim},
          .c = scores.data(), .ldc = total, .alpha = s.scale, .causal = s.past});
    for (int64_t i = 0; i < s.seq; ++i) {
      float* row = scores.data() + i * total;
      const int64_t visible = s.past + i + 1;
      softmax(row, visible);
      std::fill(row + visible, row + total, 0.0f);
    }
    gemm({.m = s.seq, .n = s.v_dim, .k = total, .a = scores.data(), .lda = total,
          .b = {GemmB::Layout::NN, DType::F32, v, s.v_dim}, .c = obh, .ldc = ldo, .causal = s.past});
  });
}

// Copies seq rows of width dim (row stride ld) into contiguous cache rows.
void store(float* dst, const float* src, int64_t seq, int64_t ld, int64_t dim) {
  for (int64_t t = 0; t < seq; ++t) std::copy_n(src + t * ld, dim, dst + t * dim);
}

void clamp_all(float* x, int64_t n, float limit) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::clamp(x[i], -limit, limit);
}

void gqa(const AttentionWeights& w, const AttentionContext& ctx, const float* x, float* out) {
  const ModelConfig& c = ctx.config;
  const int64_t n = ctx.batch * ctx.seq, hd = c.head_dim, qw = c.num_heads * hd, kw = c.num_kv_heads * hd;
  float* q = ctx.ws.get(Buf::Q, n * qw);
  float* k = ctx.ws.get(Buf::K, n * kw);
  float* v = ctx.ws.get(Buf::V, n * kw);
  w.q(x, n, q);
  w.k(x, n, k);
  w.v(x, n, v);
  if (c.arch.qk_norm == QkNormKind::PerHead) {
    w.q_norm.apply(q, n * c.num_heads);
    w.k_norm.apply(k, n * c.num_kv_heads);
  } else if (c.arch.qk_norm == QkNormKind::Full) {
    w.q_norm.apply(q, n);
    w.k_norm.apply(k, n);
  }
  if (c.clip_qkv > 0) {
    clamp_all(q, n * qw, float(c.clip_qkv));
    clamp_all(k, n * kw, float(c.clip_qkv));
    clamp_all(v, n * kw, float(c.clip_qkv));
  }
  const int64_t half = hd / 2;
  for (int64_t t = 0; t < n; ++t) {
    const float* cs = ctx.cos + (t % ctx.seq) * half;
    const float* sn = ctx.sin + (t % ctx.seq) * half;
    for (int64_t h = 0; h < c.num_heads; ++h) rope(q + t * qw + h * hd, hd, cs, sn, c.rope_interleave);
    for (int64_t h = 0; h < c.num_kv_heads; ++h) rope(k + t * kw + h * hd, hd, cs, sn, c.rope_interleave);
  }
  for (int64_t b = 0; b < ctx.batch; ++b)
    for (int64_t h = 0; h < c.num_kv_heads; ++h) {
      const int64_t row = b * ctx.seq;
      store(ctx.kv.keys(ctx.kv_layer, b, h) + ctx.past * hd, k + row * kw + h * hd, ctx.seq, kw, hd);
      store(ctx.kv.values(ctx.kv_layer, b, h) + ctx.past * hd, v + row * kw + h * hd, ctx.seq, kw, hd);
    }
  float* att = ctx.ws.get(Buf::AttnOut, n * qw);
  attend({ctx.batch, ctx.seq, ctx.past, c.num_heads, c.num_kv_heads, hd, hd, float(c.attention_scale)}, q, ctx.kv,
         ctx.kv_layer, att);
  w.o(att, n, out);
}

// DeepSeek MLA: q (optionally through a normed low-rank bottleneck) splits per head into a
// no-RoPE and a RoPE part; keys are kv_b(norm(latent)) per head plus one RoPE part shared by
// all heads.
void mla(const AttentionWeights& w, const AttentionContext& ctx, const float* x, float* out) {
  const ModelConfig& c = ctx.config;
  const int64_t n = ctx.batch * ctx.seq, heads = c.num_heads;
  const int64_t nope = c.qk_nope_head_dim, rd = c.qk_rope_head_dim, qk = nope + rd, vd = c.v_head_dim;
  const int64_t lora = c.kv_lora_rank, lat_w = lora + rd, kvb_w = heads * (nope + vd);
  float* q = ctx.ws.get(Buf::Q, n * heads * qk);
  if (w.q_a) {
    float* qa = ctx.ws.get(Buf::K, n * c.q_lora_rank);
    w.q_a(x, n, qa);
    w.q_a_norm.apply(qa, n);
    w.q_b(qa, n, q);
  } else {
    w.q(x, n, q);
  }
  float* lat = ctx.ws.get(Buf::Latent, n * lat_w);
  w.kv_a(x, n, lat);
  for (int64_t t = 0; t < n; ++t) w.kv_a_norm.apply(lat + t * lat_w, 1);
  float* kvb = ctx.ws.get(Buf::V, n * kvb_w);
  {
    float* normed = ctx.ws.get(Buf::K, n * lora);
    for (int64_t t = 0; t < n; ++t) std::copy_n(lat + t * lat_w, lora, normed + t * lora);
    w.kv_b(normed, n, kvb);
  }
  const int64_t half = rd / 2;
  for (int64_t t = 0; t < n; ++t) {
    const float* cs = ctx.cos + (t % ctx.seq) * half;
    const float* sn = ctx.sin + (t % ctx.seq) * half;
    for (int64_t h = 0; h < heads; ++h) rope(q + (t * heads + h) * qk + nope, rd, cs, sn, c.rope_interleave);
    rope(lat + t * lat_w + lora, rd, cs, sn, c.rope_interleave);
  }
  for (int64_t b = 0; b < ctx.batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      float* kd = ctx.kv.keys(ctx.kv_layer, b, h) + ctx.past * qk;
      float* vdst = ctx.kv.values(ctx.kv_layer, b, h) + ctx.past * vd;
      for (int64_t s = 0; s < ctx.seq; ++s) {
        const int64_t t = b * ctx.seq + s;
        const float* src = kvb + t * kvb_w + h * (nope + vd);
        std::copy_n(src, nope, kd + s * qk);
        std::copy_n(lat + t * lat_w + lora, rd, kd + s * qk + nope);
        std::copy_n(src + nope, vd, vdst + s * vd);
      }
    }
  float* att = ctx.ws.get(Buf::AttnOut, n * heads * vd);
  attend({ctx.batch, ctx.seq, ctx.past, heads, heads, qk, vd, float(c.attention_scale)}, q, ctx.kv, ctx.kv_layer, att);
  w.o(att, n, out);
}

}  // namespace

void attention_forward(const AttentionWeights& w, const AttentionContext& ctx, const float* x, float* out) {
  if (ctx.config.arch.attention == AttentionKind::Mla)
    mla(w, ctx, x, out);
  else
    gqa(w, ctx, x, out);
}

}  // namespace moeq
