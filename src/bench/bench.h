// `moeq bench`: every row of a grid (grid.h) → a recipe (saved under OUT/recipes, re-runnable with
// `moeq quantize`) → GPTQ quantization → perplexity (and tasks) → one JSON per row under OUT/rows,
// then OUT/results.json, OUT/results.md and OUT/plot.svg (bench_report.h).
//
// One calibration pass measures the statistics every strategy needs and the input Hessians of
// every linear (OUT/stats.json, OUT/stats.hessians.safetensors, reused by every row and by
// re-runs). A row whose OUT/rows/NAME.json holds the same fingerprint (its
// recipe, the calibration and the evaluation settings) is not recomputed, so a killed run
// resumes where it stopped; a quantization killed midway resumes from its last finished block.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calib/calib_data.h"

namespace moeq::bench {

struct BenchOptions {
  std::filesystem::path model_dir;
  std::filesystem::path out_dir;
  std::string grid = "paper";  // "paper" or a grid file
  CalibOptions calib;          // file required
  // Perplexity sets: raw int32 id files (*.int32) or UTF-8 text (tokenized once as one string).
  // Empty: those of the model folder's reference/wikitext2_test.ids.int32 and
  // indomain_valid.txt that exist.
  std::vector<std::filesystem::path> ppl_files;
  int64_t windows = 0;  // windows of 512 tokens per perplexity set; 0: all
  std::vector<std::string> tasks;
  std::filesystem::path data_dir;  // evaluation data (../shared/data/eval layout), for tasks
  int64_t task_limit = -1;         // documents per task; <0: all
  double q2k_bits = 3.5;           // the paper grid's last optimiser row
  bool mse = true;                 // GPTQ range search (recipes' [gptq] mse), sensitivities included
  // false: quantize every row in memory with GPTQ on the Hessians of the statistics pass
  // (stored_gptq.h), seconds per row. true: run `moeq quantize`'s true-sequential pipeline on
  // each row's recipe into OUT/models/NAME (a pass of calibration data per stage and block).
  bool sequential = false;
  bool keep_models = false;  // sequential: keep OUT/models/NAME after evaluating it
};

// Runs (or resumes) the grid and returns results.json's document. Progress on stderr.
nlohmann::json run_bench(const BenchOptions& options);

}  // namespace moeq::bench
