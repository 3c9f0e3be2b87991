// End-to-end `moeq quantize` on small models: the written folder loads and runs, the router stays
// 16-bit, GPTQ beats RTN, a killed run resumes to the same result, bad input fails cleanly.
#include "quant/pipeline/quantize.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "arch/tensor_roles.h"
#include "calib/calib_data.h"
#include "calib/input_recorder.h"
#include "core/error.h"
#include "eval/perplexity.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "kernels/act_quant_linear.h"
#include "model/manifest.h"
#include "model/model.h"
#include "model/model_summary.h"
#include "quant/algo/awq.h"
#include "quant/algo/gptq.h"
#include "quant/algo/rtn.h"
#include "quant/formats/qtensor.h"
#include "quant/formats/size.h"
#include "quant/formats/traits.h"
#include "quant/pipeline/layer_quantizer.h"
#include "quant/plan/plan.h"
#include "quant/plan/recipe.h"
#include "quant/plan/unit.h"
#include "quant_test_util.h"
#include "test_util.h"

namespace moeq {
namespace {
namespace fs = std::filesystem;
using testing::hessian_of;

using testing::demo_model;

fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("moeq-quantize-test-" + name);
  fs::remove_all(dir);
  fs::remove_all(dir.string() + ".partial");
  fs::create_directories(dir.parent_path());
  return dir;
}

fs::path write_recipe(const std::string& name, const std::string& text) {
  fs::path file = fs::temp_directory_path() / ("moeq-recipe-" + name + ".toml");
  std::ofstream(file) << text;
  return file;
}

QuantizeOptions options(const fs::path& model, const fs::path& recipe, const fs::path& out) {
  QuantizeOptions o;
  o.model_dir = model;
  o.recipe_file = recipe;
  o.out_dir = out;
  o.calib_file = testing::demo_calib_text();
  o.calib_samples = 16;
  o.calib_seqlen = 128;
  return o;
}

double demo_perplexity(const fs::path& model_dir, int64_t windows) {
  auto model = Model::load(model_dir);
  const Tokenizer tok = Tokenizer::load(demo_model() / "tokenizer.json");
  std::ifstream in(demo_model() / "indomain_valid.txt");
  std::stringstream text;
  text << in.rdbuf();
  std::vector<int32_t> ids = tok.encode(text.str());
  ids.resize(size_t(windows * 512));
  return perplexity(*model, ids).ppl;
}

constexpr const char* kExperts = R"(role = ["attention", "routed_expert"]
group_size = 64
)";

TEST(QuantizePipeline, Int8RtnFixtureMatchesOriginalAndKeepsRouterDense) {
  const fs::path fixture = testing::shared_dir() / "fixtures/mixtral";
  const fs::path out = scratch("int8");
  const fs::path recipe = write_recipe("int8", std::string("[[rule]]\nmethod = \"rtn\"\nbits = 8\n") + kExperts);
  QuantizeOptions o = options(fixture, recipe, out);
  o.indivisible = IndivisibleGroups::PerChannel;  // the fixture's down projections have 96 inputs
  o.calib_file.reset();
  quantize_model(o);
  ASSERT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  ASSERT_FALSE(fs::exists(out.string() + ".partial"));

  auto original = Model::load(fixture);
  auto quantized = Model::load(out);
  for (const LinearSlot& s : quantized->linears()) {
    const std::string format = (*s.op)->format_name();
    if (s.role == TensorRole::Router || s.role == TensorRole::LmHead || s.role == TensorRole::Embedding)
      EXPECT_EQ(format, "bf16") << s.name << " must stay 16-bit";
    else
      EXPECT_EQ(format, s.projection == "down" ? "int8 g0 asym" : "int8 g64 asym") << s.name;
  }
  const std::vector<int32_t> ids = {5, 17, 300, 42, 7, 99, 1, 260};
  const Tensor a = original->forward(ids, 1, int64_t(ids.size()));
  const Tensor b = quantized->forward(ids, 1, int64_t(ids.size()));
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    max_diff = std::max(max_diff, double(std::fabs(a.data[i] - b.data[i])));
    max_abs = std::max(max_abs, double(std::fabs(a.data[i])));
  }
  EXPECT_GT(max_diff, 0.0) << "8-bit weights are not the bf16 weights";
  EXPECT_LT(max_diff, 0.02 * max_abs) << "8-bit RTN must stay close to the original";
}

