#include "quant/pipeline/quantize.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "arch/config.h"
#include "calib/calib_data.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "model/checkpoint_io.h"
#include "model/fp8_weights.h"
#include "model/manifest.h"
#include "quant/algo/gptq.h"
#include "quant/algo/rtn.h"
#include "quant/formats/size.h"
#include "quant/plan/recipe.h"

namespace moeq {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot open", file.string());
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON ({})", file.string(), e.what());
  }
}

std::string shard_name(int index, int count) {
  return fmt::format("model-{:05}-of-{:05}.safetensors", index + 1, count);
}

TensorToWrite raw_copy(const TensorView& v) {
  TensorToWrite t{v.name, v.dtype, v.shape, std::vector<std::byte>(v.nbytes)};
  std::memcpy(t.bytes.data(), v.data, v.nbytes);
  return t;
}

// The recipe with the command line's calibration overrides applied.
plan::Recipe effective_recipe(const QuantizeOptions& o) {
  plan::Recipe r = plan::load_recipe(o.recipe_file);
  auto& c = r.settings.calibration;
  if (o.calib_file) c.file = o.calib_file->string();
  if (o.calib_samples) c.samples = *o.calib_samples;
  if (o.calib_seqlen) c.seqlen = *o.calib_seqlen;
  if (o.seed) c.seed = *o.seed;
  return r;
}

// Identifies a run: a partial folder is resumed only by the same model, recipe and options.
std::string fingerprint(const QuantizeOptions& o, const plan::Recipe& recipe) {
  const std::string text = fmt::format("{}\n{}\n{}", fs::absolute(o.model_dir).lexically_normal().string(),
                                       plan::to_toml(recipe), int(o.indivisible));
  return fmt::format("{:016x}", std::hash<std::string>{}(text));
}

json unit_json(const UnitResult& u) {
  json j{{"name", u.name}, {"method", u.method}, {"spec", to_string(u.spec)}};
  if (u.tokens >= 0) j["tokens"] = u.tokens;
  if (u.loss > 0) j["loss"] = u.loss;
  if (!u.input_scale.empty()) j["input_scale"] = u.input_scale;
  return j;
}

class QuantizeJob {
 public:
  explicit QuantizeJob(const QuantizeOptions& o)
      : o_(o), partial_(fs::path(o.out_dir.string() + ".partial")), recipe_(effective_recipe(o)) {}

