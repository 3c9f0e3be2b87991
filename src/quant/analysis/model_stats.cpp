#include "quant/analysis/model_stats.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <span>
#include <tuple>

#include <fmt/format.h>

#include "calib/input_recorder.h"
#include "calib/pass_wrappers.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "kernels/cpu/quant_linear.h"
#include "kernels/dense_linear.h"
#include "kernels/ops.h"
#include "quant/algo/gptq.h"
#include "quant/algo/rtn.h"
#include "quant/formats/traits.h"
#include "quant/plan/scorers.h"

namespace moeq::analysis {
namespace {

Tensor dense_weights(const LinearOp& op, const std::string& name) {
  const auto* dense = dynamic_cast<const DenseLinear*>(&op);
  if (!dense) fail("tensor '{}': statistics need the unquantized model", name);
  return dense->weight_f32();
}

// Calibration sequences the block-error probe runs (model_stats.h).
constexpr int64_t kProbeSequences = 8;

// One candidate as the quantizer would run it on this Hessian, and ½ Σ_r ΔW_r H ΔW_rᵀ.
GptqResult quantize_candidate(const Tensor& w, const Tensor& h, const plan::PlanEntry& entry,
                              const SensitivityOptions& o) {
  const QuantSpec spec = effective_spec(entry, o.indivisible);
  if (entry.action.method == plan::QuantMethod::Gptq) {
    return gptq_quantize(w, h, spec, gptq_options(o.gptq, entry.unit.role));
  }
  GptqResult r;
  r.q = rtn_quantize(w.ptr(), w.rows(), w.cols(), spec);
  const std::vector<float> q = dequantize(r.q);
  std::vector<float> delta(q.size());
  for (size_t i = 0; i < q.size(); ++i) delta[i] = w.data[i] - q[i];
  r.loss = hessian_loss(delta, h);
  return r;
}

// Rows of logits in place → log-probabilities.
void log_softmax_rows(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r, x += n) {
    const float shift = log_sum_exp(x, n);
    for (int64_t j = 0; j < n; ++j) x[j] -= shift;
  }
}

// Σ over rows of KL(p ‖ q) from log-probabilities.
double kl_sum(const float* log_p, const float* log_q, int64_t rows, int64_t n) {
  double total = 0;
  for (int64_t k = 0; k < rows * n; ++k) total += std::exp(double(log_p[k])) * (double(log_p[k]) - log_q[k]);
  return total;
}

using Probe = std::pair<size_t, QuantizedMatrix>;  // unit index, its weights at the probe candidate

class Collector {
 public:
  Collector(Model& model, const CalibSet& calib, const SensitivityOptions& options, HessianStore* hessians)
      : model_(model), calib_(calib), o_(options), hessians_(hessians), slots_(model.linears()) {}

  ModelStats run() {
    const auto start = std::chrono::steady_clock::now();
    stats_.candidates = o_.candidates();
    stats_.tokens = calib_.samples * calib_.seqlen;
    stats_.units = plan::units_of(slots_);
    stats_.per_unit.resize(slots_.size());
    Tensor hidden = model_.embed(calib_.ids);
    for (int layer = 0; layer < int(model_.num_layers()); ++layer) {
      measure_layer(layer, hidden);
      fmt::print(stderr, "moeq: statistics: block {}/{} ({:.1f} s)\n", layer + 1, model_.num_layers(), elapsed(start));
    }
    if (hessians_) keep_lm_head_hessian(hidden);
    for (size_t i = 0; i < slots_.size(); ++i) stats_.per_unit[i].outlier = outlier(slots_[i]);
    scale_to_block_error();
    measure_output_kl();
    scale_to_output_kl();
    stats_.seconds = elapsed(start);
    return std::move(stats_);
  }