// act_bits = 8 on the experts' rule: the folder records it for exactly those linears, and the
// loaded model computes what the same weights compute with each of those linears' input rows
// quantized to INT8 (with_act_bits on the A16 folder's ops), bit for bit; attention reads its
// inputs as they are.
TEST(QuantizePipeline, ActBitsQuantizeTheInputsOfTheRulesLinearsOnly) {
  const fs::path fixture = testing::shared_dir() / "fixtures/mixtral";
  const std::string attention = "[[rule]]\nrole = \"attention\"\nmethod = \"rtn\"\nbits = 8\ngroup_size = 0\n";
  const std::string experts = "[[rule]]\nrole = \"routed_expert\"\nmethod = \"rtn\"\nbits = 4\ngroup_size = 0\n";
  auto quantize = [&](const std::string& name, const std::string& text) {
    const fs::path out = scratch(name);
    QuantizeOptions o = options(fixture, write_recipe(name, text), out);
    o.calib_file.reset();
    quantize_model(o);
    return out;
  };
  const fs::path a16 = quantize("w4a16", attention + experts);
  const fs::path a8 = quantize("w4a8", attention + experts + "act_bits = 8\n");

  const QuantManifest manifest = *read_manifest(a8);
  const ModelSummary summary = summarize_model(a8);
  EXPECT_EQ(summary.total.act8_params, summary.role(TensorRole::RoutedExpert).params);
  EXPECT_GT(summary.role(TensorRole::Attention).quantized_params, 0);
  auto reference = Model::load(a16);
  auto quantized = Model::load(a8);
  std::vector<LinearSlot> slots = reference->linears();
  for (const LinearSlot& s : quantized->linears()) {
    const TensorQuant* q = manifest.find(s.name);
    if (s.role == TensorRole::RoutedExpert) {
      EXPECT_EQ(q->act_bits, 8) << s.name;
      EXPECT_EQ((*s.op)->format_name(), "int4 g0 asym a8") << s.name;
    } else if (q) {
      EXPECT_EQ(q->act_bits, 16) << s.name;
    }
  }
  for (LinearSlot& s : slots)
    if (s.role == TensorRole::RoutedExpert) *s.op = with_act_bits(std::move(*s.op), 8);
  const std::vector<int32_t> ids = {5, 17, 300, 42, 7, 99, 1, 260};
  const Tensor expected = reference->forward(ids, 1, int64_t(ids.size()));
  EXPECT_EQ(quantized->forward(ids, 1, int64_t(ids.size())).data, expected.data);
  EXPECT_NE(Model::load(a16)->forward(ids, 1, int64_t(ids.size())).data, expected.data)
      << "INT8 activations must change the logits";

  // A manifest entry with activation bits moeq does not run, or a shape the architecture does
  // not have, fails to load, naming the file, tensor and field.
  const std::string expert = "model.layers.0.block_sparse_moe.experts.0.w1.weight";
  for (const auto& [field, value] : {std::pair{"act_bits", nlohmann::json(4)}, {"shape", nlohmann::json({8, 8})}}) {
    const fs::path bad = scratch(std::string("bad-") + field);
    fs::copy(a8, bad);
    nlohmann::json config = nlohmann::json::parse(std::ifstream(bad / "config.json"));
    config["quantization_config"]["tensors"][expert][field] = value;
    std::ofstream(bad / "config.json") << config.dump();
    try {
      Model::load(bad);
      ADD_FAILURE() << "a manifest with " << field << " = " << value.dump() << " must not load";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind((bad / "config.json").string(), 0), 0u) << message;
      EXPECT_NE(message.find(fmt::format("tensors['{}']", expert)), std::string::npos) << message;
      EXPECT_NE(message.find(fmt::format("field '{}'", field)), std::string::npos) << message;
    }
  }
}

// A rule without selectors leaves the embedding and lm_head alone; one naming their roles
// quantizes them with RTN, and the model looks its embeddings up in the quantized table.
TEST(QuantizePipeline, EmbeddingAndLmHeadQuantizeOnlyWhenNamed) {
  const fs::path fixture = testing::shared_dir() / "fixtures/qwen3_moe";
  const fs::path out = scratch("embedding");
  const fs::path recipe = write_recipe("embedding", R"([[rule]]
role = ["embedding", "lm_head"]
method = "rtn"
bits = 4
group_size = 32

[[rule]]
method = "rtn"
bits = 8
group_size = 0
)");
  QuantizeOptions o = options(fixture, recipe, out);
  o.calib_file.reset();
  quantize_model(o);
  auto original = Model::load(fixture);
  auto quantized = Model::load(out);
  std::map<TensorRole, std::string> formats;
  for (const LinearSlot& s : quantized->linears()) formats[s.role] = (*s.op)->format_name();
  EXPECT_EQ(formats[TensorRole::Embedding], "int4 g32 asym");
  EXPECT_EQ(formats[TensorRole::LmHead], "int4 g32 asym");
  EXPECT_EQ(formats[TensorRole::Attention], "int8 g0 asym");
  EXPECT_EQ(formats[TensorRole::Router], "bf16");

  // Each embedding value moves by at most one step of its group (half a step, plus the rounding
  // of the zero point), and not all stay.
  const std::vector<int32_t> ids = {0, 5, 17, 300, 42};
  const Tensor a = original->embed(ids), b = quantized->embed(ids);
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    max_diff = std::max(max_diff, double(std::fabs(a.data[i] - b.data[i])));
    max_abs = std::max(max_abs, double(std::fabs(a.data[i])));
  }
  EXPECT_GT(max_diff, 0.0);
  EXPECT_LE(max_diff, 2.0 * max_abs / 15.0);  // a group spans at most 2·max|w| in 15 steps

  // `moeq info`: parameters at their logical shapes, bits both ways.
  const ModelSummary before = summarize_model(fixture), after = summarize_model(out);
  EXPECT_TRUE(after.quantized);
  EXPECT_EQ(after.total.params, before.total.params);
  const RoleTotals& emb = after.role(TensorRole::Embedding);
  const int64_t vocab = before.vocab, hidden = before.hidden;
  EXPECT_EQ(emb.quantized_params, vocab * hidden);
  EXPECT_DOUBLE_EQ(emb.nominal_bits(), 4.0);
  EXPECT_EQ(emb.bytes, quant_size(parse_quant_spec("int4 g32 asym"), vocab, hidden).total());
  EXPECT_DOUBLE_EQ(after.role(TensorRole::Attention).nominal_bits(), 8.0);
  EXPECT_EQ(after.role(TensorRole::Router).quantized_params, 0);
  EXPECT_EQ(after.role(TensorRole::Router).bytes, before.role(TensorRole::Router).bytes);
}

