// `moeq quantize`: a recipe applied to a Hugging Face MoE checkpoint, block by block, into a new
// checkpoint folder that moeq loads directly.
//
// The output is assembled in OUT.partial/: one safetensors shard per decoder block, written
// (atomically) as soon as the block is quantized, and progress.json naming the finished blocks
// and a fingerprint of the run's inputs. A killed run resumes from its last finished block; the
// folder is renamed to OUT only when every shard, the index, config.json (with the
// quantization_config), the tokenizer files, recipe.toml and quant_report.json are in place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "quant/pipeline/layer_quantizer.h"

namespace moeq {

struct QuantizeOptions {
  std::filesystem::path model_dir;
  std::filesystem::path recipe_file;
  std::filesystem::path out_dir;
  // Override the recipe's [calibration] table when set.
  std::optional<std::filesystem::path> calib_file;
  std::optional<int64_t> calib_samples;
  std::optional<int64_t> calib_seqlen;
  std::optional<int64_t> seed;
  IndivisibleGroups indivisible = IndivisibleGroups::Error;
  bool resume = true;       // false: discard an existing OUT.partial and start over
  int stop_after_layer = -1;  // for tests: stop (as if killed) once this block's shard is written
};

// Runs the whole job; progress goes to stderr. Returns the report also written to
// OUT/quant_report.json. Throws moeq::Error on bad input (recipe, model, calibration text).
nlohmann::json quantize_model(const QuantizeOptions& options);

}  // namespace moeq
