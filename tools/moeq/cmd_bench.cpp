// moeq bench MODEL [--grid paper|FILE] --out DIR --calib FILE [--calib-samples N] [--tasks LIST]
#include <memory>

#include "bench/bench.h"
#include "commands.h"

namespace moeq::cli {

void add_bench_command(CLI::App& app) {
  auto opts = std::make_shared<bench::BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Quantize and evaluate a grid of bit allocations (docs/BENCH.md)");
  cmd->add_option("model", opts->model_dir, "Hugging Face model folder")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--out", opts->out_dir, "Output folder: results.{json,md}, plot.svg, recipes/, rows/")->required();
  cmd->add_option("--grid", opts->grid, "'paper' (default) or a grid file (TOML)");
  cmd->add_option("--calib", opts->calib.file, "Calibration text")->required()->check(CLI::ExistingFile);
  cmd->add_option("--calib-samples", opts->calib.samples, "Calibration sequences (default 128)");
  cmd->add_option("--calib-seqlen", opts->calib.seqlen, "Tokens per calibration sequence (default 512)");
  cmd->add_option("--seed", opts->calib.seed, "Seed for drawing calibration windows (default 0)");
  cmd->add_option("--ppl", opts->ppl_files,
                  "Perplexity sets: *.int32 id files or text (default: the model's reference WikiText-2 ids and "
                  "indomain_valid.txt)");
  cmd->add_option("--windows", opts->windows, "Windows of 512 tokens per perplexity set (default: all)");
  cmd->add_option("--tasks", opts->tasks, "Tasks to evaluate as well (comma-separated)")->delimiter(',');
  cmd->add_option("--data-dir", opts->data_dir, "Evaluation data folder (default ../shared/data/eval)");
  cmd->add_option("--limit", opts->task_limit, "Documents per task (default: all)");
  cmd->add_option("--q2k-bits", opts->q2k_bits, "Average bits of the paper grid's last optimiser row (default 3.5)");
  cmd->add_flag("--no-mse{false}", opts->mse,
                "GPTQ without range search (default: each group's range shrunk for the least squared error)");
  cmd->add_flag("--sequential", opts->sequential,
                "Quantize each row with the true-sequential pipeline of moeq quantize (slow) instead of GPTQ on "
                "the Hessians of the one calibration pass");
  cmd->add_flag("--keep-models", opts->keep_models, "With --sequential: keep every quantized checkpoint under OUT/models");
  cmd->callback([opts] {
    if (opts->data_dir.empty()) opts->data_dir = default_data_dir();
    bench::run_bench(*opts);
  });
}

}  // namespace moeq::cli
