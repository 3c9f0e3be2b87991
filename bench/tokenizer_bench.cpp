// Time to load the models' tokenizer.json and to encode/decode WikiText-2 test (1.3 MB).
// Usage: tokenizer_bench [SHARED_DIR] (default ../shared). Prints the best of 5 runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/tokenizer.h"

namespace {

template <typename F>
double best_seconds(F&& run) {
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path shared = argc > 1 ? argv[1] : "../shared";
  std::ifstream in(shared / "data/eval/wikitext2/wiki.test.raw", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto json = shared / "models/mixtral/tokenizer.json";
  const double load = best_seconds([&] { moeq::Tokenizer::load(json); });
  const moeq::Tokenizer tokenizer = moeq::Tokenizer::load(json);
  std::vector<int32_t> ids;
  const double encode = best_seconds([&] { ids = tokenizer.encode(text); });
  std::string decoded;
  const double decode = best_seconds([&] { decoded = tokenizer.decode(ids); });
  std::printf("load %.1f ms; encode %zu bytes -> %zu ids: %.1f ms (%.1f MB/s); decode %.1f ms; round trip %s\n",
              load * 1e3, text.size(), ids.size(), encode * 1e3, text.size() / encode / 1e6, decode * 1e3,
              decoded == text ? "exact" : "DIFFERS");
  return 0;
}
