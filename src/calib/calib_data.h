// Calibration sequences: the calibration text tokenized once, cut into non-overlapping windows of
// `seqlen` tokens, and `samples` of them drawn without replacement by a seeded RNG (GPTQ's practice of
// random windows, made reproducible and free of overlap).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "io/tokenizer.h"

namespace moeq {

struct CalibOptions {
  std::filesystem::path file;
  int64_t samples = 128;
  int64_t seqlen = 512;
  uint64_t seed = 0;
};

struct CalibSet {
  int64_t samples = 0;
  int64_t seqlen = 0;
  std::vector<int32_t> ids;  // [samples * seqlen], row-major
};

// Throws moeq::Error naming the file when it cannot be read, is empty, or holds fewer than
// samples × seqlen tokens.
CalibSet load_calibration(const Tokenizer& tokenizer, const CalibOptions& options);

// The window-drawing step alone, over an already tokenized stream (tested directly).
CalibSet draw_windows(const std::vector<int32_t>& stream, const CalibOptions& options);

}  // namespace moeq
