#include "quant/algo/awq.h"

#include <algorithm>
#include <cmath>

#include <cblas.h>

#include "calib/hessian.h"
#include "core/dtype.h"
#include "core/error.h"
#include "quant/algo/group_params.h"
#include "quant/formats/traits.h"

namespace moeq {
namespace {

// Quantizes n weights as one group after clamping them to [f·min, f·max] (f = 1: no clipping).
GroupParams quantize_group(const float* w, int64_t n, float f, const QuantSpec& spec, ScaleDivision division,
                           uint8_t* codes, std::vector<float>& clamped) {
  const float* src = w;
  if (f < 1.0f) {
    const auto [lo, hi] = std::minmax_element(w, w + n);
    clamped.assign(w, w + n);
    for (float& v : clamped) v = std::clamp(v, f * *lo, f * *hi);
    src = clamped.data();
  }
  const GroupParams p = compute_group_params({src, size_t(n)}, spec, division);
  const int maxq = max_code(spec);
  for (int64_t i = 0; i < n; ++i) codes[i] = quantize_code(src[i], p, maxq);
  return p;
}

// Q(w) in contiguous groups, one clip factor per (row, group) (empty: none).
QuantizedMatrix quantize_matrix(const Tensor& w, const QuantSpec& spec, ScaleDivision division,
                                std::span<const float> clip) {
  const int64_t width = group_width(spec, w.cols()), groups = group_count(spec, w.cols());
  QuantizedMatrix q;
  q.spec = spec;
  q.rows = w.rows();
  q.cols = w.cols();
  q.n_groups = groups;
  q.codes.resize(size_t(q.rows * q.cols));
  q.scales.resize(size_t(q.rows * groups));
  q.zeros.resize(q.scales.size());
  q.g_idx.resize(size_t(q.cols));
  for (int64_t c = 0; c < q.cols; ++c) q.g_idx[size_t(c)] = int32_t(c / width);
  std::vector<float> clamped;
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t k = 0; k < groups; ++k) {
      const int64_t c0 = k * width, n = std::min(width, q.cols - c0);
      const size_t i = size_t(r * groups + k);
      const GroupParams p = quantize_group(w.row(r) + c0, n, clip.empty() ? 1.0f : clip[i], spec, division,
                                           q.codes.data() + r * q.cols + c0, clamped);
      q.scales[i] = p.scale;
      q.zeros[i] = p.zero;
    }
  check_quantized_matrix(q, "awq");
  return q;
}

// out[r][c] = ŵ[r][c] / div[c] − ref[r][c] (div empty: 1; ref null: 0).
void dequantize_into(const QuantizedMatrix& q, std::span<const float> div, const Tensor* ref, float* out) {
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c) {
      const size_t g = size_t(r * q.n_groups + q.g_idx[size_t(c)]);
      const size_t i = size_t(r * q.cols + c);
      float v = (float(q.codes[i]) - q.zeros[g]) * q.scales[g];
      if (!div.empty()) v /= div[size_t(c)];
      out[i] = ref ? v - ref->data[i] : v;
    }
}

Tensor scale_columns(const Tensor& w, std::span<const float> s) {
  Tensor ws = w;
  for (int64_t r = 0; r < ws.rows(); ++r)
    for (int64_t c = 0; c < ws.cols(); ++c) ws.row(r)[c] *= s[size_t(c)];
  return ws;
}

// Output error of Q(w·diag(s))·diag(s)⁻¹ against w under the Hessian h.
double scaled_error(const QuantizedMatrix& q, const Tensor& w, const Tensor& h, std::span<const float> s) {
  std::vector<float> delta(w.data.size());
  dequantize_into(q, s, &w, delta.data());
  return hessian_loss(delta, h);
}

// Duo scaling's weight term (AutoAWQ): per input channel, the mean over every row of every linear
// of |W[r][c]| / (max |W[r][c']| over c's group + 1e-6).
std::vector<float> weight_magnitude(std::span<const AwqLinear> linears, const QuantSpec& spec) {
  const int64_t cols = linears.front().weight->cols();
  const int64_t width = group_width(spec, cols);
  std::vector<double> sum(size_t(cols), 0.0);
  int64_t rows = 0;
  for (const AwqLinear& l : linears)
    for (int64_t r = 0; r < l.weight->rows(); ++r, ++rows)
      for (int64_t c0 = 0; c0 < cols; c0 += width) {
        const float* w = l.weight->row(r) + c0;
        const int64_t n = std::min(width, cols - c0);
        float peak = 0.0f;
        for (int64_t i = 0; i < n; ++i) peak = std::max(peak, std::fabs(w[i]));
        for (int64_t i = 0; i < n; ++i) sum[size_t(c0 + i)] += std::fabs(w[i]) / (peak + 1e-6f);
      }
  std::vector<float> mean(static_cast<size_t>(cols));
  for (size_t c = 0; c < mean.size(); ++c) mean[c] = float(sum[c] / double(rows));
  return mean;
}