 private:
  static double elapsed(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  static double outlier(const LinearSlot& slot) {
    const Tensor w = dense_weights(**slot.op, slot.name);
    return plan::outlier_score(w.data, w.rows(), w.cols());
  }

  // One run of the block with every body linear observed (and, when Hessians are kept, the
  // router's input: every token of the layer); then routing, block score and the losses of each
  // observed unit, whose Hessian is freed as soon as it is used.
  void measure_layer(int layer, Tensor& hidden) {
    PassWrappers wrappers;
    std::vector<std::pair<size_t, const InputRecorder*>> observed;
    for (size_t i = 0; i < slots_.size(); ++i) {
      const bool router = hessians_ && stats_.units[i].role == TensorRole::Router;
      if (slots_[i].layer != layer || (!is_body_unit(stats_.units[i]) && !router)) continue;
      observed.emplace_back(i, wrappers.wrap<InputRecorder>(slots_[i], RecordOptions{.keep_inputs = router}));
    }
    const Tensor input = hidden;
    model_.run_block(layer, hidden, calib_.samples, calib_.seqlen);
    wrappers.unwrap();
    stats_.block_scores.push_back(plan::block_change_score(input.data, hidden.data, hidden.cols()));
    record_routing(layer);
    const InputRecorder* router = nullptr;
    for (const auto& [i, rec] : observed) {
      if (stats_.units[i].role == TensorRole::Router) router = rec;
      else measure_unit(i, *rec);
    }
    if (router) keep_all_token_hessians(layer, *router);
    probe_layer(layer, input);
  }

  // The block's output error with one unit quantized at the probe candidate, the others not,
  // on the first probe_sequences() calibration sequences: mean over tokens of ‖Δ output‖²; and
  // the same with every probed unit of the block quantized at once. The probes are kept for
  // measure_output_kl.
  void probe_layer(int layer, const Tensor& input) {
    Tensor part({probe_sequences() * calib_.seqlen, input.cols()});
    std::copy_n(input.data.begin(), part.numel(), part.data.begin());
    Tensor reference = part;
    model_.run_block(layer, reference, probe_sequences(), calib_.seqlen);
    auto block_error = [&](std::span<Probe> probes) {
      Tensor out = part;
      with_probes(probes, [&] { model_.run_block(layer, out, probe_sequences(), calib_.seqlen); });
      double err = 0;
      for (size_t k = 0; k < out.data.size(); ++k) err += double(out.data[k] - reference.data[k]) * (out.data[k] - reference.data[k]);
      return err / double(part.rows());
    };
    for (size_t p = 0; p < probes_.size(); ++p) stats_.per_unit[probes_[p].first].block_error = block_error({&probes_[p], 1});
    stats_.layer_block_error.push_back(block_error(probes_));
    layer_probes_.push_back(std::move(probes_));
    probes_.clear();
  }

  int64_t probe_sequences() const { return std::min(calib_.samples, kProbeSequences); }

  // Runs `f` with the probes' quantized matrices in place of their units' weights.
  template <typename F>
  void with_probes(std::span<Probe> probes, F&& f) {
    std::vector<LinearPtr> dense;
    for (auto& [i, q] : probes) {
      dense.push_back(std::move(*slots_[i].op));
      *slots_[i].op = make_quant_linear(q);
    }
    f();
    for (size_t p = 0; p < probes.size(); ++p) *slots_[probes[p].first].op = std::move(dense[p]);
  }

  // Per block, the mean KL divergence per token of the model's next-token distribution with that
  // block's probed units quantized (all at once) from the unquantized model's, on the probe
  // sequences. An error in the residual stream costs more in an early block than the same error
  // in a late one, where the stream is larger; this is what puts the blocks in one currency.
  void measure_output_kl() {
    const int64_t seqlen = calib_.seqlen, vocab = model_.vocab_size();
    stats_.layer_output_kl.assign(layer_probes_.size(), 0.0);
    for (int64_t seq = 0; seq < probe_sequences(); ++seq) {
      const std::span<const int32_t> ids(calib_.ids.data() + seq * seqlen, size_t(seqlen));
      Tensor reference = model_.forward(ids, 1, seqlen);
      log_softmax_rows(reference.data.data(), seqlen, vocab);
      for (size_t layer = 0; layer < layer_probes_.size(); ++layer) {
        Tensor logits;
        with_probes(layer_probes_[layer], [&] { logits = model_.forward(ids, 1, seqlen); });
        log_softmax_rows(logits.data.data(), seqlen, vocab);
        stats_.layer_output_kl[layer] += kl_sum(reference.data.data(), logits.data.data(), seqlen, vocab);
      }
    }
    for (double& kl : stats_.layer_output_kl) kl /= double(probe_sequences() * seqlen);
    layer_probes_.clear();
  }

  // Block-output error → output KL, per block: β_l = layer_output_kl / layer_block_error.
  void scale_to_output_kl() {
    for (size_t i = 0; i < stats_.units.size(); ++i) {
      const size_t layer = size_t(stats_.units[i].layer);
      if (stats_.per_unit[i].loss.empty()) continue;
      const double error = stats_.layer_block_error[layer], kl = stats_.layer_output_kl[layer];
      for (double& l : stats_.per_unit[i].loss) l *= error > 0 ? kl / error : 0.0;
    }
  }

  // Output errors of different linears are not in one currency (an error in gate's output passes
  // SiLU and down, one in o's lands on the residual stream directly), so every unit's losses are
  // scaled by its group's (layer, role, projection) ratio of block output error to Hessian loss
  // at the probe candidate. Within a group the Hessian loss still ranks units and bit-widths.
  void scale_to_block_error() {
    std::map<std::tuple<int, TensorRole, std::string>, std::pair<double, double>> groups;
    auto group = [&](size_t i) -> auto& {
      const plan::QuantUnit& u = stats_.units[i];
      return groups[{u.layer, u.role, u.projection}];
    };
    for (size_t i = 0; i < stats_.units.size(); ++i)
      if (!stats_.per_unit[i].loss.empty()) {
        group(i).first += stats_.per_unit[i].block_error;
        group(i).second += stats_.per_unit[i].loss[probe_candidate()];
      }
    for (size_t i = 0; i < stats_.units.size(); ++i) {
      const auto [error, loss] = group(i);
      for (double& l : stats_.per_unit[i].loss) l *= loss > 0 ? error / loss : 0.0;
    }
  }

  size_t probe_candidate() const { return std::min<size_t>(1, stats_.candidates.size() - 1); }

  // Experts routed too few tokens: Hessians from every token of the layer, as the pipeline's
  // under-calibrated policy builds them.
  void keep_all_token_hessians(int layer, const InputRecorder& router) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      const plan::QuantUnit& u = stats_.units[i];
      if (u.layer != layer || u.role != TensorRole::RoutedExpert || stats_.per_unit[i].tokens >= kMinExpertTokens)
        continue;
      const std::string key = HessianStore::key(u, HessianStore::Tokens::AllOfLayer);
      if (u.projection != "down") {
        hessians_->put(key, router.stats().hessian());
        continue;
      }
      HessianAccumulator all(u.cols);
      add_expert_activations(all, sibling(u, "gate"), sibling(u, "up"), router.inputs());
      hessians_->put(key, all.hessian());
    }
  }

