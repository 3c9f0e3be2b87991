// Calibration observes a linear layer by wrapping its op: every forward() passes through and its
// input rows are added to a Hessian accumulator. Wrapping at the LinearOp level means an expert's
// statistics come only from the tokens the router actually sent to it, with no MoE-specific code.
#pragma once

#include <mutex>
#include <vector>

#include "calib/hessian.h"
#include "kernels/linear.h"

namespace moeq {

struct RecordOptions {
  // Also keep a copy of every input row (the router's input is every token of the layer, which
  // under-calibrated experts can be calibrated on).
  bool keep_inputs = false;
  // Rows that come with routing weights (RowWeightsScope: a routed expert's tokens) count with
  // that weight.
  bool weight_by_routing = false;
  // Record without running the wrapped op; forward() writes zeros. For a pass that needs this
  // linear's input and discards what its output leads to.
  bool record_only = false;
};

class InputRecorder final : public WrappedLinear {
 public:
  InputRecorder(LinearPtr inner, RecordOptions options = {});

  void forward(const float* x, int64_t n, float* y) const override;

  const HessianAccumulator& stats() const { return stats_; }
  const std::vector<float>& inputs() const { return inputs_; }  // [rows, in] when keep_inputs

 private:
  RecordOptions options_;
  mutable std::mutex mutex_;  // the model may run different experts on different threads
  mutable HessianAccumulator stats_;
  mutable std::vector<float> inputs_;
};

}  // namespace moeq
