#include "calib/input_recorder.h"

#include <algorithm>

namespace moeq {

InputRecorder::InputRecorder(LinearPtr inner, RecordOptions options)
    : WrappedLinear(std::move(inner)), options_(options), stats_(inner_->in_features()) {}

void InputRecorder::forward(const float* x, int64_t n, float* y) const {
  if (options_.record_only)
    std::fill_n(y, n * out_features(), 0.0f);
  else
    inner_->forward(x, n, y);
  if (n <= 0) return;
  const size_t count = size_t(n * in_features());
  const std::span<const float> weights = RowWeightsScope::current();
  std::lock_guard lock(mutex_);
  if (options_.weight_by_routing && weights.size() == size_t(n))
    stats_.add(std::span<const float>(x, count), weights);
  else
    stats_.add(std::span<const float>(x, count));
  if (options_.keep_inputs) inputs_.insert(inputs_.end(), x, x + count);
}

}  // namespace moeq
