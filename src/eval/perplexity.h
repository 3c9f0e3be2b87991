// Perplexity under the protocol of ../shared/README.md: non-overlapping windows of `window`
// tokens from the start, the tail that does not fill a window dropped, every window scored on
// its own (no context carried over), mean negative log-likelihood over the window−1 predicted
// tokens of every window.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <vector>

#include "model/model.h"

namespace moeq {

struct PerplexityOptions {
  int64_t window = 512;
  int64_t windows_per_batch = 4;  // windows run through the model together
  std::function<void(int64_t windows_done, int64_t tokens_done)> progress = {};  // after each batch, if set
};

struct PerplexityResult {
  double ppl = 0.0;
  double nll_sum = 0.0;   // natural log
  int64_t predicted = 0;  // windows · (window − 1)
  int64_t windows = 0;
  int64_t tokens = 0;     // ids given, including the dropped tail
};

PerplexityResult perplexity(Model& model, std::span<const int32_t> ids, const PerplexityOptions& options = {});

// Σ over rows r of −log softmax(logits[r])[targets[r]], for logits [rows, vocab].
double sum_nll(const float* logits, int64_t rows, int64_t vocab, std::span<const int32_t> targets);

// A file of raw little-endian int32 token ids (the reference tokenizations in ../shared).
std::vector<int32_t> read_ids_int32(const std::filesystem::path& file);

}  // namespace moeq
