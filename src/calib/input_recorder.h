// Calibration observes a linear layer by wrapping its op: every forward() passes through and its
// input rows are added to a Hessian accumulator. Wrapping at the LinearOp level means an expert's
// statistics come only from the tokens the router actually sent to it, with no MoE-specific code.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "calib/hessian.h"
#include "kernels/linear.h"

namespace moeq {

class InputRecorder final : public LinearOp {
 public:
  // keep_inputs: also keep a copy of every input row (the router's input is every token of the
  // layer, which under-calibrated experts can be calibrated on). weight_by_routing: rows that
  // come with routing weights (RowWeightsScope: a routed expert's tokens) count with that weight.
  InputRecorder(LinearPtr inner, bool keep_inputs = false, bool weight_by_routing = false);

  int64_t in_features() const override { return inner_->in_features(); }
  int64_t out_features() const override { return inner_->out_features(); }
  void forward(const float* x, int64_t n, float* y) const override;
  void weight_rows(int64_t first, int64_t count, float* out) const override { inner_->weight_rows(first, count, out); }
  size_t storage_bytes() const override { return inner_->storage_bytes(); }
  std::string format_name() const override { return inner_->format_name(); }

  const HessianAccumulator& stats() const { return stats_; }
  const std::vector<float>& inputs() const { return inputs_; }  // [rows, in] when keep_inputs
  const LinearOp& inner() const { return *inner_; }
  // Gives the wrapped op back, leaving this recorder empty.
  LinearPtr release() { return std::move(inner_); }

 private:
  LinearPtr inner_;
  bool keep_inputs_;
  bool weight_by_routing_;
  mutable std::mutex mutex_;  // the model may run different experts on different threads
  mutable HessianAccumulator stats_;
  mutable std::vector<float> inputs_;
};

}  // namespace moeq
