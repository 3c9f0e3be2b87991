// Timing shared by the benchmarks: process CPU time, and decode speed as llama-bench's tg measures it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/model.h"

namespace moeq::bench {

// CPU time of the whole process (all threads): on a shared machine, wall time alone misleads.
double cpu_seconds();

struct DecodeSpeed {
  double tokens_per_s = 0.0;       // median over the runs: the figure to report
  std::vector<double> runs;        // tokens/s of each run: their spread says how noisy the machine was
  double cpu_seconds_per_run = 0.0;
};

// After one warm-up, `runs` greedy generations of `steps` single-token steps with the KV cache
// after `prompt`; the prompt's own forward is not timed.
DecodeSpeed measure_decode(Model& model, std::span<const int32_t> prompt, int64_t steps, int64_t runs);

}  // namespace moeq::bench