// fp16's range: checkpoints store AWQ's s and the INT quantization scales in fp16.
constexpr float kF16MinNormal = 6.103515625e-05f, kF16Max = 65504.0f;

// The nearest fp16 value within fp16's normal range: the weights must be fitted to the stored s.
float fp16_value(float v) { return f16_to_f32(f32_to_f16(std::clamp(v, kF16MinNormal, kF16Max))); }

// s = max(s_x^α / d, 1e-4) / √(max · min), d = 1 as llm-awq has it, or with duo scaling
// (w_mean not empty) d = w_mean^(1−α) + 1e-4 as AutoAWQ's.
std::vector<float> candidate_scale(std::span<const float> act, std::span<const float> w_mean, float alpha) {
  std::vector<float> s(act.size());
  for (size_t c = 0; c < s.size(); ++c) {
    const float d = w_mean.empty() ? 1.0f : std::pow(w_mean[c], 1.0f - alpha) + 1e-4f;
    s[c] = std::max(std::pow(act[c], alpha) / d, 1e-4f);
  }
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  const float norm = std::sqrt(*lo * *hi);
  for (float& v : s) v = fp16_value(v / norm);
  return s;
}

// Clip search on one linear in the scaled space: ws = W·diag(s) and hs = diag(s)⁻¹ H diag(s)⁻¹,
// whose loss equals the original one. Coordinate descent over groups: delta holds ŵ − ws for the
// current choices and u = delta · hs, so changing row r's group by δ changes its loss by
// δ·(2 u_r[group] + hs[group, group] δ) exactly. Returns one factor per (row, group).
std::vector<float> search_clip(const Tensor& ws, const Tensor& hs, const QuantSpec& spec, const AwqOptions& opt) {
  const int64_t rows = ws.rows(), cols = ws.cols();
  const int64_t width = group_width(spec, cols), groups = group_count(spec, cols);
  std::vector<float> factor(size_t(rows * groups), 1.0f);
  std::vector<float> delta(ws.data.size()), u(ws.data.size());
  dequantize_into(quantize_matrix(ws, spec, opt.scale_division, {}), {}, &ws, delta.data());
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(cols), int(cols), 1.0f, delta.data(),
              int(cols), hs.ptr(), int(cols), 0.0f, u.data(), int(cols));
  const int candidates = int(opt.max_shrink * float(opt.clip_grid));
  std::vector<uint8_t> codes(static_cast<size_t>(width));
  std::vector<float> clamped;
  for (int64_t k = 0; k < groups; ++k) {
    const int64_t c0 = k * width, n = std::min(width, cols - c0);
    std::vector<float> hgg(size_t(n * n));
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(hs.row(c0 + i) + c0, n, hgg.begin() + i * n);
    std::vector<float> best(size_t(rows * n), 0.0f), trial(size_t(rows * n)), m(size_t(rows * n));
    std::vector<double> best_change(size_t(rows), 0.0);
    for (int i = 1; i < candidates; ++i) {
      const float f = 1.0f - float(i) / float(opt.clip_grid);
      for (int64_t r = 0; r < rows; ++r) {
        const float* w = ws.row(r) + c0;
        const GroupParams p = quantize_group(w, n, f, spec, opt.scale_division, codes.data(), clamped);
        for (int64_t j = 0; j < n; ++j)
          trial[size_t(r * n + j)] = dequantize_code(codes[size_t(j)], p) - w[j] - delta[size_t(r * cols + c0 + j)];
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(n), int(n), 1.0f, trial.data(), int(n),
                  hgg.data(), int(n), 0.0f, m.data(), int(n));
      for (int64_t r = 0; r < rows; ++r) {
        double change = 0.0;
        for (int64_t j = 0; j < n; ++j) {
          const size_t t = size_t(r * n + j);
          change += double(trial[t]) * (2.0 * u[size_t(r * cols + c0 + j)] + m[t]);
        }
        if (change >= best_change[size_t(r)]) continue;
        best_change[size_t(r)] = change;
        factor[size_t(r * groups + k)] = f;
        std::copy_n(trial.begin() + r * n, n, best.begin() + r * n);
      }
    }
    // Commit: delta[:, group] += best, u += best · hs[group, :].
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) delta[size_t(r * cols + c0 + j)] += best[size_t(r * n + j)];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(cols), int(n), 1.0f, best.data(), int(n),
                hs.row(c0), int(cols), 1.0f, u.data(), int(cols));
  }
  return factor;
}

