#include "quant/pipeline/layer_quantizer.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <utility>

#include "arch/config.h"
#include "calib/input_recorder.h"
#include "calib/pass_wrappers.h"
#include "core/error.h"
#include "kernels/act_quant_linear.h"
#include "kernels/cpu/quant_linear.h"
#include "kernels/dense_linear.h"
#include "kernels/ops.h"
#include "model/checkpoint_io.h"
#include "quant/algo/awq.h"
#include "quant/algo/gptq.h"
#include "quant/algo/rtn.h"

namespace moeq {
namespace {

using plan::QuantMethod;

constexpr int kStages = 4;

int stage_of(const LinearSlot& slot) {
  if (slot.role == TensorRole::Attention) return slot.projection == "o" ? 1 : 0;
  return slot.projection == "down" ? 3 : 2;
}

// Linears that read the same input share one recorder and one AWQ scale: q/k/v of a block,
// gate/up of one expert (for the AWQ scale, PerLayer joins every routed expert of the layer: they
// all read the post-attention norm's output). Each down projection reads its own expert's
// activations.
std::string input_group(const LinearSlot& slot, plan::AwqExpertScale expert_scale) {
  const bool own_input = slot.projection == "q_b" || slot.projection == "kv_b";
  const bool whole_layer = expert_scale == plan::AwqExpertScale::PerLayer && slot.role == TensorRole::RoutedExpert &&
                           stage_of(slot) == 2;
  return fmt::format("{}:{}:{}", stage_of(slot), int(slot.role),
                     own_input ? slot.projection : whole_layer ? "all" : std::to_string(slot.expert));
}

// Mean |x| per input channel over every row the group's linears read (one expert's routed
// tokens each, when the experts of a layer share a scale).
std::vector<float> group_mean_abs(const std::vector<size_t>& group, const std::vector<InputRecorder*>& recorded) {
  HessianAccumulator all = recorded[group.front()]->stats();
  for (size_t k = 1; k < group.size(); ++k) all.merge(recorded[group[k]]->stats());
  return all.mean_abs();
}

Tensor dense_weights(const LinearSlot& slot) {
  const auto* dense = dynamic_cast<const DenseLinear*>(slot.op->get());
  if (!dense) fail("tensor '{}' is not a dense 16/32-bit weight (already quantized?)", slot.name);
  return dense->weight_f32();
}

// Stands in, for one pass, for a linear whose output leads only to what the pass discards: zeros
// instead of a matmul.
class Silenced final : public WrappedLinear {
 public:
  using WrappedLinear::WrappedLinear;
  void forward(const float*, int64_t n, float* y) const override { std::fill_n(y, n * out_features(), 0.0f); }
};

bool is_mlp(TensorRole role) {
  return role == TensorRole::RoutedExpert || role == TensorRole::SharedExpert || role == TensorRole::DenseMlp;
}

// The router's input is every token of the layer. As it goes by, this passes it through the
// gate and up projections of experts the router sent too few tokens, adding SiLU(gate x)·(up x)
// to their down projections' Hessians: the inputs down would see if it got every token, with no
// copy of them kept. (The router runs on the block's own thread: no lock needed.)
class DownInputTap final : public WrappedLinear {
 public:
  struct Expert {
    const LinearOp* gate;
    const LinearOp* up;
    HessianAccumulator* down;
  };
  DownInputTap(LinearPtr inner, std::vector<Expert> experts) : WrappedLinear(std::move(inner)), experts_(std::move(experts)) {}

  void forward(const float* x, int64_t n, float* y) const override {
    inner_->forward(x, n, y);
    for (const Expert& e : experts_) add_expert_activations(*e.down, *e.gate, *e.up, {x, size_t(n * in_features())});
  }

 private:
  std::vector<Expert> experts_;
};

class LayerQuantizer {
 public:
  LayerQuantizer(Model& model, const LayerJob& job, Tensor& hidden, int64_t samples, int64_t seqlen)
      : model_(model), job_(job), hidden_(hidden), samples_(samples), seqlen_(seqlen) {}

