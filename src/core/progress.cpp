#include "core/progress.h"

#include <cstdio>
#include <string_view>

#include <fmt/format.h>
#include <unistd.h>

namespace moeq {

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), enabled_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (enabled_) fmt::print(stderr, "\r\033[K");  // leave the line clean for the results
}

void ProgressBar::update(int64_t done, int64_t tokens) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(done, tokens);
}

void ProgressBar::draw(int64_t done, int64_t tokens) {
  constexpr int kWidth = 30;
  double seconds = std::chrono::duration<double>(last_draw_ - start_).count();
  double frac = total_ > 0 ? double(done) / double(total_) : 1.0;
  int filled = int(frac * kWidth);
  double eta = done > 0 ? seconds * double(total_ - done) / double(done) : 0.0;
  const std::string rate = tokens < 0 ? "" : fmt::format(" {:.0f} tok/s", seconds > 0 ? double(tokens) / seconds : 0.0);
  fmt::print(stderr, "\r\033[K{} [{}{}] {}/{}{} ETA {:.0f}s", label_, std::string(size_t(filled), '#'),
             std::string(size_t(kWidth - filled), ' '), done, total_, rate, eta);
  std::fflush(stderr);
}

}  // namespace moeq