  void keep_lm_head_hessian(const Tensor& last_block_output) {
    for (const plan::QuantUnit& u : stats_.units)
      if (u.role == TensorRole::LmHead) hessians_->put(HessianStore::key(u), lm_head_inputs(model_, last_block_output).hessian());
  }

  const LinearOp& sibling(const plan::QuantUnit& u, std::string_view projection) const {
    for (size_t i = 0; i < slots_.size(); ++i) {
      const plan::QuantUnit& s = stats_.units[i];
      if (s.layer == u.layer && s.expert == u.expert && s.role == u.role && s.projection == projection)
        return **slots_[i].op;
    }
    fail("{}: no {} projection found for expert {}", u.name, projection, u.expert);
  }

  void record_routing(int layer) {
    const auto& all = model_.last_routing();
    std::vector<int64_t> counts;
    if (size_t(layer) < all.size() && all[size_t(layer)].experts > 0) {
      const LayerRouting& r = all[size_t(layer)];
      counts.assign(size_t(r.experts), 0);
      for (int32_t e : r.chosen) ++counts[size_t(e)];
    }
    stats_.routing.push_back(std::move(counts));
  }

  void measure_unit(size_t i, const InputRecorder& rec) {
    UnitStats& u = stats_.per_unit[i];
    const Tensor w = dense_weights(**slots_[i].op, slots_[i].name);
    u.tokens = rec.stats().tokens();
    if (u.tokens == 0) {  // never reached: quantizing it costs nothing on this data
      u.loss.assign(stats_.candidates.size(), 0.0);
      return;
    }
    const Tensor h = rec.stats().hessian();
    if (hessians_ && !hessians_->contains(HessianStore::key(stats_.units[i]))) hessians_->put(HessianStore::key(stats_.units[i]), h);
    const double share = double(u.tokens) / double(stats_.tokens);
    for (size_t c = 0; c < stats_.candidates.size(); ++c) {
      GptqResult r = quantize_candidate(w, h, {stats_.units[i], stats_.candidates[c], 0}, o_);
      u.loss.push_back(share * r.loss);
      if (c == probe_candidate()) probes_.emplace_back(i, std::move(r.q));
    }
  }

