// What the loglikelihood evaluator needs from a causal language model: run tokens after a
// context held in a state (a KV cache), and copy that state to branch off shared contexts.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace moeq {

class Model;

class LmBackend {
 public:
  // A context already run through the model (for a transformer: its KV cache).
  class State {
   public:
    virtual ~State() = default;
  };

  virtual ~LmBackend() = default;
  virtual int64_t vocab_size() const = 0;

  // An empty context (position 0) that can grow to `capacity` tokens.
  virtual std::unique_ptr<State> start(int64_t capacity) = 0;
  virtual std::unique_ptr<State> fork(const State& state) = 0;
  // Runs `ids` after the state's tokens, advancing it. Returns the logits of the positions
  // from `skip` on, [ids.size() - skip, vocab]: the evaluator only needs the positions that
  // predict scored tokens, and the vocabulary projection is a large share of a small model.
  virtual Tensor extend(State& state, std::span<const int32_t> ids, int64_t skip) = 0;

  struct Segment {
    std::span<const int32_t> ids;
    int64_t skip = 0;  // as in extend()
  };
  // Runs each segment after its own copy of `parent` (a fresh context when null) and returns
  // each segment's logits as extend() would; the copies are discarded. Backends override this
  // to run the segments as one batch; the default runs them one by one.
  virtual std::vector<Tensor> extend_leaves(const State* parent, std::span<const Segment> segments,
                                            int64_t capacity);
};

// The backend over moeq's Model: states are its KV caches (copied to fork).
std::unique_ptr<LmBackend> make_model_backend(Model& model);

}  // namespace moeq
