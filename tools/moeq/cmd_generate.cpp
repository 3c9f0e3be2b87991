// `moeq generate MODEL (--prompt TEXT | --prompt-ids 1,2,3) -n N`: continue a prompt, greedy by
// default or sampled, and report the speed.
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.h"
#include "core/error.h"
#include "io/tokenizer.h"
#include "model/generate.h"
#include "model/model.h"

namespace moeq::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  std::string prompt_ids;
  int64_t n = 32;
  SamplingOptions sampling;
  bool f32 = false;
};

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      ids.push_back(int32_t(std::stol(item, &used)));
      if (item.find_first_not_of(" ", used) != std::string::npos) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      fail("--prompt-ids: '{}' is not an integer token id", item);
    }
  }
  if (ids.empty()) fail("--prompt-ids: no ids given");
  return ids;
}

void run(const GenerateArgs& a) {
  const std::filesystem::path dir = a.model;
  const auto tokenizer_file = dir / "tokenizer.json";
  std::optional<Tokenizer> tok;
  if (std::filesystem::exists(tokenizer_file)) tok = Tokenizer::load(tokenizer_file);
  std::vector<int32_t> prompt;
  if (!a.prompt_ids.empty()) {
    prompt = parse_ids(a.prompt_ids);
  } else {
    if (!tok) fail("{}: not found; pass --prompt-ids instead of --prompt", tokenizer_file.string());
    prompt = tok->encode(a.prompt);
    if (prompt.empty()) fail("--prompt: the text encodes to no tokens");
  }
  auto model = Model::load(dir, {a.f32 ? DenseStorage::F32 : DenseStorage::Mapped});
  Generation g = generate(*model, prompt, a.n, a.sampling);
  fmt::print("prompt ids: {}\n", fmt::join(prompt, ","));
  fmt::print("generated ids: {}\n", fmt::join(g.tokens, ","));
  if (tok) fmt::print("text: {}\n", tok->decode(prompt) + tok->decode(g.tokens));
  const double steps = double(g.tokens.size()) - 1.0;
  fmt::print("prefill: {} tokens in {:.3f} s ({:.1f} tokens/s); decode: {} tokens in {:.3f} s ({:.1f} tokens/s)\n",
             prompt.size(), g.prefill_seconds, double(prompt.size()) / g.prefill_seconds, steps, g.decode_seconds,
             steps > 0 ? steps / g.decode_seconds : 0.0);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Continue a prompt with a model (greedy unless --temperature > 0)");
  cmd->add_option("model", args->model, "Hugging Face model folder")->required()->check(CLI::ExistingDirectory);
  auto* text = cmd->add_option("--prompt", args->prompt, "prompt text (needs the model's tokenizer.json)");
  auto* ids = cmd->add_option("--prompt-ids", args->prompt_ids, "prompt as comma-separated token ids");
  text->excludes(ids);
  cmd->add_option("-n,--max-new-tokens", args->n, "tokens to generate")->check(CLI::PositiveNumber);
  cmd->add_option("--temperature", args->sampling.temperature, "sampling temperature; 0 = greedy")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", args->sampling.top_p, "nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", args->sampling.seed, "sampling seed");
  cmd->add_flag("--f32", args->f32, "widen bf16 weights to fp32 at load");
  cmd->callback([text, ids, args] {
    if (text->count() == 0 && ids->count() == 0) fail("generate: give --prompt or --prompt-ids");
    run(*args);
  });
}

}  // namespace moeq::cli
