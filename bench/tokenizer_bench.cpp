// Time to load the models' tokenizer.json and to encode/decode WikiText-2 test (1.3 MB).
// Usage: tokenizer_bench [SHARED_DIR] (default ../shared). Prints the best of 5 runs, wall time
// and process CPU time (the second is the fairer number on a shared, loaded machine).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/tokenizer.h"

namespace {

struct Timing {
  double wall_ms = 1e30;
  double cpu_ms = 1e30;
};

template <typename F>
Timing best_of_5(F&& run) {
  Timing best;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    run();
    const double cpu_ms = 1e3 * double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    best.cpu_ms = std::min(best.cpu_ms, cpu_ms);
    best.wall_ms = std::min(best.wall_ms, 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path shared = argc > 1 ? argv[1] : "../shared";
  std::ifstream in(shared / "data/eval/wikitext2/wiki.test.raw", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto json = shared / "models/mixtral/tokenizer.json";
  const Timing load = best_of_5([&] { moeq::Tokenizer::load(json); });
  const moeq::Tokenizer tokenizer = moeq::Tokenizer::load(json);
  std::vector<int32_t> ids;
  const Timing encode = best_of_5([&] { ids = tokenizer.encode(text); });
  std::string decoded;
  const Timing decode = best_of_5([&] { decoded = tokenizer.decode(ids); });
  std::printf("load %.1f ms (cpu %.1f)\n", load.wall_ms, load.cpu_ms);
  std::printf("encode %zu bytes -> %zu ids: %.1f ms (cpu %.1f ms, %.1f MB/s of cpu)\n", text.size(), ids.size(),
              encode.wall_ms, encode.cpu_ms, text.size() / encode.cpu_ms / 1e3);
  std::printf("decode %.1f ms (cpu %.1f); round trip %s\n", decode.wall_ms, decode.cpu_ms,
              decoded == text ? "exact" : "DIFFERS");
  return 0;
}