  Model& model_;
  const CalibSet& calib_;
  const SensitivityOptions& o_;
  HessianStore* hessians_;
  std::vector<LinearSlot> slots_;
  std::vector<Probe> probes_;                    // this layer's units at the probe candidate
  std::vector<std::vector<Probe>> layer_probes_;  // per finished layer, until measure_output_kl
  ModelStats stats_;
};

int64_t checkpoint_params(const std::filesystem::path& model_dir) {
  int64_t total = 0;
  const Checkpoint checkpoint = Checkpoint::open(model_dir);
  for (const auto& [name, view] : checkpoint.tensors()) total += view.numel();
  return total;
}

}  // namespace

std::vector<plan::QuantAction> SensitivityOptions::candidates() const {
  std::vector<plan::QuantAction> out;
  for (int b : bits) out.push_back(plan::QuantAction::int_bits(method, b, group_size, symmetric));
  return out;
}

std::vector<double> ModelStats::outlier_scores() const {
  std::vector<double> out;
  for (const UnitStats& u : per_unit) out.push_back(u.outlier);
  return out;
}

bool is_body_unit(const plan::QuantUnit& unit) {
  return unit.role == TensorRole::Attention || unit.role == TensorRole::RoutedExpert ||
         unit.role == TensorRole::SharedExpert || unit.role == TensorRole::DenseMlp;
}

ModelStats collect_model_stats(Model& model, const CalibSet& calib, const SensitivityOptions& options,
                               HessianStore* hessians) {
  if (options.method != plan::QuantMethod::Gptq && options.method != plan::QuantMethod::Rtn)
    fail("sensitivity: field 'method' must be gptq or rtn");
  return Collector(model, calib, options, hessians).run();
}

std::filesystem::path hessians_file(const std::filesystem::path& cache) {
  std::filesystem::path f = cache;
  return f.replace_extension(".hessians.safetensors");
}

ModelStats load_or_collect_stats(const StatsRequest& request, const std::filesystem::path& cache,
                                 HessianStore* hessians) {
  const nlohmann::json key = request_key(request);
  if (std::filesystem::exists(cache) && (!hessians || std::filesystem::exists(hessians_file(cache)))) {
    std::ifstream in(cache);
    const nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
    if (!doc.is_discarded() && doc.value("key", nlohmann::json()) == key) {
      fmt::print(stderr, "moeq: statistics from {}\n", cache.string());
      if (hessians) *hessians = HessianStore::load(hessians_file(cache));
      return stats_from_json(doc, cache.string());
    }
    fmt::print(stderr, "moeq: {} was measured under other settings; measuring again\n", cache.string());
  }
  auto model = Model::load(request.model_dir);
  const Tokenizer tokenizer = Tokenizer::load(request.model_dir / "tokenizer.json");
  const CalibSet calib = load_calibration(tokenizer, request.calib);
  ModelStats stats = collect_model_stats(*model, calib, request.sensitivity, hessians);
  int64_t in_units = 0;
  for (const plan::QuantUnit& u : stats.units) in_units += u.numel();
  stats.other_params = std::max<int64_t>(0, checkpoint_params(request.model_dir) - in_units);
  if (hessians) hessians->save(hessians_file(cache));
  write_text_atomically(cache, stats_to_json(stats, key).dump(1));
  fmt::print(stderr, "moeq: statistics measured in {:.1f} s, saved to {}\n", stats.seconds, cache.string());
  return stats;
}

}  // namespace moeq::analysis