  json run() {
    const auto start = std::chrono::steady_clock::now();
    if (read_manifest(o_.model_dir))
      fail("{}: this model is already quantized by moeq; quantize the original checkpoint", o_.model_dir.string());
    model_ = Model::load(o_.model_dir);
    checkpoint_ = std::make_unique<Checkpoint>(Checkpoint::open(o_.model_dir));
    slots_ = model_->linears();
    resolve_plan();
    prepare_partial();
    prepare_calibration();
    const int layers = int(model_->num_layers());
    for (int layer = 0; layer < layers; ++layer) {
      process_layer(layer);
      if (layer == o_.stop_after_layer) fail("stopped after block {} as asked (stop_after_layer)", layer);
    }
    write_rest_and_finish(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return report_;
  }

 private:
  void resolve_plan() {
    plan_ = plan::resolve(recipe_, plan::units_of(slots_));
    fmt::print(stderr, "{}", plan_.summary());  // plan::resolve printed the warnings
    for (const plan::PlanEntry& e : plan_.entries) {
      if (!e.action.quantizes()) continue;
      effective_spec(e, o_.indivisible);  // fail early on impossible shapes
      check_not_tied(*model_, e, recipe_.source);
    }
  }

  void prepare_partial() {
    const std::string fp = fingerprint(o_, recipe_);
    const fs::path progress = partial_ / "progress.json";
    if (fs::exists(partial_) && o_.resume && fs::exists(progress)) {
      const json p = read_json(progress);
      if (p.value("fingerprint", "") != fp)
        fail("{}: holds a run of another model, recipe or options; remove it or pass --no-resume",
             partial_.string());
      for (int l : p.at("done")) done_.insert(l);
      fmt::print(stderr, "moeq: resuming {}: {} blocks already quantized\n", partial_.string(), done_.size());
    } else if (fs::exists(partial_)) {
      fs::remove_all(partial_);
    }
    fs::create_directories(partial_);
    fingerprint_ = fp;
  }

  bool needs_calibration() const {
    for (const auto& e : plan_.entries)
      if (e.action.calibrates()) return true;
    return false;
  }

  void prepare_calibration() {
    report_["calibration"] = nullptr;
    if (!needs_calibration()) return;
    const auto& c = recipe_.settings.calibration;
    if (c.file.empty())
      fail("{}: GPTQ/AWQ need calibration text: set [calibration] file or pass --calib", recipe_.source);
    const Tokenizer tokenizer = Tokenizer::load(o_.model_dir / "tokenizer.json");
    calib_ = load_calibration(tokenizer, {c.file, c.samples, c.seqlen, uint64_t(c.seed)});
    hidden_ = model_->embed(calib_.ids);
    report_["calibration"] = {{"file", c.file}, {"samples", c.samples}, {"seqlen", c.seqlen}, {"seed", c.seed}};
  }

  LayerJob layer_job(int layer, std::vector<LinearSlot>& slots, std::vector<const plan::PlanEntry*>& entries) {
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].layer == layer) {
        slots.push_back(slots_[i]);
        entries.push_back(&plan_.entries[i]);
      }
    return LayerJob{layer, slots, entries, &plan_.settings, o_.indivisible};
  }

  void process_layer(int layer) {
    std::vector<LinearSlot> slots;
    std::vector<const plan::PlanEntry*> entries;
    const LayerJob job = layer_job(layer, slots, entries);
    const int count = int(model_->num_layers()) + 1;
    const fs::path shard = partial_ / shard_name(layer, count);
    const fs::path layer_report = partial_ / fmt::format("layer-{:03}.json", layer);
    if (done_.count(layer)) {
      const json lr = read_json(layer_report);
      note_input_scales(lr);
      reload_layer(job, shard);
      layer_reports_.push_back(lr);
      if (hidden_.numel() > 0) model_->run_block(layer, hidden_, calib_.samples, calib_.seqlen);
    } else {
      // Per linear on a terminal (quantizing one block of a large model takes minutes), then
      // the block's line below.
      const auto quantized = std::count_if(entries.begin(), entries.end(), [](auto* e) { return e->action.quantizes(); });
      LayerResult r;
      {
        ProgressBar bar(fmt::format("moeq: block {}/{}: linears", layer + 1, model_->num_layers()), quantized);
        LayerJob with_bar = job;
        with_bar.on_linear = [&bar](int64_t done) { bar.update(done); };
        r = quantize_layer(*model_, with_bar, hidden_, calib_.samples, calib_.seqlen);
      }
      write_layer(layer, r, shard);
      const json lr = layer_json(r);
      write_text_atomically(layer_report, lr.dump(1));
      note_input_scales(lr);
      layer_reports_.push_back(lr);
      done_.insert(layer);
      write_text_atomically(partial_ / "progress.json",
                            json{{"fingerprint", fingerprint_}, {"done", done_}}.dump());
      print_progress(r);
    }
  }

  // Which linears divide their input by which stored AWQ scale (the manifest records it).
  void note_input_scales(const json& layer_report) {
    for (const json& u : layer_report.at("units"))
      if (u.contains("input_scale")) input_scales_[u.at("name")] = u.at("input_scale");
  }

  std::string input_scale_of(const std::string& weight_name) const {
    const auto it = input_scales_.find(weight_name);
    return it == input_scales_.end() ? std::string() : it->second;
  }

  void reload_layer(const LayerJob& job, const fs::path& shard) {
    const Checkpoint ck = Checkpoint::open(shard);
    for (size_t i = 0; i < job.slots.size(); ++i) {
      const plan::PlanEntry& e = *job.entries[i];
      if (!e.action.quantizes()) continue;
      *job.slots[i].op = load_quantized_linear(ck, e.unit.name, tensor_quant(e));
    }
  }

  // The manifest entry of a quantized unit (resumed blocks are rebuilt from it, as a loader would).
  TensorQuant tensor_quant(const plan::PlanEntry& e) const {
    return {std::string(plan::method_name(e.action.method)), effective_spec(e, o_.indivisible), e.unit.rows,
            e.unit.cols, input_scale_of(e.unit.name), e.action.act_bits};
  }

  // The block's shard: its quantized linears plus every other tensor of the block, as stored.
  void write_layer(int layer, const LayerResult& r, const fs::path& shard) {
    std::vector<TensorToWrite> tensors;
    std::set<std::string> replaced;
    for (const UnitResult& u : r.units) {
      replaced.insert(u.name);
      for (const TensorToWrite& t : u.tensors) tensors.push_back(t);
    }
    for (const TensorToWrite& t : r.input_scales) tensors.push_back(t);
    const std::string prefix = fmt::format("model.layers.{}.", layer);
    for (const auto& [name, view] : checkpoint_->tensors())
      if (name.starts_with(prefix) && !replaced.count(name)) carry(view, tensors);
    write_safetensors(shard, tensors, {{"format", "pt"}, {"moeq", "quantized"}});
  }

  // A source tensor the output keeps as stored; but a block-scaled FP8 source's weights are written
  // as the BF16 the model computed with, and their scales are dropped (the output's
  // quantization_config is moeq's).
  void carry(const TensorView& view, std::vector<TensorToWrite>& out) const {
    const auto& fp8 = model_->config().fp8;
    if (fp8 && view.dtype == DType::F8_E4M3) {
      const std::vector<uint16_t> bf16 = fp8_weight_to_bf16(*checkpoint_, view, *fp8);
      TensorToWrite t{view.name, DType::BF16, view.shape, std::vector<std::byte>(bf16.size() * sizeof(uint16_t))};
      std::memcpy(t.bytes.data(), bf16.data(), t.bytes.size());
      out.push_back(std::move(t));
    } else if (!(fp8 && is_fp8_scale(*checkpoint_, view.name))) {
      out.push_back(raw_copy(view));
    }
  }

  json layer_json(const LayerResult& r) const {
    json units = json::array();
    for (const UnitResult& u : r.units) units.push_back(unit_json(u));
    return {{"layer", r.layer}, {"seconds", r.seconds}, {"units", units}, {"warnings", r.warnings}};
  }

  void print_progress(const LayerResult& r) const {
    int64_t lo = -1, hi = -1;
    for (const UnitResult& u : r.units)
      if (u.tokens >= 0 && u.name.find("expert") != std::string::npos) {
        lo = lo < 0 ? u.tokens : std::min(lo, u.tokens);
        hi = std::max(hi, u.tokens);
      }
    fmt::print(stderr, "moeq: block {}/{}: {} linears quantized in {:.1f} s", r.layer + 1, model_->num_layers(),
               r.units.size(), r.seconds);
    if (lo >= 0) fmt::print(stderr, ", calibration tokens per expert linear {}..{}", lo, hi);
    fmt::print(stderr, "\n");
    for (const std::string& w : r.warnings) fmt::print(stderr, "moeq: warning: {}\n", w);
  }

  // Tensors outside the decoder blocks (embedding, final norm, lm_head), then the folder's
  // metadata, then the rename that makes OUT appear complete.
  void write_rest_and_finish(double seconds) {
    const int count = int(model_->num_layers()) + 1;
    std::vector<TensorToWrite> rest;
    std::set<std::string> replaced;
    for (size_t i = 0; i < slots_.size(); ++i) {
      const auto& e = plan_.entries[i];
      if (slots_[i].layer >= 0 || !e.action.quantizes()) continue;
      for (auto& t : quantize_outside_blocks(e)) rest.push_back(std::move(t));
      replaced.insert(e.unit.name);
    }
    for (const auto& [name, view] : checkpoint_->tensors())
      if (!name.starts_with("model.layers.") && !replaced.count(name)) carry(view, rest);
    write_safetensors(partial_ / shard_name(count - 1, count), rest, {{"format", "pt"}, {"moeq", "quantized"}});
    write_metadata(count, seconds);
    if (fs::exists(o_.out_dir)) fs::remove_all(o_.out_dir);
    fs::rename(partial_, o_.out_dir);
    fmt::print(stderr, "moeq: wrote {} in {:.1f} s\n", o_.out_dir.string(), seconds);
  }

  // The embedding is a lookup table: only RTN applies. The lm_head is a matmul on the final
  // norm's output, so GPTQ and AWQ can calibrate it on the hidden states the quantized blocks
  // produced; AWQ's input scale, unless the search kept s = 1, is stored beside it (the final
  // norm stays as it is).
  std::vector<TensorToWrite> quantize_outside_blocks(const plan::PlanEntry& e) {
    const Tensor w = checkpoint_->get(e.unit.name).to_f32();
    const QuantSpec spec = effective_spec(e, o_.indivisible);
    const std::string& name = e.unit.name;
    const ScaleDivision division = recipe_.settings.int_scales.division;
    switch (e.action.method) {
      case plan::QuantMethod::Gptq: {
        const Tensor h = lm_head_inputs(*model_, hidden_).hessian();
        return quantized_linear_tensors(name,
                                        gptq_quantize(w, h, spec, gptq_options(recipe_.settings.gptq, e.unit.role, division)).q);
      }
      case plan::QuantMethod::Awq: {
        const HessianAccumulator inputs = lm_head_inputs(*model_, hidden_);
        const Tensor h = inputs.hessian();
        const AwqLinear linear{&w, &h};
        const AwqResult r = awq_quantize({&linear, 1}, inputs.mean_abs(), spec, awq_options(recipe_.settings.awq, division));
        std::vector<TensorToWrite> out = quantized_linear_tensors(name, r.q.front());
        if (r.scales_input()) {
          input_scales_[name] = input_scale_name(name);
          out.push_back(input_scale_tensor(input_scales_[name], r.scale));
        }
        return out;
      }
      default: return quantized_linear_tensors(name, rtn_quantize(w.ptr(), w.rows(), w.cols(), spec, division));
    }
  }

  void write_metadata(int count, double seconds) {
    json weight_map = json::object();
    uint64_t total = 0;
    for (int s = 0; s < count; ++s) {
      const fs::path file = partial_ / shard_name(s, count);
      total += fs::file_size(file);
      const Checkpoint shard = Checkpoint::open(file);
      for (const auto& [name, view] : shard.tensors()) weight_map[name] = shard_name(s, count);
    }
    write_text_atomically(partial_ / "model.safetensors.index.json",
                          json{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}.dump(1));

    QuantManifest manifest;
    for (const auto& e : plan_.entries)
      if (e.action.quantizes()) manifest.tensors[e.unit.name] = tensor_quant(e);
    json config = read_json(o_.model_dir / "config.json");
    config["quantization_config"] = manifest.to_json();
    write_text_atomically(partial_ / "config.json", config.dump(2));
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
      if (fs::exists(o_.model_dir / f)) fs::copy_file(o_.model_dir / f, partial_ / f, fs::copy_options::overwrite_existing);
    plan::save_recipe(recipe_, partial_ / "recipe.toml");

    report_["model"] = o_.model_dir.string();
    report_["recipe"] = o_.recipe_file.string();
    report_["seconds"] = seconds;
    report_["bytes_on_disk"] = total;
    report_["layers"] = layer_reports_;
    write_text_atomically(partial_ / "quant_report.json", report_.dump(1));
    for (int l = 0; l < count - 1; ++l) fs::remove(partial_ / fmt::format("layer-{:03}.json", l));
    fs::remove(partial_ / "progress.json");
  }

  const QuantizeOptions& o_;
  fs::path partial_;
  plan::Recipe recipe_;
  plan::QuantPlan plan_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::vector<LinearSlot> slots_;
  std::set<int> done_;
  std::string fingerprint_;
  std::map<std::string, std::string> input_scales_;  // weight name → its AWQ input scale tensor
  CalibSet calib_;
  Tensor hidden_;
  json report_ = json::object();
  json layer_reports_ = json::array();
};

}  // namespace

json quantize_model(const QuantizeOptions& options) { return QuantizeJob(options).run(); }

}  // namespace moeq