TEST(QuantizePipeline, GptqBeatsRtnAtThreeBitsOnTheDemoModel) {
  const std::string rule = std::string("[[rule]]\nbits = 3\n") + kExperts;
  const fs::path rtn_out = scratch("rtn3"), gptq_out = scratch("gptq3");
  quantize_model(options(demo_model(), write_recipe("rtn3", rule + "method = \"rtn\"\n"), rtn_out));
  quantize_model(options(demo_model(), write_recipe("gptq3", rule + "method = \"gptq\"\n"), gptq_out));
  const double base = demo_perplexity(demo_model(), 4);
  const double rtn = demo_perplexity(rtn_out, 4);
  const double gptq = demo_perplexity(gptq_out, 4);
  EXPECT_GT(rtn, base);
  EXPECT_LT(gptq, rtn) << "base " << base << " rtn " << rtn << " gptq " << gptq;
}

// [gptq] mse_skip turns the range search off for the roles it names only. Layer 0's attention
// reads the same inputs in every run: with attention skipped it is quantized as with mse = false
// and not as with the search on; the experts after it then read those same inputs, and their
// codes differ from mse = false's because the search still ran for them.
TEST(QuantizePipeline, MseSkipTurnsTheRangeSearchOffForTheNamedRolesOnly) {
  const std::string rule = std::string("[[rule]]\nmethod = \"gptq\"\nbits = 4\n") + kExperts;
  auto run = [&](const std::string& name, const std::string& gptq) {
    const fs::path out = scratch(name);
    quantize_model(options(demo_model(), write_recipe(name, "[gptq]\n" + gptq + "\n" + rule), out));
    return out;
  };
  const fs::path on = run("mse-on", "mse = true"), off = run("mse-off", "mse = false"),
                 skip = run("mse-skip", "mse_skip = [\"attention\"]");
  const Checkpoint a = Checkpoint::open(on), b = Checkpoint::open(off), c = Checkpoint::open(skip);
  auto bytes = [](const Checkpoint& ck, const std::string& name) {
    const TensorView& t = ck.get(name);
    return std::vector<std::byte>(t.data, t.data + t.nbytes);
  };
  const std::string layer = "model.layers.0.";
  for (const char* proj : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"}) {
    const std::string scales = layer + proj + ".scales";
    EXPECT_EQ(bytes(c, scales), bytes(b, scales)) << scales;
    EXPECT_EQ(bytes(c, layer + proj + ".qweight"), bytes(b, layer + proj + ".qweight")) << proj;
    EXPECT_NE(bytes(c, scales), bytes(a, scales)) << scales;
  }
  int differ = 0;
  for (int e = 0; e < 8; ++e)
    for (const char* w : {"w1", "w2", "w3"}) {
      const std::string name = fmt::format("{}block_sparse_moe.experts.{}.{}.scales", layer, e, w);
      differ += bytes(c, name) != bytes(b, name);
    }
  EXPECT_GT(differ, 12) << "the search should change most of the 24 expert linears' scales";
}

// AWQ searches one input scale for the linears that read one input and share a spec, and stores
// it once, in fp16, named by their manifest entries: q/k/v share it at one bit-width; with K and
// V at 8 bits beside Q at 3, K and V share theirs and Q has its own; an expert's gate (w1) and up
// (w3) share one, and its down projection's (w2) is folded into up's rows (no tensor). With
// expert_scale = "per_layer" every expert of a layer shares one. At 3 bits AWQ beats RTN of the
// same specs either way.
TEST(QuantizePipeline, AwqStoresOneScalePerInputAndSpecAndBeatsRtn) {
  const std::string kv8 = "[[rule]]\nrole = \"attention\"\nprojection = [\"k\", \"v\"]\nbits = 8\ngroup_size = 0\n";
  const std::string rest = std::string("[[rule]]\nbits = 3\n") + kExperts;
  auto recipe = [&](const char* method, const std::string& settings) {
    const std::string m = fmt::format("method = \"{}\"\n", method);
    return write_recipe(fmt::format("awq-{}", method), settings + kv8 + m + rest + m);
  };
  const fs::path awq_out = scratch("awq"), layer_out = scratch("awq-layer"), rtn_out = scratch("awq-rtn");
  const nlohmann::json report = quantize_model(options(demo_model(), recipe("awq", ""), awq_out));
  // (a coarser search keeps the test short; the scale layout is what it checks)
  const std::string per_layer_settings = "[awq]\nexpert_scale = \"per_layer\"\nn_grid = 5\nclip = false\n";
  const nlohmann::json layer_report = quantize_model(options(demo_model(), recipe("awq", per_layer_settings), layer_out));
  quantize_model(options(demo_model(), recipe("rtn", ""), rtn_out));

  const QuantManifest manifest = *read_manifest(awq_out), per_layer = *read_manifest(layer_out);
  auto scale = [](const QuantManifest& m, const std::string& linear) { return m.find(linear + ".weight")->input_scale; };
  const Checkpoint ck = Checkpoint::open(awq_out);
  // Experts the router sent too few calibration tokens take the under-calibrated policy instead.
  std::map<std::string, int> awq_runs;
  for (const nlohmann::json* r : {&report, &layer_report})
    for (const auto& layer : r->at("layers"))
      for (const auto& u : layer.at("units")) awq_runs[u.at("name")] += u.at("method") == "awq";
  for (int layer = 0; layer < 4; ++layer) {
    const std::string attn = fmt::format("model.layers.{}.self_attn.", layer);
    EXPECT_EQ(scale(manifest, attn + "k_proj"), attn + "k_proj.input_scale");
    EXPECT_EQ(scale(manifest, attn + "v_proj"), attn + "k_proj.input_scale");
    EXPECT_EQ(scale(manifest, attn + "q_proj"), attn + "q_proj.input_scale");
    EXPECT_EQ(ck.get(attn + "q_proj.input_scale").dtype, DType::F16);
    const std::string moe = fmt::format("model.layers.{}.block_sparse_moe.experts.", layer);
    for (int e = 0; e < 8; ++e) {
      const std::string expert = fmt::format("{}{}.", moe, e);
      if (awq_runs.at(expert + "w1.weight") < 2) continue;
      EXPECT_EQ(scale(manifest, expert + "w1"), expert + "w1.input_scale") << expert;
      EXPECT_EQ(scale(manifest, expert + "w3"), expert + "w1.input_scale") << expert;
      EXPECT_EQ(scale(manifest, expert + "w2"), "") << expert << " down's scale is folded into up";
      EXPECT_FALSE(ck.contains(expert + "w2.input_scale"));
      EXPECT_EQ(scale(per_layer, expert + "w1"), scale(per_layer, moe + "0.w1")) << expert;
      EXPECT_EQ(scale(per_layer, expert + "w3"), scale(per_layer, moe + "0.w1")) << expert;
      EXPECT_EQ(scale(per_layer, expert + "w2"), "") << expert << " down's scale is its own, folded into up";
    }
  }
  auto model = Model::load(awq_out);
  for (const LinearSlot& s : model->linears()) {
    if (s.layer != 0 || (s.projection != "k" && s.projection != "q" && s.projection != "down")) continue;
    const std::map<std::string, std::string> format = {
        {"k", "int8 g0 asym awq"}, {"q", "int3 g64 asym awq"}, {"down", "int3 g64 asym"}};
    EXPECT_EQ((*s.op)->format_name(), format.at(s.projection)) << s.name;
  }

  // A manifest that does not name a stored scale (an older folder) fails to load, naming it.
  const fs::path stale = scratch("awq-stale");
  fs::copy(awq_out, stale);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(stale / "config.json"));
  config["quantization_config"]["tensors"]["model.layers.0.self_attn.q_proj.weight"].erase("input_scale");
  std::ofstream(stale / "config.json") << config.dump();
  try {
    Model::load(stale);
    ADD_FAILURE() << "a stored scale the manifest does not name must not load";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'model.layers.0.self_attn.q_proj.input_scale' is not named"),
              std::string::npos) << e.what();
  }

  const double base = demo_perplexity(demo_model(), 4), awq = demo_perplexity(awq_out, 4),
               layer = demo_perplexity(layer_out, 4), rtn = demo_perplexity(rtn_out, 4);
  EXPECT_GT(rtn, base);
  EXPECT_LT(awq, rtn) << "base " << base << " rtn " << rtn << " awq " << awq;
  EXPECT_LT(layer, rtn) << "base " << base << " rtn " << rtn << " awq per layer " << layer;
}