  LayerResult run() {
    const auto start = std::chrono::steady_clock::now();
    result_.layer = job_.layer;
    for (int stage = 0; stage < kStages; ++stage) run_stage(stage);
    finish_block();
    result_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return std::move(result_);
  }

 private:
  const plan::PlanEntry& entry(size_t i) const { return *job_.entries[i]; }

  void run_stage(int stage) {
    std::vector<size_t> members;
    bool calibrate = false;
    for (size_t i = 0; i < job_.slots.size(); ++i)
      if (stage_of(job_.slots[i]) == stage && entry(i).action.quantizes()) {
        members.push_back(i);
        calibrate |= entry(i).action.calibrates();
      }
    if (members.empty()) return;

    PassWrappers wrappers;
    std::vector<InputRecorder*> recorded(job_.slots.size(), nullptr);
    std::map<size_t, HessianAccumulator> all_tokens;
    if (calibrate) {
      if (hidden_.numel() == 0) fail("layer {}: GPTQ/AWQ need calibration data", job_.layer);
      // Linears that read one input (q/k/v, an expert's gate and up) share one recorder: the same
      // Hessian, built once. The pass's block output is discarded, so the recorded MLP linears
      // need not run (a recorded router must: it routes the pass).
      std::map<std::string, InputRecorder*> by_input;
      for (size_t i : members) {
        if (!entry(i).action.calibrates()) continue;
        LinearSlot& slot = job_.slots[i];
        InputRecorder*& rec = by_input[input_group(slot, plan::AwqExpertScale::PerExpert)];
        if (!rec)
          rec = wrappers.wrap<InputRecorder>(slot, RecordOptions{.weight_by_routing = job_.settings->calibration.routing_weighted,
                                                                 .record_only = is_mlp(slot.role)});
        recorded[i] = rec;
      }
      LinearSlot* router = stage == 2 ? router_slot(recorded) : nullptr;
      const InputRecorder* router_inputs = router ? wrappers.wrap<InputRecorder>(*router) : nullptr;
      if (stage >= 2) silence_unread_mlp(wrappers, stage == 3);
      run_pass_on_copies(stage <= 1 ? Half::Attention : Half::Mlp);
      wrappers.unwrap();
      all_tokens = all_token_hessians(members, recorded, router_inputs);
    }
    quantize_members(members, recorded, all_tokens);
  }

  // The layer's router, unless it is itself being calibrated (a recipe quantizing it with GPTQ).
  LinearSlot* router_slot(const std::vector<InputRecorder*>& recorded) {
    for (LinearSlot& slot : job_.slots)
      if (slot.role == TensorRole::Router && !recorded[size_t(&slot - job_.slots.data())]) return &slot;
    return nullptr;
  }

  // For the all_tokens policy, Hessians from every token of the layer for the routed experts the
  // router sent too few (by member index): gate's and up's are the router input's, recorded in
  // the same pass; down's take one more pass that feeds the router's input through the expert's
  // (already quantized) gate and up as it goes by.
  std::map<size_t, HessianAccumulator> all_token_hessians(const std::vector<size_t>& members,
                                                          const std::vector<InputRecorder*>& recorded,
                                                          const InputRecorder* router_inputs) {
    std::map<size_t, HessianAccumulator> out;
    if (job_.settings->under_calibrated.policy != plan::UnderCalibratedPolicy::AllTokens) return out;
    std::vector<DownInputTap::Expert> down;
    for (size_t i : members) {
      const LinearSlot& slot = job_.slots[i];
      if (!recorded[i] || slot.role != TensorRole::RoutedExpert || !under_calibrated(*recorded[i], i)) continue;
      if (slot.projection != "down") {
        if (router_inputs) out.emplace(i, router_inputs->stats());
        continue;
      }
      HessianAccumulator& h = out.emplace(i, HessianAccumulator((*slot.op)->in_features())).first->second;
      down.push_back({&sibling(slot, "gate"), &sibling(slot, "up"), &h});
    }
    LinearSlot* router = down.empty() ? nullptr : router_slot(recorded);
    if (!router) return out;
    PassWrappers wrappers;
    wrappers.wrap<DownInputTap>(*router, std::move(down));
    silence_unread_mlp(wrappers, false);
    run_pass_on_copies(Half::Mlp);
    wrappers.unwrap();
    return out;
  }

