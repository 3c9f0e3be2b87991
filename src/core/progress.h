// A one-line progress bar on stderr, drawn only when stderr is a terminal (logs stay clean).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace moeq {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `done` of `total` items, `tokens` run so far (for the rate; < 0: no rate shown); redraws at
  // most 10 times a second.
  void update(int64_t done, int64_t tokens = -1);

 private:
  void draw(int64_t done, int64_t tokens);

  std::string label_;
  int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace moeq