TEST(QuantizePipeline, KilledRunLeavesNoOutputAndResumesToTheSameResult) {
  const fs::path recipe = write_recipe("resume", std::string("[[rule]]\nmethod = \"gptq\"\nbits = 4\n") + kExperts);
  const fs::path fresh = scratch("fresh"), resumed = scratch("resumed");
  quantize_model(options(demo_model(), recipe, fresh));

  QuantizeOptions o = options(demo_model(), recipe, resumed);
  o.stop_after_layer = 1;
  EXPECT_THROW(quantize_model(o), Error);
  EXPECT_FALSE(fs::exists(resumed)) << "an unfinished run must not look complete";
  EXPECT_TRUE(fs::exists(resumed.string() + ".partial/progress.json"));
  o.stop_after_layer = -1;
  quantize_model(o);
  EXPECT_FALSE(fs::exists(resumed.string() + ".partial"));
  EXPECT_DOUBLE_EQ(demo_perplexity(fresh, 2), demo_perplexity(resumed, 2));
}

// The same recipe and calibration give the same files on one thread and on two: the Hessians'
// sums and GPTQ's sweeps are split by rows, not by threads, and the model runs experts side by
// side or one after another (moe.cpp) with the same results.
TEST(QuantizePipeline, GptqWritesTheSameFilesOnOneAndTwoThreads) {
  const fs::path recipe = write_recipe("threads", std::string("[[rule]]\nmethod = \"gptq\"\nbits = 4\n") + kExperts);
  const int threads = omp_get_max_threads();
  std::map<fs::path, std::string> files[2];
  for (int t : {1, 2}) {
    const fs::path out = scratch(fmt::format("threads-{}", t));
    omp_set_num_threads(t);
    quantize_model(options(demo_model(), recipe, out));
    for (const auto& entry : fs::directory_iterator(out))
      if (entry.path().extension() == ".safetensors") files[t - 1][entry.path().filename()] = testing::read_file(entry.path());
  }
  omp_set_num_threads(threads);
  ASSERT_FALSE(files[0].empty());
  EXPECT_TRUE(files[0] == files[1]);
}

TEST(QuantizePipeline, RouterQuantizedOnlyWhenARuleNamesIt) {
  const fs::path out = scratch("router");
  const fs::path recipe = write_recipe("router", "[[rule]]\nrole = \"router\"\nmethod = \"rtn\"\nbits = 2\ngroup_size = 0\n");
  ::testing::internal::CaptureStderr();
  quantize_model(options(demo_model(), recipe, out));
  const std::string log = ::testing::internal::GetCapturedStderr();
  const std::string warning = "rule 1 quantizes 4 router/shared-expert-gate tensors, kept 16-bit by default";
  EXPECT_NE(log.find(warning), std::string::npos) << log;
  EXPECT_EQ(log.find(warning), log.rfind(warning)) << "printed more than once:\n" << log;
  auto model = Model::load(out);
  int routers = 0;
  for (const LinearSlot& s : model->linears())
    if (s.role == TensorRole::Router) {
      EXPECT_EQ((*s.op)->format_name(), "int2 g0 asym");
      ++routers;
    }
  EXPECT_EQ(routers, 4);
  EXPECT_GT(demo_perplexity(out, 2), demo_perplexity(demo_model(), 2));
}

