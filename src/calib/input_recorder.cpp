#include "calib/input_recorder.h"

namespace moeq {

InputRecorder::InputRecorder(LinearPtr inner, bool keep_inputs, bool weight_by_routing)
    : inner_(std::move(inner)),
      keep_inputs_(keep_inputs),
      weight_by_routing_(weight_by_routing),
      stats_(inner_->in_features()) {}

void InputRecorder::forward(const float* x, int64_t n, float* y) const {
  inner_->forward(x, n, y);
  if (n <= 0) return;
  const size_t count = size_t(n * in_features());
  const std::span<const float> weights = RowWeightsScope::current();
  std::lock_guard lock(mutex_);
  if (weight_by_routing_ && weights.size() == size_t(n))
    stats_.add(std::span<const float>(x, count), weights);
  else
    stats_.add(std::span<const float>(x, count));
  if (keep_inputs_) inputs_.insert(inputs_.end(), x, x + count);
}

}  // namespace moeq
