// Forward-pass speed on the trained models of ../shared/models, as JSON on stdout:
// prefill tokens/s scoring WikiText-2 windows of 512 (several windows per forward, exactly as
// the perplexity evaluation runs them) and decode tokens/s (128 single-token steps with the KV cache
// after a short prompt). Usage: forward_bench [SHARED_DIR] [--storage mapped|f32]
// [--windows-per-batch N] [--batches N] [--decode-reps N] [--models a,b,c]
#include <chrono>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "eval/perplexity.h"
#include "model/model.h"
#include "timing.h"

namespace {

using moeq::Model;
using clock_type = std::chrono::steady_clock;

using moeq::bench::cpu_seconds;

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

nlohmann::json bench_model(const std::filesystem::path& dir, moeq::DenseStorage storage, int64_t windows_per_batch,
                           int64_t batches, int64_t decode_reps) {
  constexpr int64_t kWindow = 512, kPrompt = 16, kDecodeSteps = 128;
  auto t_load = clock_type::now();
  auto model = Model::load(dir, {storage});
  const double load_s = seconds_since(t_load);
  const auto ids = moeq::read_ids_int32(dir / "reference" / "wikitext2_test.ids.int32");
  const int64_t per_batch = windows_per_batch * kWindow;
  if (int64_t(ids.size()) < (batches + 1) * per_batch) throw moeq::Error("not enough WikiText-2 ids for the batches");

  // Prefill as the perplexity evaluation runs it: windows scored, logits reduced to NLLs.
  const moeq::PerplexityOptions popt{.window = kWindow, .windows_per_batch = windows_per_batch};
  moeq::perplexity(*model, std::span(ids).first(size_t(per_batch)), popt);  // warm-up
  auto t = clock_type::now();
  const double cpu0 = cpu_seconds();
  moeq::perplexity(*model, std::span(ids).subspan(size_t(per_batch), size_t(batches * per_batch)), popt);
  const double prefill_s = seconds_since(t), prefill_cpu = cpu_seconds() - cpu0;

  const auto decode = moeq::bench::measure_decode(*model, std::span(ids).first(kPrompt), kDecodeSteps, decode_reps);
  return {{"load_s", load_s},
          {"prefill_tokens", batches * per_batch},
          {"prefill_s", prefill_s},
          {"prefill_tokens_per_s", double(batches * per_batch) / prefill_s},
          {"prefill_cpu_s", prefill_cpu},
          {"decode_steps", kDecodeSteps},
          {"decode_tokens_per_s", decode.tokens_per_s},
          {"decode_tokens_per_s_runs", decode.runs},
          {"decode_cpu_s_per_run", decode.cpu_seconds_per_run}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moeq forward-pass benchmark"};
  const char* env = std::getenv("MOEQ_SHARED");
  std::string shared = env ? env : "../shared";
  std::string storage_name = "mapped";
  int64_t windows_per_batch = 4, batches = 3, decode_reps = 5;
  std::vector<std::string> models = {"mixtral", "qwen2_moe", "qwen3_moe"};
  app.add_option("shared", shared, "the shared data folder (default $MOEQ_SHARED or ../shared)");
  app.add_option("--storage", storage_name, "dense weight storage: mapped (bf16 tiles) or f32")
      ->check(CLI::IsMember({"mapped", "f32"}));
  app.add_option("--windows-per-batch", windows_per_batch, "512-token windows per forward");
  app.add_option("--batches", batches, "timed prefill forwards");
  app.add_option("--decode-reps", decode_reps, "timed decode runs of 128 steps (the median is reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--models", models, "models under SHARED/models")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  const auto storage = storage_name == "f32" ? moeq::DenseStorage::F32 : moeq::DenseStorage::Mapped;
  try {
    nlohmann::json out = {{"storage", storage_name}, {"windows_per_batch", windows_per_batch}, {"models", {}}};
    for (const auto& name : models)
      out["models"][name] = bench_model(std::filesystem::path(shared) / "models" / name, storage, windows_per_batch, batches,
                                           decode_reps);
    fmt::print("{}\n", out.dump(2));
  } catch (const std::exception& e) {
    fmt::print(stderr, "forward_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