// Block 0 of the demo model on the 16 × 128 calibration tokens the tests quantize with: the
// router's input (every token, [tokens, hidden]) and the routing.
struct Block0 {
  std::vector<double> x;
  LayerRouting routing;
};

Block0 demo_block0() {
  auto model = Model::load(demo_model());
  const Tokenizer tok = Tokenizer::load(demo_model() / "tokenizer.json");
  const CalibSet calib = load_calibration(tok, {testing::demo_calib_text(), 16, 128, 0});
  std::vector<LinearSlot> slots = model->linears();
  const auto router = std::find_if(slots.begin(), slots.end(), [](const LinearSlot& s) { return s.role == TensorRole::Router; });
  EXPECT_NE(router, slots.end());
  auto recorder = std::make_unique<InputRecorder>(std::move(*router->op), RecordOptions{.keep_inputs = true});
  const InputRecorder* rec = recorder.get();
  *router->op = std::move(recorder);
  Tensor hidden = model->embed(calib.ids);
  model->run_block(0, hidden, 16, 128);
  return {std::vector<double>(rec->inputs().begin(), rec->inputs().end()), model->last_routing()[0]};
}

// The weights `slot`'s op runs (dequantized), row-major.
std::vector<float> op_weights(const LinearSlot& slot) {
  const LinearOp& op = **slot.op;
  std::vector<float> w(size_t(op.out_features() * op.in_features()));
  op.weight_rows(0, op.out_features(), w.data());
  return w;
}

// The weights of `name` as the model in `folder` runs them (dequantized), row-major.
std::vector<float> weights_of(const fs::path& folder, const std::string& name) {
  auto model = Model::load(folder);
  for (const LinearSlot& s : model->linears())
    if (s.name == name) return op_weights(s);
  ADD_FAILURE() << name << " not found in " << folder;
  return {};
}

// Share of the weights of `name` in `folder` equal to `expected`, up to the folder's fp16
// rounding of the scales (2⁻¹¹ relative), far below one quantization step.
double share_equal(const fs::path& folder, const std::string& name, const std::vector<float>& expected) {
  const std::vector<float> w = weights_of(folder, name);
  if (w.size() != expected.size()) return 0;
  int64_t equal = 0;
  for (size_t i = 0; i < w.size(); ++i) equal += std::fabs(w[i] - expected[i]) <= 1e-3f * std::fabs(expected[i]);
  return double(equal) / double(w.size());
}

// With min_tokens above every expert's count, each expert follows the [under_calibrated] policy.
// all_tokens: gate and up are GPTQ'd on the Hessian of every token of the layer (the router's
// input), down on SiLU(gate x)·(up x) of every token with gate and up already quantized (GPTQ is
// sequential within a block); rtn: plain RTN. Recomputed here for block 0's expert 0, whose
// inputs are the unquantized model's (only experts are quantized).
TEST(QuantizePipeline, UnderCalibratedExpertsFollowThePolicy) {
  const std::string rule = "\n[[rule]]\nrole = \"routed_expert\"\nmethod = \"gptq\"\nbits = 4\ngroup_size = 64\n";
  const fs::path all_out = scratch("under-all"), rtn_out = scratch("under-rtn");
  for (const auto& [policy, out] : {std::pair{"all_tokens", all_out}, std::pair{"rtn", rtn_out}}) {
    const std::string recipe = fmt::format("[under_calibrated]\npolicy = \"{}\"\nmin_tokens = 1000000\n{}", policy, rule);
    const nlohmann::json report = quantize_model(options(demo_model(), write_recipe(policy, recipe), out));
    const nlohmann::json& unit = report["layers"][0]["units"][0];
    EXPECT_EQ(unit["method"], std::string(policy) == "rtn" ? "rtn (under-calibrated)" : "gptq (all tokens)") << unit.dump();
  }

  const std::vector<double> x = demo_block0().x;
  const int64_t d = 128, ffn = 256, n = int64_t(x.size()) / d;
  ASSERT_EQ(n, 16 * 128);

  const Checkpoint ck = Checkpoint::open(demo_model());
  const std::string expert = "model.layers.0.block_sparse_moe.experts.0.";
  const std::vector<float> gate = weights_of(all_out, expert + "w1.weight"), up = weights_of(all_out, expert + "w3.weight");
  std::vector<double> act(size_t(n * ffn));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < ffn; ++j) {
      double g = 0, u = 0;
      for (int64_t k = 0; k < d; ++k) {
        g += x[size_t(t * d + k)] * gate[size_t(j * d + k)];
        u += x[size_t(t * d + k)] * up[size_t(j * d + k)];
      }
      act[size_t(t * ffn + j)] = g / (1 + std::exp(-g)) * u;
    }
  const Tensor h_in = hessian_of(x, d), h_down = hessian_of(act, ffn);
  const QuantSpec spec = parse_quant_spec("int4 g64 asym");
  for (const auto& [proj, h] : {std::pair{"w1", &h_in}, std::pair{"w3", &h_in}, std::pair{"w2", &h_down}}) {
    const std::string name = expert + proj + ".weight";
    const Tensor w = ck.get(name).to_f32();
    const std::vector<float> gptq = dequantize(gptq_quantize(w, *h, spec, gptq_options({}, TensorRole::RoutedExpert)).q);
    const std::vector<float> rtn = dequantize(rtn_quantize(w.ptr(), w.rows(), w.cols(), spec));
    // GPTQ is sensitive to the last bits of H (summed in another order here): nearly all equal.
    EXPECT_GT(share_equal(all_out, name, gptq), 0.99) << name;
    EXPECT_LT(share_equal(all_out, name, rtn), 0.95) << name << ": all_tokens must not be RTN";
    EXPECT_EQ(share_equal(rtn_out, name, rtn), 1.0) << name;
  }
}