  // Silences the block's MLP linears that no recorder of the pass needs: all but the recorders,
  // or with downs_recorded, all but recorded down projections and the gate and up that feed them.
  void silence_unread_mlp(PassWrappers& wrappers, bool downs_recorded) {
    for (LinearSlot& slot : job_.slots) {
      if (!is_mlp(slot.role) || wrappers.wraps(slot)) continue;
      const auto down = downs_recorded && slot.projection != "down" ? sibling_index(slot, "down") : std::nullopt;
      if (down && wrappers.wraps(job_.slots[*down])) continue;
      wrappers.wrap<Silenced>(slot);
    }
  }

  enum class Half { Attention, Mlp };

  // One pass of the calibration tokens through half of the block for the recorders, a few
  // sequences at a time, so that at most kPassTokens rows of the hidden states are copied
  // (hidden_ is kept for the next pass). Stages 0 and 1 (q/k/v, then o) read nothing past
  // attention; the later stages start from the attention half's output (attend()).
  void run_pass_on_copies(Half half) {
    if (half == Half::Mlp) attend();
    const int64_t per_pass = std::max<int64_t>(1, kPassTokens / seqlen_), width = hidden_.cols();
    for (int64_t first = 0; first < samples_; first += per_pass) {
      const int64_t seqs = std::min(per_pass, samples_ - first);
      Tensor part({seqs * seqlen_, width});
      std::copy_n(hidden_.data.begin() + first * seqlen_ * width, part.numel(), part.data.begin());
      if (half == Half::Attention)
        model_.run_attention(job_.layer, part, seqs, seqlen_);
      else
        model_.run_mlp(job_.layer, part, seqs, seqlen_);
    }
  }

  // Once stages 0 and 1 have quantized the attention projections, the attention half's output no
  // longer changes: hidden_ moves past it in place, once, for the MLP stages' passes and the
  // block's output (run_attention then run_mlp is run_block to the bit).
  void attend() {
    if (attended_ || hidden_.numel() == 0) return;
    model_.run_attention(job_.layer, hidden_, samples_, seqlen_);
    attended_ = true;
  }

  // Leaves hidden_ as the quantized block's output, the next block's input.
  void finish_block() {
    if (hidden_.numel() == 0) return;
    attend();
    model_.run_mlp(job_.layer, hidden_, samples_, seqlen_);
  }

  void quantize_members(const std::vector<size_t>& members, const std::vector<InputRecorder*>& recorded,
                        const std::map<size_t, HessianAccumulator>& all_tokens) {
    // Linears that read one input search one AWQ scale together, as AWQ does, when they share a
    // spec; another spec (K/V at 8 bits beside Q at 4) searches and stores its own.
    std::map<std::string, std::vector<size_t>> awq_groups;
    for (size_t i : members) {
      if (entry(i).action.method == QuantMethod::Awq && recorded[i] && !under_calibrated(*recorded[i], i)) {
        const QuantSpec spec = effective_spec(entry(i), job_.indivisible);
        awq_groups[input_group(job_.slots[i], job_.settings->awq.expert_scale) + " " + to_string(spec)].push_back(i);
        continue;
      }
      const auto all = all_tokens.find(i);
      quantize_single(i, recorded[i], all == all_tokens.end() ? nullptr : &all->second);
    }
    for (const auto& [key, group] : awq_groups) quantize_awq(group, recorded);
  }

  ScaleDivision division() const { return job_.settings->int_scales.division; }

