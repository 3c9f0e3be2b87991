#include "timing.h"

#include <algorithm>
#include <ctime>

#include "model/generate.h"

namespace moeq::bench {

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

DecodeSpeed measure_decode(Model& model, std::span<const int32_t> prompt, int64_t steps, int64_t runs) {
  generate(model, prompt, 8);  // warm-up: page in the weights, size the workspaces
  DecodeSpeed s;
  double cpu = 0.0;
  for (int64_t r = 0; r < runs; ++r) {
    const double cpu0 = cpu_seconds();
    const Generation g = generate(model, prompt, steps + 1);
    cpu += cpu_seconds() - cpu0;
    s.runs.push_back(double(g.tokens.size() - 1) / g.decode_seconds);
  }
  std::vector<double> sorted = s.runs;
  std::ranges::sort(sorted);
  s.tokens_per_s = sorted[sorted.size() / 2];
  s.cpu_seconds_per_run = cpu / double(runs);
  return s;
}

}  // namespace moeq::bench
