#include <fmt/format.h>

#include "commands.h"
#include "core/error.h"
#include "quant/analysis/target_bits.h"
#include "quant/pipeline/quantize.h"
#include "quant/plan/recipe.h"

namespace moeq::cli {
namespace {

// --target-bits B: measure, allocate, and write the recipe next to the output (OUT.recipe.toml,
// with the statistics in OUT.stats.json) before quantizing with it.
void plan_target_bits(QuantizeOptions& o, double target_bits) {
  if (!o.calib_file) fail("--target-bits needs calibration text: pass --calib");
  CalibOptions calib{*o.calib_file, o.calib_samples.value_or(128), o.calib_seqlen.value_or(512),
                     uint64_t(o.seed.value_or(0))};
  analysis::StatsRequest stats{o.model_dir, calib, {}};
  stats.sensitivity.indivisible = o.indivisible;
  const std::string out = o.out_dir.lexically_normal().string();
  const plan::Recipe recipe = analysis::plan_target_bits({stats, out + ".stats.json", target_bits});
  o.recipe_file = out + ".recipe.toml";
  plan::save_recipe(recipe, o.recipe_file);
  fmt::print(stderr, "moeq: recipe written to {}\n", o.recipe_file.string());
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto opts = std::make_shared<QuantizeOptions>();
  auto target_bits = std::make_shared<double>(0.0);
  auto* cmd = app.add_subcommand("quantize", "Quantize a Hugging Face MoE checkpoint with a recipe");
  cmd->add_option("model", opts->model_dir, "Hugging Face model folder")->required()->check(CLI::ExistingDirectory);
  auto* recipe = cmd->add_option("--recipe", opts->recipe_file, "Recipe (TOML, see docs/RECIPES.md)")->check(CLI::ExistingFile);
  auto* target = cmd->add_option("--target-bits", *target_bits,
                                 "Instead of a recipe: allocate GPTQ int 2/3/4/8 bits per linear by measured "
                                 "sensitivity at this average (docs/BENCH.md)");
  recipe->excludes(target);
  cmd->add_option("--out", opts->out_dir, "Output folder (written atomically)")->required();
  cmd->add_option("--calib", opts->calib_file, "Calibration text (overrides the recipe)");
  cmd->add_option("--calib-samples", opts->calib_samples, "Calibration sequences (default 128)");
  cmd->add_option("--calib-seqlen", opts->calib_seqlen, "Tokens per calibration sequence (default 512)");
  cmd->add_option("--seed", opts->seed, "Seed for drawing calibration windows");
  cmd->add_option("--indivisible-groups", opts->indivisible,
                  "When a group size does not divide a tensor's input dimension: error, halve (the group "
                  "size, until it divides; at least 32) or per-channel")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, IndivisibleGroups>{{"error", IndivisibleGroups::Error},
                                                   {"halve", IndivisibleGroups::Halve},
                                                   {"per-channel", IndivisibleGroups::PerChannel}}));
  cmd->add_flag("--no-resume{false}", opts->resume, "Discard an unfinished run in OUT.partial and start over");
  cmd->callback([opts, target_bits, recipe, target] {
    if (!*recipe && !*target) fail("pass --recipe FILE or --target-bits B");
    if (*target) plan_target_bits(*opts, *target_bits);
    quantize_model(*opts);
  });
}

}  // namespace moeq::cli