  bool under_calibrated(const InputRecorder& rec, size_t i) const {
    if (job_.slots[i].role != TensorRole::RoutedExpert) return rec.stats().tokens() == 0;
    return rec.stats().tokens() < std::max<int64_t>(1, job_.settings->under_calibrated.min_tokens);
  }

  void quantize_single(size_t i, const InputRecorder* rec, const HessianAccumulator* all_tokens) {
    LinearSlot& slot = job_.slots[i];
    const QuantSpec spec = effective_spec(entry(i), job_.indivisible);
    const Tensor w = dense_weights(slot);
    UnitResult r{slot.name, "rtn", spec, rec ? rec->stats().tokens() : -1, 0.0, {}, {}};
    QuantizedMatrix q;
    if (rec && entry(i).action.method == QuantMethod::Gptq && !under_calibrated(*rec, i)) {
      q = run_gptq(i, w, rec->stats().hessian(), spec, r);
    } else if (rec && under_calibrated(*rec, i)) {
      q = quantize_under_calibrated(i, w, spec, all_tokens, r);
    } else {
      q = rtn_quantize(w.ptr(), w.rows(), w.cols(), spec, division());
    }
    install(i, std::move(q), {}, r);
  }

  QuantizedMatrix run_gptq(size_t i, const Tensor& w, const Tensor& hessian, const QuantSpec& spec, UnitResult& r) {
    const GptqOptions options = gptq_options(job_.settings->gptq, entry(i).unit.role, division());
    GptqResult res = gptq_quantize(w, hessian, spec, options);
    r.method = "gptq";
    r.loss = res.loss;
    return std::move(res.q);
  }

  // An expert the router sent too few calibration tokens: GPTQ on a Hessian of a handful of
  // rows overfits them (or, with none, has nothing to go on), so follow the recipe's policy.
  // all_tokens: the Hessian from every token of the layer (all_token_hessians), or null.
  QuantizedMatrix quantize_under_calibrated(size_t i, const Tensor& w, const QuantSpec& spec,
                                            const HessianAccumulator* all_tokens, UnitResult& r) {
    const LinearSlot& slot = job_.slots[i];
    const std::string why = fmt::format("{} calibration tokens", r.tokens);
    if (!all_tokens) {  // the rtn policy (or a router that is itself being calibrated)
      result_.warnings.push_back(fmt::format("{}: {}, quantized with RTN", slot.name, why));
      r.method = "rtn (under-calibrated)";
      return rtn_quantize(w.ptr(), w.rows(), w.cols(), spec, division());
    }
    result_.warnings.push_back(fmt::format("{}: {}, calibrated on all {} tokens of the layer", slot.name, why,
                                           all_tokens->tokens()));
    QuantizedMatrix q = run_gptq(i, w, all_tokens->hessian(), spec, r);
    r.method = "gptq (all tokens)";
    return q;
  }

  // The index of the linear with `projection` in slot's MLP (same role and expert), if any.
  std::optional<size_t> sibling_index(const LinearSlot& slot, std::string_view projection) const {
    for (size_t i = 0; i < job_.slots.size(); ++i) {
      const LinearSlot& s = job_.slots[i];
      if (s.expert == slot.expert && s.role == slot.role && s.projection == projection) return i;
    }
    return std::nullopt;
  }

  const LinearOp& sibling(const LinearSlot& slot, std::string_view projection) const {
    if (const auto i = sibling_index(slot, projection)) return **job_.slots[*i].op;
    fail("{}: no {} projection found for expert {}", slot.name, projection, slot.expert);
  }