// [int_scales] division reaches the written folder: with "reciprocal" every weight is moeq's RTN
// with reciprocal scales; the default folder differs from it where a group sits on a half step.
TEST(QuantizePipeline, IntScalesDivisionReachesTheWrittenFolder) {
  const std::string rule = "[[rule]]\nrole = [\"attention\", \"routed_expert\"]\nmethod = \"rtn\"\nbits = 2\n";
  const fs::path exact_out = scratch("division-exact"), recip_out = scratch("division-reciprocal");
  for (const auto& [table, out] : {std::pair{"", exact_out}, std::pair{"[int_scales]\ndivision = \"reciprocal\"\n", recip_out}}) {
    QuantizeOptions o = options(demo_model(), write_recipe(out.filename().string(), table + rule), out);
    o.calib_file.reset();
    quantize_model(o);
  }
  const Checkpoint ck = Checkpoint::open(demo_model());
  auto exact = Model::load(exact_out), recip = Model::load(recip_out);
  const QuantSpec spec = parse_quant_spec("int2 g128 asym");
  const std::vector<LinearSlot> slots = recip->linears(), exact_slots = exact->linears();
  ASSERT_EQ(slots.size(), exact_slots.size());
  int64_t weights = 0, exact_differs = 0;
  for (size_t k = 0; k < slots.size(); ++k) {
    const LinearSlot& s = slots[k];
    if (s.role != TensorRole::Attention && s.role != TensorRole::RoutedExpert) continue;
    const Tensor w = ck.get(s.name).to_f32();
    const std::vector<float> want = dequantize(rtn_quantize(w.ptr(), w.rows(), w.cols(), spec, ScaleDivision::Reciprocal));
    const std::vector<float> got = op_weights(s), got_exact = op_weights(exact_slots[k]);
    ASSERT_EQ(got.size(), want.size()) << s.name;
    ASSERT_EQ(got_exact.size(), want.size()) << s.name;
    for (size_t i = 0; i < want.size(); ++i) {
      // Equal up to the folder's fp16 scales (2⁻¹¹ relative), far below a step.
      ASSERT_NEAR(got[i], want[i], 1e-3f * std::fabs(want[i])) << s.name << " [" << i << "]";
      exact_differs += std::fabs(got_exact[i] - want[i]) > 1e-3f * std::fabs(want[i]);
    }
    weights += int64_t(want.size());
  }
  EXPECT_GT(exact_differs, 0) << "of " << weights;
}

// NF4 through the folder (bitsandbytes' tensor names, docs/FORMATS.md): without double
// quantization the loaded weights are RTN's NF4 values exactly; with it the 8-bit absmax moves
// each weight by at most a few hundredths of its block's absmax.
TEST(QuantizePipeline, Nf4FolderLoadsAsQuantized) {
  const fs::path out = scratch("nf4");
  const std::string recipe = "[[rule]]\nrole = \"attention\"\nmethod = \"rtn\"\nformat = \"nf4\"\ndouble_quant = false\n"
                             "[[rule]]\nrole = \"routed_expert\"\nmethod = \"rtn\"\nformat = \"nf4\"\n";
  QuantizeOptions o = options(demo_model(), write_recipe("nf4", recipe), out);
  o.calib_file.reset();
  quantize_model(o);
  const Checkpoint ck = Checkpoint::open(demo_model());
  auto model = Model::load(out);
  int checked = 0;
  for (const LinearSlot& s : model->linears()) {
    if (s.role != TensorRole::Attention && s.role != TensorRole::RoutedExpert) {
      EXPECT_EQ((*s.op)->format_name(), "bf16") << s.name;
      continue;
    }
    const bool dq = s.role == TensorRole::RoutedExpert;
    EXPECT_EQ((*s.op)->format_name(), dq ? "nf4 dq" : "nf4") << s.name;
    const Tensor w = ck.get(s.name).to_f32();
    const std::vector<float> want = dequantize(rtn_quantize(w.ptr(), w.rows(), w.cols(), parse_quant_spec(dq ? "nf4 dq" : "nf4")));
    const std::vector<float> got = op_weights(s);
    ASSERT_EQ(got.size(), want.size()) << s.name;
    for (size_t b = 0; b < want.size(); b += 64) {
      float absmax = 0;
      for (size_t i = b; i < b + 64; ++i) absmax = std::max(absmax, std::fabs(want[i]));
      for (size_t i = b; i < b + 64; ++i)
        ASSERT_NEAR(got[i], want[i], dq ? 0.02f * absmax : 0.0f) << s.name << " [" << i << "]";
    }
    ++checked;
  }
  EXPECT_EQ(checked, 4 * (4 + 8 * 3));
}

void expect_error(const QuantizeOptions& o, const std::string& fragment) {
  try {
    quantize_model(o);
    FAIL() << "expected an error mentioning " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(o.out_dir));
}

