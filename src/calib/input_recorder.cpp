#include "calib/input_recorder.h"

namespace moeq {

InputRecorder::InputRecorder(LinearPtr inner, bool keep_inputs)
    : inner_(std::move(inner)), keep_inputs_(keep_inputs), stats_(inner_->in_features()) {}

void InputRecorder::forward(const float* x, int64_t n, float* y) const {
  inner_->forward(x, n, y);
  if (n <= 0) return;
  const size_t count = size_t(n * in_features());
  std::lock_guard lock(mutex_);
  stats_.add(std::span<const float>(x, count));
  if (keep_inputs_) inputs_.insert(inputs_.end(), x, x + count);
}

}  // namespace moeq
