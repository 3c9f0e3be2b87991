// Keys and values of every attention layer for the positions seen so far, for incremental
// decoding. A plain value type: copying it forks a shared context (score one prompt, then
// extend each copy with a different continuation).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace moeq {

struct KvShape {
  int64_t layers = 0;
  int64_t batch = 0;
  int64_t max_len = 0;
  int64_t heads = 0;   // key/value heads
  int64_t k_dim = 0;   // per head
  int64_t v_dim = 0;
};

class KVCache {
 public:
  explicit KVCache(const KvShape& shape);

  const KvShape& shape() const { return shape_; }
  int64_t batch() const { return shape_.batch; }
  int64_t max_len() const { return shape_.max_len; }
  // Positions stored (all layers agree between forward calls).
  int64_t length() const { return lengths_.empty() ? 0 : lengths_.front(); }
  int64_t layer_length(int64_t layer) const { return lengths_[size_t(layer)]; }
  void set_layer_length(int64_t layer, int64_t len) { lengths_[size_t(layer)] = len; }
  // Forgets positions ≥ len in every layer (e.g. to score another continuation of a prompt).
  void truncate(int64_t len);

  // [max_len, k_dim] keys / [max_len, v_dim] values of one (layer, sequence, head).
  float* keys(int64_t layer, int64_t b, int64_t head) { return k_.data() + offset(layer, b, head, shape_.k_dim); }
  float* values(int64_t layer, int64_t b, int64_t head) { return v_.data() + offset(layer, b, head, shape_.v_dim); }
  const float* keys(int64_t layer, int64_t b, int64_t head) const {
    return k_.data() + offset(layer, b, head, shape_.k_dim);
  }
  const float* values(int64_t layer, int64_t b, int64_t head) const {
    return v_.data() + offset(layer, b, head, shape_.v_dim);
  }

  // A cache of batch `copies` whose every sequence is this (batch 1) cache's sequence.
  KVCache repeated(int64_t copies) const;

 private:
  size_t offset(int64_t layer, int64_t b, int64_t head, int64_t dim) const {
    return size_t(((layer * shape_.batch + b) * shape_.heads + head) * shape_.max_len * dim);
  }
  KvShape shape_;
  std::vector<int64_t> lengths_;
  std::vector<float> k_, v_;
};

}  // namespace moeq