  void quantize_awq(const std::vector<size_t>& group, const std::vector<InputRecorder*>& recorded) {
    const QuantSpec spec = effective_spec(entry(group.front()), job_.indivisible);
    std::vector<Tensor> weights, hessians;
    for (size_t i : group) {
      weights.push_back(dense_weights(job_.slots[i]));
      hessians.push_back(recorded[i]->stats().hessian());
    }
    std::vector<AwqLinear> linears;
    for (size_t k = 0; k < group.size(); ++k) linears.push_back({&weights[k], &hessians[k]});
    AwqResult res =
        awq_quantize(linears, group_mean_abs(group, recorded), spec, awq_options(job_.settings->awq, division()));
    const bool folded = res.scales_input() && group.size() == 1 && fold_into_up(group.front(), res.scale);
    const bool stored = res.scales_input() && !folded;
    const std::string scale_name = input_scale_name(job_.slots[group.front()].name);
    if (stored) result_.input_scales.push_back(input_scale_tensor(scale_name, res.scale));
    for (size_t k = 0; k < group.size(); ++k) {
      const size_t i = group[k];
      UnitResult r{job_.slots[i].name, "awq", spec, recorded[i]->stats().tokens(), res.loss, {}, {}};
      if (stored) r.input_scale = scale_name;
      install(i, std::move(res.q[k]), stored ? std::vector<float>(res.scale) : std::vector<float>{}, r);
    }
  }

  // A down projection's input is act(gate x) · (up x): dividing up's output row c by s[c] divides
  // down's input channel c by it, which is what down's AWQ scale asks (divide_rows), so down's
  // scale needs no tensor of its own. False (nothing changed) where up is not an INT-quantized
  // sibling of a gated MLP, or a divided scale would leave fp16's range.
  bool fold_into_up(size_t down, std::span<const float> scale) {
    const LinearSlot& slot = job_.slots[down];
    const auto up = slot.projection == "down" && sibling_index(slot, "gate") ? sibling_index(slot, "up") : std::nullopt;
    const auto kept = up ? kept_up_.find(*up) : kept_up_.end();
    if (kept == kept_up_.end() || kept->second.q.spec.format != QuantFormat::Int) return false;
    QuantizedMatrix& q = kept->second.q;
    if (!divide_rows(q, scale)) return false;
    UnitResult& r = result_.units[kept->second.unit];
    r.tensors = quantized_linear_tensors(r.name, q);
    *job_.slots[*up].op = quant_linear_op(*up, q, kept->second.input_scale);
    return true;
  }

  // What a loader builds for slot i from the stored tensors (load_quantized_linear).
  LinearPtr quant_linear_op(size_t i, const QuantizedMatrix& q, std::span<const float> input_scale) const {
    LinearPtr op = with_act_bits(make_quant_linear(q), entry(i).action.act_bits);
    if (input_scale.empty()) return op;
    std::vector<float> scale(input_scale.begin(), input_scale.end());
    return std::make_unique<InputScaledLinear>(std::move(op), std::move(scale));
  }

  void install(size_t i, QuantizedMatrix q, std::vector<float> input_scale, UnitResult& r) {
    LinearSlot& slot = job_.slots[i];
    r.tensors = quantized_linear_tensors(slot.name, q);
    *slot.op = quant_linear_op(i, q, input_scale);
    if (may_take_fold(i)) kept_up_[i] = {std::move(q), std::move(input_scale), result_.units.size()};
    result_.units.push_back(std::move(r));
    if (job_.on_linear) job_.on_linear(int64_t(result_.units.size()));
  }

  // Whether i is an up projection whose down projection AWQ quantizes and may fold into it.
  bool may_take_fold(size_t i) const {
    const LinearSlot& slot = job_.slots[i];
    const auto down = slot.projection == "up" ? sibling_index(slot, "down") : std::nullopt;
    return down && entry(*down).action.method == QuantMethod::Awq;
  }

  // An up projection's result, kept for fold_into_up until its down projection is quantized
  // (only where that down projection is AWQ's: may_take_fold).
  struct KeptUp {
    QuantizedMatrix q;
    std::vector<float> input_scale;
    size_t unit;  // its index in result_.units
  };