void check_inputs(std::span<const AwqLinear> linears, std::span<const float> act, const AwqOptions& opt) {
  if (linears.empty()) fail("awq: no linears given");
  const int64_t in = int64_t(act.size());
  for (size_t i = 0; i < linears.size(); ++i) {
    const Tensor& w = *linears[i].weight;
    const Tensor& h = *linears[i].hessian;
    if (w.rank() != 2 || w.cols() != in || w.rows() == 0)
      fail("awq: linear {} weight must be [out, {}] (the activation statistics' width)", i, in);
    if (h.rank() != 2 || h.dim(0) != in || h.dim(1) != in) fail("awq: linear {} hessian must be [{}, {}]", i, in, in);
    for (float v : w.data)
      if (!std::isfinite(v)) fail("awq: linear {} weight holds a non-finite value ({})", i, v);
  }
  for (float v : act)
    if (!(v >= 0.0f) || !std::isfinite(v)) fail("awq: field 'act_mean_abs' holds {}, need finite >= 0", v);
  if (opt.grid <= 0) fail("awq: field 'grid' must be positive, got {}", opt.grid);
  if (opt.clip && (opt.clip_grid <= 0 || !(opt.max_shrink >= 0.0f && opt.max_shrink < 1.0f)))
    fail("awq: clip_grid must be positive and max_shrink in [0, 1), got {} and {}", opt.clip_grid, opt.max_shrink);
}

}  // namespace

AwqResult awq_quantize(std::span<const AwqLinear> linears, std::span<const float> act, const QuantSpec& spec,
                       const AwqOptions& opt) {
  check_int_spec(spec, "awq");
  check_inputs(linears, act, opt);
  AwqResult res;
  res.scaled_loss = INFINITY;
  auto try_scale = [&](std::vector<float> s, float alpha) {
    std::vector<QuantizedMatrix> q;
    double loss = 0.0;
    for (const AwqLinear& l : linears) {
      q.push_back(quantize_matrix(scale_columns(*l.weight, s), spec, opt.scale_division, {}));
      loss += scaled_error(q.back(), *l.weight, *l.hessian, s);
    }
    if (loss < res.scaled_loss) {  // ties keep the earlier candidate
      res.scaled_loss = loss;
      res.alpha = alpha;
      res.scale = std::move(s);
      res.q = std::move(q);
    }
  };
  // Plain RTN (s = 1) first, so the search never does worse. Without duo scaling α = 0 is RTN.
  try_scale(std::vector<float>(act.size(), 1.0f), 0.0f);
  res.rtn_loss = res.scaled_loss;
  const std::vector<float> w_mean = opt.duo_scaling ? weight_magnitude(linears, spec) : std::vector<float>{};
  for (int i = opt.duo_scaling ? 0 : 1; i <= opt.grid; ++i) {
    const float alpha = float(i) / float(opt.grid);
    try_scale(candidate_scale(act, w_mean, alpha), alpha);
  }
  res.loss = res.scaled_loss;
  if (!opt.clip) return res;

  res.loss = 0.0;
  for (size_t i = 0; i < linears.size(); ++i) {
    const Tensor& w = *linears[i].weight;
    const Tensor& h = *linears[i].hessian;
    const Tensor ws = scale_columns(w, res.scale);
    Tensor hs = h;
    for (int64_t r = 0; r < hs.rows(); ++r)
      for (int64_t c = 0; c < hs.cols(); ++c) hs.row(r)[c] /= res.scale[size_t(r)] * res.scale[size_t(c)];
    QuantizedMatrix clipped = quantize_matrix(ws, spec, opt.scale_division, search_clip(ws, hs, spec, opt));
    const double before = scaled_error(res.q[i], w, h, res.scale);
    const double after = scaled_error(clipped, w, h, res.scale);
    // The search only accepts improvements; this guards against fp32 rounding in its bookkeeping.
    if (after < before) res.q[i] = std::move(clipped);
    res.loss += std::min(before, after);
  }
  return res;
}

bool divide_rows(QuantizedMatrix& q, std::span<const float> s) {
  if (q.spec.format != QuantFormat::Int || int64_t(s.size()) != q.rows)
    fail("awq: divide_rows needs an INT matrix and one divisor per row ({} for {} rows)", s.size(), q.rows);
  std::vector<float> scales = q.scales;
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t k = 0; k < q.n_groups; ++k) {
      float& v = scales[size_t(r * q.n_groups + k)];
      v /= s[size_t(r)];
      if (!(v < kF16Max)) return false;
    }
  q.scales = std::move(scales);
  return true;
}

Tensor fold_input_scale(const QuantizedMatrix& q, std::span<const float> scale) {
  if (int64_t(scale.size()) != q.cols)
    fail("awq: fold_input_scale: scale has {} entries for {} columns", scale.size(), q.cols);
  Tensor out({q.rows, q.cols});
  dequantize_into(q, scale, nullptr, out.ptr());
  return out;
}

}  // namespace moeq
