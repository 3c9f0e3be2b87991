#include "quant/algo/gptq.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include <cblas.h>
#include <omp.h>
#include <fmt/format.h>

#include "core/error.h"
#include "core/int_math.h"
#include "kernels/parallel.h"
#include "quant/algo/group_params.h"
#include "quant/formats/traits.h"

// LAPACK, shipped inside OpenBLAS (no LAPACKE header in the openblas-openmp package). Fortran
// ABI: arguments by pointer, plus the hidden lengths of the character arguments.
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, size_t uplo_len);
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda, int* info,
             size_t uplo_len, size_t diag_len);
}

namespace moeq {
namespace {

constexpr int kMaxDampTries = 6;  // damp_percent, ×10, ×100, ... before giving up
constexpr int64_t kMinParallelWork = 1 << 20;  // multiply-adds below which one thread is faster
constexpr int64_t kSliceRows = 64;  // rows one thread sweeps at a time (Sweep::run)

// The upper Cholesky factor U of a⁻¹ (a⁻¹ = UᵀU), the reference's Hinv (cholesky →
// cholesky_inverse → cholesky(upper=True)), computed with one factorization and one triangular
// inverse instead of three factorizations: factor the index-reversed matrix J a J = L Lᵀ; then
// a = R Rᵀ with R = J L J upper triangular, a⁻¹ = R⁻ᵀ R⁻¹, and R⁻¹ — upper, positive diagonal —
// is by uniqueness the Cholesky factor U. In double: it is only in×in, and fp32 loses the small
// end of an ill-conditioned H. a is n×n symmetric row-major, replaced by U (zeros below the
// diagonal). False if a is not positive definite.
bool inverse_upper_cholesky(std::vector<double>& a, int n) {
  const size_t N = size_t(n);
  std::vector<double> rev(N * N);
  for (size_t i = 0; i < N; ++i)
    for (size_t j = 0; j < N; ++j) rev[i * N + j] = a[(N - 1 - i) * N + (N - 1 - j)];
  // LAPACK is column-major; on a row-major buffer its 'U' factor reads as the lower factor L and
  // its 'L' triangle as the row-major upper triangle.
  int info = 0;
  dpotrf_("U", &n, rev.data(), &n, &info, 1);
  if (info != 0) return false;
  for (size_t i = 0; i < N; ++i)
    for (size_t j = 0; j < N; ++j) a[i * N + j] = j >= i ? rev[(N - 1 - i) * N + (N - 1 - j)] : 0.0;
  dtrtri_("L", "N", &n, a.data(), &n, &info, 1, 1);
  if (info != 0) return false;
  for (size_t i = 0; i < N; ++i)
    if (!std::isfinite(a[i * N + i]) || a[i * N + i] <= 0.0) return false;
  return true;
}

// Hinv (fp32, row-major upper) for the permuted, dead-fixed Hessian hp; retries with 10× the
// dampening while H + damp·I is not positive definite. Returns the dampening used.
float damped_inverse_factor(const std::vector<double>& hp, int n, float damp_percent, std::vector<float>& hinv) {
  double mean_diag = 0.0;
  for (int i = 0; i < n; ++i) mean_diag += hp[size_t(i) * n + i];
  mean_diag /= n;
  double percent = damp_percent;
  std::vector<double> a;
  // A factorization of at most ~1024² takes milliseconds on one core; OpenBLAS's threaded
  // potrf/trtri synchronise at every panel, and on shared cores that costs far more than it
  // saves. The OpenMP build of OpenBLAS sizes its team from the caller's omp_get_max_threads().
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  struct Restore {
    int n;
    ~Restore() { omp_set_num_threads(n); }
  } restore{saved_threads};
  for (int attempt = 0; attempt < kMaxDampTries; ++attempt) {
    const double damp = percent * mean_diag;
    a = hp;
    for (int i = 0; i < n; ++i) a[size_t(i) * n + i] += damp;
    if (inverse_upper_cholesky(a, n)) {
      hinv.assign(a.begin(), a.end());
      return float(damp);
    }
    const double next = percent > 0.0 ? percent * 10.0 : 0.01;
    fmt::print(stderr, "moeq: warning: gptq: Hessian ({}x{}) not positive definite with dampening {:.3g} of mean "
               "diag; retrying with {:.3g}\n", n, n, percent, next);
    percent = next;
  }
  fail("gptq: Hessian ({}x{}) is not positive definite even with dampening {:.3g} of its mean diagonal", n, n,
       percent / 10.0);
}

// How columns map to groups and when group parameters are computed.
struct GroupLayout {
  int64_t size;      // columns per group (cols when per-channel)
  int64_t count;     // groups per row
  bool upfront;      // params from the original weights before the sweep (per-channel, static)
  int64_t block;     // lazy-update block, a multiple of size when params are computed on entry
};

GroupLayout make_layout(const QuantSpec& spec, const GptqOptions& opt, int64_t cols) {
  GroupLayout g{};
  g.size = group_width(spec, cols);
  g.count = group_count(spec, cols);
  g.upfront = spec.group_size == 0 || opt.static_groups;
  g.block = opt.block_size;
  // Params computed on entering a group must see every update from earlier columns, so a group
  // may not straddle two blocks. (The reference reads them from W, which lacks the updates made
  // earlier in the same block when groups are smaller than blocks; we use the updated values.)
  if (!g.upfront) g.block = g.size >= g.block ? g.size : g.block / g.size * g.size;
  return g;
}

// State of one GPTQ sweep over the permuted weights.
struct Sweep {
  const QuantSpec& spec;
  const std::optional<RangeSearch>& range_search;
  ScaleDivision division;
  const GroupLayout& layout;
  const std::vector<int64_t>& perm;
  const std::vector<float>& hinv;  // cols×cols, upper
  int64_t rows, cols;
  std::vector<float> w;            // rows×cols, columns permuted; updated in place
  std::vector<GroupParams> params; // rows×groups
  std::vector<uint8_t> codes;      // rows×cols, permuted order