  Model& model_;
  const LayerJob& job_;
  Tensor& hidden_;  // the block's input, then (attend()) the attention half's output
  int64_t samples_, seqlen_;
  bool attended_ = false;
  LayerResult result_;
  std::map<size_t, KeptUp> kept_up_;
};

}  // namespace

GptqOptions gptq_options(const plan::GptqSettings& g, TensorRole role, ScaleDivision division) {
  return {float(g.damp_percent), int(g.block_size), g.act_order, g.static_groups,
          g.searches_range(role) ? std::optional<RangeSearch>(RangeSearch{}) : std::nullopt, division};
}

AwqOptions awq_options(const plan::AwqSettings& a, ScaleDivision division) {
  AwqOptions opt;
  opt.grid = int(a.n_grid);
  opt.duo_scaling = a.duo_scaling;
  opt.clip = a.clip;
  opt.scale_division = division;
  return opt;
}

void add_expert_activations(HessianAccumulator& h, const LinearOp& gate, const LinearOp& up, std::span<const float> x) {
  const int64_t in = gate.in_features(), ffn = gate.out_features(), n = int64_t(x.size()) / in;
  const int64_t rows = std::min(n, kPassTokens);
  std::vector<float> g(size_t(rows * ffn)), u(size_t(rows * ffn));
  for (int64_t first = 0; first < n; first += rows) {
    const int64_t count = std::min(rows, n - first);
    gate.forward(x.data() + first * in, count, g.data());
    up.forward(x.data() + first * in, count, u.data());
    silu_mul(g.data(), u.data(), count * ffn);
    h.add(std::span<const float>(g.data(), size_t(count * ffn)));
  }
}

namespace {

// The largest group size group / 2^k (at least kMinHalvedGroup) that divides cols; 0 (one group
// per row) if none does.
int halved_group(int group, int64_t cols) {
  while (group / 2 >= kMinHalvedGroup && cols % group != 0) group /= 2;
  return cols % group == 0 ? group : 0;
}

}  // namespace

QuantSpec effective_spec(const plan::PlanEntry& entry, IndivisibleGroups indivisible) {
  QuantSpec spec = entry.action.spec;
  const int64_t cols = entry.unit.cols;
  if (spec.format == QuantFormat::Int && spec.group_size > 0 && cols % spec.group_size != 0) {
    if (indivisible == IndivisibleGroups::Error)
      fail("tensor '{}': group size {} does not divide its input dimension {} (use group_size 0, a divisor, or "
           "--indivisible-groups halve or per-channel)",
           entry.unit.name, spec.group_size, cols);
    spec.group_size = indivisible == IndivisibleGroups::Halve ? halved_group(spec.group_size, cols) : 0;
  }
  if (spec.format != QuantFormat::Int && cols % 64 != 0)
    fail("tensor '{}': NF4/FP4 need an input dimension divisible by 64, got {}", entry.unit.name, cols);
  return spec;
}

LayerResult quantize_layer(Model& model, const LayerJob& job, Tensor& hidden, int64_t samples, int64_t seqlen) {
  return LayerQuantizer(model, job, hidden, samples, seqlen).run();
}

void check_not_tied(const Model& model, const plan::PlanEntry& entry, const std::string& source) {
  if (entry.action.quantizes() && entry.unit.layer < 0 && model.config().tie_word_embeddings)
    fail("{}: '{}' is tied to the embedding and cannot be quantized", source, entry.unit.name);
}

HessianAccumulator lm_head_inputs(const Model& model, const Tensor& hidden) {
  const int64_t rows = hidden.rows(), dim = hidden.cols();
  HessianAccumulator h(dim);
  for (int64_t r0 = 0; r0 < rows; r0 += kPassTokens) {
    const int64_t n = std::min(kPassTokens, rows - r0);
    Tensor chunk({n, dim});
    std::copy_n(hidden.ptr() + r0 * dim, n * dim, chunk.ptr());
    model.final_norm(chunk);
    h.add(chunk.data);
  }
  return h;
}

}  // namespace moeq
