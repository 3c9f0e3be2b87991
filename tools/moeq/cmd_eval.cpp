// moeq eval MODEL [--ppl FILE ...] [--tasks LIST] [--limit N] [--max-length 512] [--batch N]
//                 [--json OUT] [--data-dir DIR]
#include <cstdlib>
#include <memory>

#include <fmt/format.h>

#include "commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/evaluate.h"
#include "eval/task.h"
#include "io/tokenizer.h"
#include "model/model.h"

namespace moeq::cli {
namespace {

namespace fs = std::filesystem;

struct EvalArgs {
  std::string model;
  std::vector<std::string> ppl;
  std::vector<std::string> tasks;
  std::string json;
  std::string data_dir;
  int64_t limit = -1;
  int64_t max_length = 512;
  int64_t batch = 16;
};

void run_eval(const EvalArgs& args) {
  EvalOptions options;
  for (const std::string& f : args.ppl) options.ppl_files.emplace_back(f);
  options.tasks = args.tasks;
  // With neither --ppl nor --tasks, the default task set; --ppl alone scores only the files.
  if (args.tasks.empty() && args.ppl.empty()) options.tasks.assign(default_tasks().begin(), default_tasks().end());
  options.data_dir = args.data_dir.empty() ? default_data_dir() : fs::path(args.data_dir);
  options.limit = args.limit;
  options.max_length = args.max_length;
  options.batch = args.batch;
  if (args.max_length < 2) fail("--max-length must be at least 2, got {}", args.max_length);
  if (args.batch < 1) fail("--batch must be at least 1, got {}", args.batch);

  std::unique_ptr<Model> model = Model::load(args.model);
  Tokenizer tokenizer = Tokenizer::load(fs::path(args.model) / "tokenizer.json");
  EvalReport report = evaluate(*model, tokenizer, options);
  if (!args.json.empty()) write_text_atomically(args.json, report_json(report).dump(2) + "\n");
  fmt::print("{}", report_markdown(report));
}

}  // namespace

std::filesystem::path default_data_dir() {
  if (const char* shared = std::getenv("MOEQ_SHARED")) return fs::path(shared) / "data/eval";
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path candidate = exe.parent_path().parent_path().parent_path() / "shared/data/eval";
    if (fs::exists(candidate)) return candidate;
  }
  return fs::path("..") / "shared/data/eval";
}

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Perplexity and zero-/few-shot task accuracy (lm-eval conventions)");
  cmd->add_option("MODEL", args->model, "model folder (config.json, safetensors, tokenizer.json)")->required();
  cmd->add_option("--ppl", args->ppl, "text files scored by perplexity in non-overlapping windows");
  cmd->add_option("--tasks", args->tasks,
                  fmt::format("comma-separated tasks (known: {}; default: {})", fmt::join(known_tasks(), ","),
                              fmt::join(default_tasks(), ",")))
      ->delimiter(',');
  cmd->add_option("--limit", args->limit, "only the first N documents of each task (of each MMLU subject)");
  cmd->add_option("--max-length", args->max_length, "perplexity window and task input limit in tokens")
      ->capture_default_str();
  cmd->add_option("--batch", args->batch, "task requests per forward pass (perplexity runs 4 windows a pass)")->capture_default_str();
  cmd->add_option("--json", args->json, "also write the results as JSON to this file");
  cmd->add_option("--data-dir", args->data_dir, "evaluation data (default: ../shared/data/eval)");
  cmd->callback([args] { run_eval(*args); });
}

}  // namespace moeq::cli