  GroupParams group_params(const float* w, int64_t n) const {
    const std::span<const float> group{w, size_t(n)};
    return range_search ? search_group_params(group, spec, *range_search, division)
                        : compute_group_params(group, spec, division);
  }

  int64_t group_at(int64_t k) const {
    return layout.upfront ? perm[size_t(k)] / layout.size : k / layout.size;
  }

  // Quantizes columns [i1, i2) of row r with error feedback inside the block, writing the scaled
  // errors to er; returns Σ (w − q)² / d² for them.
  double row_block(int64_t r, int64_t i1, int64_t i2, float* er) {
    float* wr = w.data() + r * cols;
    GroupParams* pr = params.data() + r * layout.count;
    const int maxq = max_code(spec);
    double loss = 0.0;
    for (int64_t k = i1; k < i2; ++k) {
      if (!layout.upfront && k % layout.size == 0)
        pr[k / layout.size] = group_params(wr + k, std::min(layout.size, cols - k));
      const GroupParams p = pr[group_at(k)];
      const float x = wr[k];
      const uint8_t code = quantize_code(x, p, maxq);
      codes[size_t(r * cols + k)] = code;
      const float diff = x - dequantize_code(code, p);
      const float* hk = hinv.data() + k * cols;
      const float e = diff / hk[k];
      loss += double(e) * double(e);
      er[k - i1] = e;
      for (int64_t j = k + 1; j < i2; ++j) wr[j] -= e * hk[j];
    }
    return loss;
  }

  // Rows are independent in GPTQ (they share only Hinv), so each slice of kSliceRows rows sweeps
  // every block on its own, lazy GEMM included: one parallel region and no barriers, which
  // matters on 2 cores shared with other jobs, where a spinning OpenMP barrier can cost more than
  // the work. BLAS called inside the region runs single-threaded. The slices, not the threads,
  // fix each GEMM's shape (OpenBLAS picks its kernel by shape, and kernels round differently),
  // so the weights come out the same on any number of threads.
  double run() {
    const int64_t slices = ceil_div(rows, kSliceRows);
    std::vector<double> losses(static_cast<size_t>(slices));
    const bool parallel = rows * cols * std::min(layout.block, cols) >= kMinParallelWork;
    parallel_for(slices, parallel, Schedule::Static, [&](int64_t s) {
      losses[size_t(s)] = sweep_rows(s * kSliceRows, std::min(rows, (s + 1) * kSliceRows));
    });
    return std::accumulate(losses.begin(), losses.end(), 0.0) / 2.0;
  }

