// Second-moment statistics of a linear layer's inputs, gathered while calibration data streams
// through the model: the GPTQ Hessian H = 2/N Σ x xᵀ and AWQ's per-channel mean |x|.
//
// Rows may carry weights (an expert's routing weight for that token); then every average is
// weighted and N is the sum of the weights. Batches can arrive in any order and in any sizes:
// the accumulator keeps raw sums (in double) and divides only when asked, so the result does
// not depend on how the rows were split (GPTQ's own running rescale H *= n/(n+k) does, slightly).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace moeq {

class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t dim);

  // x: rows × dim, row-major (rows = x.size() / dim). Each row counts with weight 1.
  void add(std::span<const float> x);
  // As above, row i weighted by row_weights[i] >= 0 (row_weights.size() == rows).
  void add(std::span<const float> x, std::span<const float> row_weights);
  // Adds another accumulator's rows (e.g. one filled by another thread). Same dim required.
  void merge(const HessianAccumulator& other);

  int64_t dim() const { return dim_; }
  int64_t tokens() const { return tokens_; }        // rows added, weighted or not
  double weight_sum() const { return weight_sum_; } // N: Σ row weights (== tokens() if unweighted)

  // H = 2/N Σ w_i x_i x_iᵀ, [dim, dim], symmetric. All zeros when no weight was added (GPTQ then
  // treats every column as dead; callers should fall back to RTN for such layers).
  Tensor hessian() const;
  // Σ w_i |x_i| / N per input channel, [dim]: AWQ's activation magnitude s_x.
  std::vector<float> mean_abs() const;

 private:
  void add_rows(const float* x, int64_t rows, const float* row_weights);

  int64_t dim_;
  int64_t tokens_ = 0;
  double weight_sum_ = 0.0;
  std::vector<double> xtx_;      // Σ w x xᵀ, upper triangle (row-major) filled
  std::vector<double> abs_sum_;  // Σ w |x|
  struct Partial {               // one slice of a chunk's rows, before it joins the sums
    std::vector<float> gram;     // xᵀx from ssyrk, upper triangle
    std::vector<double> abs_sum;
  };
  std::vector<Partial> partials_;  // one per thread
  std::vector<float> scaled_;    // one chunk's rows multiplied by sqrt(w)
};

// ½ Σ_r δ_r H δ_rᵀ for δ: rows × H.cols() row-major. With H from HessianAccumulator this is
// the mean over calibration rows of ‖δ x‖², the output error a weight perturbation δ causes:
// the quantity GPTQ minimises and AWQ's searches compare.
double hessian_loss(std::span<const float> delta, const Tensor& h);

}  // namespace moeq
