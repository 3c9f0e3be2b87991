#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "arch/config.h"
#include "core/error.h"
#include "kernels/ops.h"

namespace moeq {

double sum_nll(const float* logits, int64_t rows, int64_t vocab, std::span<const int32_t> targets) {
  double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits + r * vocab;
    total += double(log_sum_exp(row, vocab)) - double(row[targets[size_t(r)]]);
  }
  return total;
}

PerplexityResult perplexity(Model& model, std::span<const int32_t> ids, const PerplexityOptions& opt) {
  if (opt.window < 2) fail("perplexity: window must be at least 2, got {}", opt.window);
  if (opt.windows_per_batch < 1) fail("perplexity: windows_per_batch must be at least 1");
  PerplexityResult r;
  r.tokens = int64_t(ids.size());
  r.windows = r.tokens / opt.window;
  const int64_t w = opt.window, vocab = model.vocab_size();
  // Logits one window at a time: a batch's worth would be hundreds of MB for nothing.
  std::vector<float> logits(size_t((w - 1) * vocab));
  for (int64_t first = 0; first < r.windows; first += opt.windows_per_batch) {
    const int64_t batch = std::min(opt.windows_per_batch, r.windows - first);
    auto chunk = ids.subspan(size_t(first * w), size_t(batch * w));
    Tensor h = model.embed(chunk);
    for (int i = 0; i < int(model.num_layers()); ++i) model.run_block(i, h, batch, w);
    model.final_norm(h);
    for (int64_t b = 0; b < batch; ++b) {
      // Position t predicts token t+1; the window's last position predicts nothing.
      model.lm_head(h.row(b * w), w - 1, logits.data());
      r.nll_sum += sum_nll(logits.data(), w - 1, vocab, chunk.subspan(size_t(b * w + 1), size_t(w - 1)));
    }
    if (opt.progress) opt.progress(first + batch, (first + batch) * w);
  }
  r.predicted = r.windows * (w - 1);
  r.ppl = r.predicted ? std::exp(r.nll_sum / double(r.predicted)) : 0.0;
  return r;
}

std::vector<int32_t> read_ids_int32(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) fail("{}: cannot open", file.string());
  const auto bytes = int64_t(in.tellg());
  if (bytes % 4) fail("{}: size {} is not a multiple of 4 (raw int32 ids expected)", file.string(), bytes);
  std::vector<int32_t> ids(size_t(bytes / 4));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(ids.data()), bytes);
  return ids;
}

}  // namespace moeq