  double sweep_rows(int64_t r0, int64_t r1) {
    std::vector<float> err(size_t((r1 - r0) * std::min(layout.block, cols)));
    double loss = 0.0;
    for (int64_t i1 = 0; i1 < cols; i1 += layout.block) {
      const int64_t i2 = std::min(i1 + layout.block, cols), count = i2 - i1;
      for (int64_t r = r0; r < r1; ++r) loss += row_block(r, i1, i2, err.data() + (r - r0) * count);
      // Lazy batch update: W[r0:r1, i2:] −= Err · Hinv[i1:i2, i2:].
      if (i2 < cols && r1 > r0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(r1 - r0), int(cols - i2), int(count), -1.0f,
                    err.data(), int(count), hinv.data() + i1 * cols + i2, int(cols), 1.0f, w.data() + r0 * cols + i2,
                    int(cols));
    }
    return loss;
  }
};

void check_inputs(const Tensor& w, const Tensor& h, const GptqOptions& opt) {
  if (w.rank() != 2 || w.numel() == 0) fail("gptq: weight must be a non-empty matrix, got rank {}", w.rank());
  if (h.rank() != 2 || h.dim(0) != w.cols() || h.dim(1) != w.cols())
    fail("gptq: hessian must be [{}, {}] for a weight with {} columns", w.cols(), w.cols(), w.cols());
  for (float v : h.data)
    if (!std::isfinite(v)) fail("gptq: hessian holds a non-finite value ({})", v);
  for (float v : w.data)
    if (!std::isfinite(v)) fail("gptq: weight holds a non-finite value ({})", v);
  if (opt.block_size <= 0) fail("gptq: field 'block_size' must be positive, got {}", opt.block_size);
  if (!(opt.damp_percent >= 0.0f)) fail("gptq: field 'damp_percent' must be >= 0, got {}", opt.damp_percent);
}

}  // namespace

GptqResult gptq_quantize(const Tensor& w_in, const Tensor& hessian, const QuantSpec& spec,
                         const GptqOptions& opt) {
  check_int_spec(spec, "gptq");
  check_inputs(w_in, hessian, opt);
  const int64_t rows = w_in.rows(), cols = w_in.cols();
  const int n = int(cols);
  GptqResult result;

  // Dead inputs: H_ii = 1 keeps H invertible; their weights never meet a non-zero input.
  std::vector<double> h(hessian.data.begin(), hessian.data.end());
  std::vector<float> w0 = w_in.data;
  for (int64_t c = 0; c < cols; ++c) {
    double& hcc = h[size_t(c * cols + c)];
    if (hcc < 0.0) fail("gptq: hessian diagonal {} is negative ({})", c, hcc);
    if (hcc != 0.0) continue;
    hcc = 1.0;
    ++result.dead_columns;
    for (int64_t r = 0; r < rows; ++r) w0[size_t(r * cols + c)] = 0.0f;
  }

  std::vector<int64_t> perm(static_cast<size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  if (opt.act_order)
    std::stable_sort(perm.begin(), perm.end(),
                     [&](int64_t a, int64_t b) { return h[size_t(a * cols + a)] > h[size_t(b * cols + b)]; });
  std::vector<double> hp(h.size());
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t j = 0; j < cols; ++j) hp[size_t(i * cols + j)] = h[size_t(perm[i] * cols + perm[j])];
  std::vector<float> hinv;
  result.damp = damped_inverse_factor(hp, n, opt.damp_percent, hinv);

  const GroupLayout layout = make_layout(spec, opt, cols);
  Sweep sweep{spec, opt.range_search, opt.scale_division, layout, perm, hinv, rows, cols,
              std::vector<float>(w0.size()), std::vector<GroupParams>(size_t(rows * layout.count)),
              std::vector<uint8_t>(w0.size())};
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) sweep.w[size_t(r * cols + k)] = w0[size_t(r * cols + perm[k])];
  if (layout.upfront)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < layout.count; ++g) {
        const int64_t c0 = g * layout.size, len = std::min(layout.size, cols - c0);
        sweep.params[size_t(r * layout.count + g)] = sweep.group_params(w0.data() + r * cols + c0, len);
      }
  result.loss = sweep.run();

  QuantizedMatrix& q = result.q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.n_groups = layout.count;
  q.codes.resize(w0.size());
  q.g_idx.resize(size_t(cols));
  for (int64_t k = 0; k < cols; ++k) q.g_idx[size_t(perm[k])] = int32_t(sweep.group_at(k));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) q.codes[size_t(r * cols + perm[k])] = sweep.codes[size_t(r * cols + k)];
  q.scales.resize(sweep.params.size());
  q.zeros.resize(sweep.params.size());
  for (size_t i = 0; i < sweep.params.size(); ++i) {
    q.scales[i] = sweep.params[i].scale;
    q.zeros[i] = sweep.params[i].zero;
  }
  check_quantized_matrix(q, "gptq");
  return result;
}

}  // namespace moeq
