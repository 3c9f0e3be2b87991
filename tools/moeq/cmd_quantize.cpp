#include <fmt/format.h>

#include "commands.h"
#include "core/error.h"
#include "quant/pipeline/quantize.h"

namespace moeq::cli {

void add_quantize_command(CLI::App& app) {
  auto opts = std::make_shared<QuantizeOptions>();
  auto* cmd = app.add_subcommand("quantize", "Quantize a Hugging Face MoE checkpoint with a recipe");
  cmd->add_option("model", opts->model_dir, "Hugging Face model folder")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--recipe", opts->recipe_file, "Recipe (TOML, see docs/RECIPES.md)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", opts->out_dir, "Output folder (written atomically)")->required();
  cmd->add_option("--calib", opts->calib_file, "Calibration text (overrides the recipe)");
  cmd->add_option("--calib-samples", opts->calib_samples, "Calibration sequences (default 128)");
  cmd->add_option("--calib-seqlen", opts->calib_seqlen, "Tokens per calibration sequence (default 512)");
  cmd->add_option("--seed", opts->seed, "Seed for drawing calibration windows");
  cmd->add_option("--indivisible-groups", opts->indivisible,
                  "When a group size does not divide a tensor's input dimension: error or per-channel")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, IndivisibleGroups>{{"error", IndivisibleGroups::Error},
                                                   {"per-channel", IndivisibleGroups::PerChannel}}));
  cmd->add_flag("--no-resume{false}", opts->resume, "Discard an unfinished run in OUT.partial and start over");
  cmd->callback([opts] { quantize_model(*opts); });
}

}  // namespace moeq::cli
