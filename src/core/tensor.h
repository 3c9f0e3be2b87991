// A dense, row-major, owning fp32 tensor: the working type of the forward pass and of the
// quantizers. Checkpoint tensors are viewed in place (io/safetensors.h) and converted on load.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace moeq {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> dims, float fill = 0.0f)
      : shape(std::move(dims)), data(size_t(count(shape)), fill) {}

  static int64_t count(const std::vector<int64_t>& dims) {
    return std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
  }
  int64_t numel() const { return int64_t(data.size()); }
  int64_t dim(int i) const { return shape[size_t(i < 0 ? int(shape.size()) + i : i)]; }
  int rank() const { return int(shape.size()); }
  // Viewed as a matrix: the last dimension is the columns, all others fold into rows.
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }
  float* row(int64_t r) { return data.data() + r * cols(); }
  const float* row(int64_t r) const { return data.data() + r * cols(); }
  float* ptr() { return data.data(); }
  const float* ptr() const { return data.data(); }
};

}  // namespace moeq
