#include "calib/calib_data.h"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "core/error.h"

namespace moeq {

CalibSet draw_windows(const std::vector<int32_t>& stream, const CalibOptions& options) {
  if (options.samples <= 0 || options.seqlen <= 0)
    fail("calibration: --calib-samples and --calib-seqlen must be positive (got {} and {})", options.samples,
         options.seqlen);
  const int64_t available = int64_t(stream.size()) / options.seqlen;
  if (available < options.samples)
    fail("{}: calibration text has {} tokens, fewer than the {} x {} = {} asked for", options.file.string(),
         stream.size(), options.samples, options.seqlen, options.samples * options.seqlen);

  std::vector<int64_t> windows(static_cast<size_t>(available));
  std::iota(windows.begin(), windows.end(), 0);
  std::mt19937_64 rng(options.seed);
  // Partial Fisher-Yates: the first `samples` entries become a uniform draw without replacement.
  for (int64_t i = 0; i < options.samples; ++i) {
    std::uniform_int_distribution<int64_t> pick(i, available - 1);
    std::swap(windows[size_t(i)], windows[size_t(pick(rng))]);
  }
  CalibSet set{options.samples, options.seqlen, {}};
  set.ids.reserve(size_t(options.samples * options.seqlen));
  for (int64_t i = 0; i < options.samples; ++i) {
    auto begin = stream.begin() + windows[size_t(i)] * options.seqlen;
    set.ids.insert(set.ids.end(), begin, begin + options.seqlen);
  }
  return set;
}

CalibSet load_calibration(const Tokenizer& tokenizer, const CalibOptions& options) {
  std::ifstream in(options.file, std::ios::binary);
  if (!in) fail("{}: cannot open calibration text", options.file.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) fail("{}: calibration text is empty", options.file.string());
  return draw_windows(tokenizer.encode(text.str()), options);
}

}  // namespace moeq
