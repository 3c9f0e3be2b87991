// Ops put in front of a model's linears for one calibration pass (recorders, taps, stand-ins),
// then taken away again: unwrap() puts the original ops back in their slots and keeps the wrappers
// alive, so a recorder's statistics outlive the pass.
#pragma once

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "kernels/linear.h"
#include "model/model.h"

namespace moeq {

class PassWrappers {
 public:
  template <typename Op, typename... Args>
  Op* wrap(LinearSlot& slot, Args&&... args) {
    auto op = std::make_unique<Op>(std::move(*slot.op), std::forward<Args>(args)...);
    Op* raw = op.get();
    *slot.op = std::move(op);
    wrapped_.push_back(&slot);
    return raw;
  }
  bool wraps(const LinearSlot& slot) const { return std::ranges::find(wrapped_, &slot) != wrapped_.end(); }
  void unwrap() {
    for (LinearSlot* slot : wrapped_) {
      LinearPtr inner = static_cast<WrappedLinear*>(slot->op->get())->release();
      held_.push_back(std::move(*slot->op));
      *slot->op = std::move(inner);
    }
    wrapped_.clear();
  }

 private:
  std::vector<LinearSlot*> wrapped_;
  std::vector<LinearPtr> held_;
};

}  // namespace moeq