// [calibration] routing_weighted: an expert's Hessian counts each routed token with its routing
// weight. Recomputed for block 0's expert 0's gate projection from the router's input and the
// block's routing; the unweighted Hessian must give another result.
TEST(QuantizePipeline, RoutingWeightedExpertHessians) {
  const fs::path out = scratch("weighted");
  quantize_model(options(demo_model(), write_recipe("weighted", R"([calibration]
routing_weighted = true

[[rule]]
role = "routed_expert"
method = "gptq"
bits = 4
group_size = 64
)"), out));
  const Block0 block = demo_block0();
  const int64_t d = 128, k = block.routing.top_k;
  std::vector<double> rows, weights;
  for (size_t s = 0; s < block.routing.chosen.size(); ++s)
    if (block.routing.chosen[s] == 0) {
      const size_t t = s / size_t(k);
      rows.insert(rows.end(), block.x.begin() + ptrdiff_t(t * d), block.x.begin() + ptrdiff_t((t + 1) * d));
      weights.push_back(block.routing.weights[s]);
    }
  ASSERT_GE(weights.size(), 64u) << "expert 0 needs calibration tokens for this test";
  ASSERT_LT(*std::ranges::min_element(weights), 0.9 * *std::ranges::max_element(weights));

  const std::string name = "model.layers.0.block_sparse_moe.experts.0.w1.weight";
  const Tensor w = Checkpoint::open(demo_model()).get(name).to_f32();
  const QuantSpec spec = parse_quant_spec("int4 g64 asym");
  auto gptq = [&](const Tensor& h) { return dequantize(gptq_quantize(w, h, spec, gptq_options({}, TensorRole::RoutedExpert)).q); };
  const std::vector<float> weighted = gptq(hessian_of(rows, d, weights)), plain = gptq(hessian_of(rows, d));
  EXPECT_GT(share_equal(out, name, weighted), 0.99);
  EXPECT_LT(share_equal(out, name, plain), 0.97) << "the weights must change GPTQ's result";

  // The recipe written next to the weights keeps the setting.
  const plan::Recipe recipe = plan::load_recipe(out / "recipe.toml");
  EXPECT_TRUE(recipe.settings.calibration.routing_weighted);
}

// A router that a recipe quantizes with GPTQ is calibrated in the pass that records the experts'
// gate and up inputs (it reads the same rows), and still routes that pass: each expert's token
// count is the unquantized model's routing of block 0's calibration tokens.
TEST(QuantizePipeline, GptqRouterStillRoutesItsCalibrationPass) {
  const nlohmann::json report = quantize_model(options(demo_model(), write_recipe("gptq-router", R"([[rule]]
role = "router"
method = "gptq"
bits = 8
group_size = 0

[[rule]]
role = "routed_expert"
method = "gptq"
bits = 4
group_size = 64
)"), scratch("gptq-router")));
  std::map<int64_t, int64_t> routed;
  for (int32_t e : demo_block0().routing.chosen) ++routed[e];
  int checked = 0;
  for (const nlohmann::json& unit : report["layers"][0]["units"]) {
    const TensorInfo info = classify_tensor(unit["name"].get<std::string>());
    if (info.role != TensorRole::RoutedExpert || info.projection != "gate") continue;
    EXPECT_EQ(unit["tokens"], routed[info.expert]) << unit.dump();
    ++checked;
  }
  EXPECT_EQ(checked, 8);
}

// quantize_layer on every fixture architecture (MLA, dense first layers, shared experts with and
// without a gate, stacked experts, ...), GPTQ on every linear but the routers, experts under 30
// tokens on all the layer's tokens (the all-tokens pass): it must leave `hidden` as the quantized
// block's output, which run_block recomputes here, and no calibration wrapper (recorder, silenced
// op, tap) in the model.
class LayerQuantizerOnFixtures : public ::testing::TestWithParam<std::string> {};

TEST_P(LayerQuantizerOnFixtures, LeavesTheQuantizedBlocksOutputAndNoWrapper) {
  auto model = Model::load(testing::fixture_dir(GetParam()));
  std::vector<LinearSlot> slots = model->linears();
  const plan::QuantPlan plan = plan::resolve(plan::parse_recipe(R"(
[under_calibrated]
policy = "all_tokens"
min_tokens = 30

[[rule]]
role = ["attention", "routed_expert", "shared_expert", "dense_mlp"]
method = "gptq"
bits = 4
group_size = 32
)"), plan::units_of(slots));
  const int64_t samples = 3, seqlen = 40;
  std::vector<int32_t> ids(size_t(samples * seqlen));
  for (size_t t = 0; t < ids.size(); ++t) ids[t] = int32_t((t * 7919 + 13) % size_t(model->vocab_size()));
  Tensor hidden = model->embed(ids);
  for (int layer = 0; layer < int(model->num_layers()); ++layer) {
    std::vector<LinearSlot> layer_slots;
    std::vector<const plan::PlanEntry*> entries;
    size_t quantized = 0;
    for (size_t i = 0; i < slots.size(); ++i)
      if (slots[i].layer == layer) {
        layer_slots.push_back(slots[i]);
        entries.push_back(&plan.entries[i]);
        quantized += plan.entries[i].action.quantizes();
      }
    Tensor input = hidden;
    std::vector<int64_t> progress;
    const LayerResult r = quantize_layer(*model,
                                         {layer, layer_slots, entries, &plan.settings, IndivisibleGroups::Halve,
                                          [&](int64_t done) { progress.push_back(done); }},
                                         hidden, samples, seqlen);
    model->run_block(layer, input, samples, seqlen);
    EXPECT_EQ(hidden.data, input.data) << GetParam() << " layer " << layer;
    EXPECT_EQ(r.units.size(), quantized) << GetParam() << " layer " << layer;
    ASSERT_EQ(progress.size(), quantized);  // one report per linear, counting up
    for (size_t k = 0; k < progress.size(); ++k) EXPECT_EQ(progress[k], int64_t(k + 1));
    for (const LinearSlot& slot : layer_slots)
      EXPECT_EQ(dynamic_cast<const WrappedLinear*>(slot.op->get()), nullptr) << slot.name;
    for (const UnitResult& u : r.units) EXPECT_TRUE(u.method.starts_with("gptq")) << u.name << ": " << u.method;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LayerQuantizerOnFixtures,
                         ::testing::Values("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3",
                                           "granitemoe", "phimoe"));

// GPTQ and AWQ on the lm_head calibrate on what it sees: the final norm's output of the
// calibration tokens. Recomputed for qwen3_moe (untied lm_head) with nothing else quantized, so
// those are the original model's hidden states. The embedding, a lookup table, takes RTN only.
TEST(QuantizePipeline, LmHeadGptqAndAwqCalibrateOnTheFinalNormsOutput) {
  const fs::path model_dir = testing::shared_dir() / "models/qwen3_moe";
  const std::string rule = "[[rule]]\nrole = \"{}\"\nmethod = \"{}\"\nbits = 4\ngroup_size = 32\n";
  auto quantize = [&](const char* role, const char* method) {
    const std::string tag = fmt::format("{}-{}", role, method);
    return options(model_dir, write_recipe(tag, fmt::format(fmt::runtime(rule), role, method)), scratch(tag));
  };
  const QuantizeOptions gptq_run = quantize("lm_head", "gptq"), awq_run = quantize("lm_head", "awq");
  quantize_model(gptq_run);
  quantize_model(awq_run);

  auto model = Model::load(model_dir);
  const CalibSet calib = load_calibration(Tokenizer::load(model_dir / "tokenizer.json"), {testing::demo_calib_text(), 16, 128, 0});
  Tensor hidden = model->embed(calib.ids);
  for (int64_t layer = 0; layer < model->num_layers(); ++layer) model->run_block(int(layer), hidden, 16, 128);
  model->final_norm(hidden);
  const Tensor h = hessian_of(std::vector<double>(hidden.data.begin(), hidden.data.end()), hidden.cols());
  std::vector<double> abs_sum(size_t(hidden.cols()), 0.0);
  for (int64_t r = 0; r < hidden.rows(); ++r)
    for (int64_t c = 0; c < hidden.cols(); ++c) abs_sum[size_t(c)] += std::fabs(hidden.row(r)[c]);
  std::vector<float> act_mean_abs;
  for (double v : abs_sum) act_mean_abs.push_back(float(v / double(hidden.rows())));

  const Tensor w = Checkpoint::open(model_dir).get("lm_head.weight").to_f32();
  const QuantSpec spec = parse_quant_spec("int4 g32 asym");
  const std::vector<float> gptq = dequantize(gptq_quantize(w, h, spec, gptq_options({}, TensorRole::LmHead)).q);
  const AwqLinear linear{&w, &h};
  const AwqResult awq_result = awq_quantize({&linear, 1}, act_mean_abs, spec, awq_options({}));
  const std::vector<float> awq = fold_input_scale(awq_result.q.front(), awq_result.scale).data;
  const std::vector<float> rtn = dequantize(rtn_quantize(w.ptr(), w.rows(), w.cols(), spec));
  EXPECT_GT(share_equal(gptq_run.out_dir, "lm_head.weight", gptq), 0.99);
  EXPECT_LT(share_equal(gptq_run.out_dir, "lm_head.weight", rtn), 0.95);
  EXPECT_GT(share_equal(awq_run.out_dir, "lm_head.weight", awq), 0.99);
  EXPECT_LT(share_equal(awq_run.out_dir, "lm_head.weight", rtn), 0.95);
  EXPECT_LT(awq_result.loss, 0.9 * awq_result.rtn_loss) << "AWQ must improve on RTN here";
  // The scale is stored (and named by the manifest) exactly when the search moved it from 1.
  EXPECT_EQ(Checkpoint::open(awq_run.out_dir).contains("lm_head.input_scale"), awq_result.scales_input());
  EXPECT_EQ(read_manifest(awq_run.out_dir)->find("lm_head.weight")->input_scale,
            awq_result.scales_input() ? "lm_head.input_scale" : "");

  expect_error(quantize("embedding", "gptq"), "can only be quantized with rtn");
}

TEST(QuantizePipeline, IndivisibleGroupsHalveOrGoPerChannel) {
  auto group = [](int64_t cols, int group_size, IndivisibleGroups policy) {
    plan::QuantUnit unit;
    unit.name = "w";
    unit.rows = 8;
    unit.cols = cols;
    return effective_spec({unit, plan::QuantAction::int_bits(plan::QuantMethod::Gptq, 4, group_size), 0}, policy).group_size;
  };
  EXPECT_EQ(group(448, 128, IndivisibleGroups::Halve), 64);  // mixtral's expert down projections
  EXPECT_EQ(group(192, 128, IndivisibleGroups::Halve), 64);  // qwen2_moe's
  EXPECT_EQ(group(96, 128, IndivisibleGroups::Halve), 32);
  EXPECT_EQ(group(100, 128, IndivisibleGroups::Halve), 0);   // no group of 32 or more divides 100
  EXPECT_EQ(group(256, 128, IndivisibleGroups::Halve), 128);
  EXPECT_EQ(group(448, 128, IndivisibleGroups::PerChannel), 0);
  EXPECT_EQ(group(448, 64, IndivisibleGroups::Error), 64);
  EXPECT_THROW(group(448, 128, IndivisibleGroups::Error), Error);
}

TEST(QuantizePipeline, BadInputIsACleanError) {
  const fs::path out = scratch("bad");
  // The mixtral fixture's expert down projections have 96 inputs, which 64 does not divide.
  QuantizeOptions o = options(testing::shared_dir() / "fixtures/mixtral",
                              write_recipe("g64", "[[rule]]\nmethod = \"rtn\"\nbits = 4\ngroup_size = 64\n"), out);
  expect_error(o, "group size 64 does not divide its input dimension 96");
  o = options(demo_model(), write_recipe("g128", "[[rule]]\nrole = \"attention\"\nmethod = \"gptq\"\nbits = 4\n"), out);
  o.calib_samples = 100000;
  expect_error(o, "demo_calib.txt");
  o = options(demo_model(), write_recipe("nomatch", "[[rule]]\nrole = \"shared_expert\"\nmethod = \"rtn\"\nbits = 4\n"), out);
  expect_error(o, "rule 1");
}

}  // namespace
}  // namespace moeq
