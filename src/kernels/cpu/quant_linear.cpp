#include "kernels/cpu/quant_linear.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/int_math.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "quant/formats/size.h"
#include "quant/formats/traits.h"

namespace moeq {
namespace {

// A dequantized tile of about this many floats (256 KiB) stays in L2 while gemm reads it.
constexpr int64_t kTileFloats = 64 * 1024;
// Tiles per thread when forked: a layer of 256 outputs fits one L2 tile, which would leave every
// other thread idle; two per thread also balance a narrower last tile under the dynamic schedule.
constexpr int64_t kTilesPerThread = 2;
// Tile widths are whole panels of gemm and whole kOutPad blocks of the Int layout.
constexpr int64_t kTileAlign = kGemmPanelCols;
static_assert(kTileAlign % kOutPad == 0);
// Below this many multiply-adds (~30 µs on one core) a forward runs on the calling thread only:
// a decode step of one expert matrix (~10^5) is over before a thread team would have formed.
constexpr int64_t kParallelMacs = 1 << 20;
constexpr int64_t kGemvOuts = 64;  // outputs per parallel work item of the Int gemv
constexpr int64_t kGemvRows = 16;  // rows per work item of the bnb gemv

const QuantKernels* pick_kernels(const QuantLinearOptions& options) {
  return &quant_kernels(options.isa.value_or(best_isa()));
}

bool worth_forking(int64_t n, int64_t in, int64_t out) { return n * in * out >= kParallelMacs; }

// Tile width in units of `align`: as many as fit kTileFloats next to `depth` floats each, and,
// when the forward forks, narrow enough that every thread gets kTilesPerThread tiles. A column's
// sum does not depend on which tile holds it (gemm.h), so the split never changes results.
int64_t tile_width(int64_t depth, int64_t align, int64_t limit, bool worth_it) {
  int64_t w = std::max<int64_t>(1, kTileFloats / std::max<int64_t>(depth, 1) / align) * align;
  if (worth_it && can_fork()) {
    const int64_t parts = kTilesPerThread * omp_get_max_threads();
    w = std::min(w, round_up(ceil_div(limit, parts), align));
  }
  return std::min(w, round_up(limit, align));
}

}  // namespace

IntQuantLinear::IntQuantLinear(const QuantizedMatrix& m, const QuantLinearOptions& options)
    : spec_(m.spec), layout_(make_int_layout(m)), kernels_(pick_kernels(options)),
      gemm_min_tokens_(options.gemm_min_tokens) {}

size_t IntQuantLinear::storage_bytes() const { return size_t(quant_size(spec_, layout_.out, layout_.in).total()); }

const float* IntQuantLinear::group_ordered(const float* x, int64_t n) const {
  const IntLayout& L = layout_;
  if (L.identity) return x;
  thread_local std::vector<float> gathered;
  gathered.resize(size_t(n * L.in_pad));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < L.in_pad; ++i) {
      const int32_t c = L.src_col[size_t(i)];
      gathered[size_t(t * L.in_pad + i)] = c < 0 ? 0.0f : x[t * L.in + c];
    }
  return gathered.data();
}

void IntQuantLinear::forward(const float* x, int64_t n, float* y) const {
  const float* xp = group_ordered(x, n);
  if (n >= gemm_min_tokens_)
    gemm(xp, n, y);
  else
    gemv(xp, n, y);
}

void IntQuantLinear::gemm(const float* xp, int64_t n, float* y) const {
  const IntLayout& L = layout_;
  const bool worth_it = worth_forking(n, L.in, L.out);
  const int64_t width = tile_width(L.in_pad, kTileAlign, L.out_pad, worth_it);
  const int64_t tiles = ceil_div(L.out_pad, width);
  parallel_for(tiles, worth_it, Schedule::Dynamic, [&](int64_t k) {
    thread_local std::vector<float> tile;
    const int64_t o0 = k * width, o1 = std::min(o0 + width, L.out_pad), cols = std::min(o1, L.out) - o0;
    if (cols <= 0) return;
    tile.resize(size_t(L.in_pad * (o1 - o0)));
    kernels_->int_dequant(L, o0, o1, tile.data());
    moeq::gemm({.m = n, .n = cols, .k = L.in_pad, .a = xp, .lda = L.in_pad,
                .b = {GemmB::Layout::NN, DType::F32, tile.data(), o1 - o0}, .c = y + o0, .ldc = L.out});
  });
}

template <class Kernel>
void IntQuantLinear::over_output_blocks(int64_t n, float* y, Kernel&& kernel) const {
  const IntLayout& L = layout_;
  thread_local std::vector<float> ypad;
  ypad.resize(size_t(n * L.out_pad));
  float* yp = ypad.data();
  parallel_for(ceil_div(L.out_pad, kGemvOuts), worth_forking(n, L.in, L.out), Schedule::Static, [&](int64_t k) {
    kernel(k * kGemvOuts, std::min(L.out_pad, (k + 1) * kGemvOuts), yp, L.out_pad);
  });
  for (int64_t t = 0; t < n; ++t) std::copy_n(yp + t * L.out_pad, L.out, y + t * L.out);
}

void IntQuantLinear::gemv(const float* xp, int64_t n, float* y) const {
  const IntLayout& L = layout_;
  thread_local std::vector<float> xsum;
  xsum.assign(size_t(n * L.n_groups), 0.0f);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t g = 0; g < L.n_groups; ++g)
      for (int64_t i = L.group_start[size_t(g)]; i < L.group_start[size_t(g + 1)]; ++i)
        xsum[size_t(t * L.n_groups + g)] += xp[t * L.in_pad + i];
  const float* sums = xsum.data();  // not named in the lambda: other threads have their own xsum
  over_output_blocks(n, y, [&](int64_t o0, int64_t o1, float* yp, int64_t ldy) {
    kernels_->int_gemv(L, xp, sums, n, o0, o1, yp, ldy);
  });
}

// INT2/4/8 (whole bytes per word), and a group's largest |Σ code · activation|, 255 · 128 · width,
// within int32; every n, or decode only (below gemm_min_tokens) where the tile path is faster.
int64_t IntQuantLinear::int8_max_tokens() const {
  const IntLayout& L = layout_;
  int64_t widest = 0;
  for (int64_t g = 0; g < L.n_groups; ++g) widest = std::max(widest, L.group_start[size_t(g + 1)] - L.group_start[size_t(g)]);
  if (!a8_kernel_bits(L.bits) || 255 * 128 * widest > INT32_MAX) return 0;
  return kernels_->a8_beats_tile_gemm ? INT64_MAX : gemm_min_tokens_ - 1;
}

void IntQuantLinear::forward_a8(const float* x, int64_t n, float* y) const {
  const IntLayout& L = layout_;
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<int32_t> xqsum;
  thread_local std::vector<float> xscale;
  xq.resize(size_t(n * L.in_pad));
  xqsum.resize(size_t(n * L.n_groups));
  xscale.resize(size_t(n));
  kernels_->int_a8_quantize(L, group_ordered(x, n), n, xq.data(), xqsum.data(), xscale.data());
  // The thread_local buffers are named on this thread only: other threads have their own.
  const int8_t* codes = xq.data();
  const int32_t* sums = xqsum.data();
  const float* scales = xscale.data();
  over_output_blocks(n, y, [&](int64_t o0, int64_t o1, float* yp, int64_t ldy) {
    kernels_->int_gemv_a8(L, codes, sums, scales, n, o0, o1, yp, ldy);
  });
}

// Rows of W are outputs here: dequantize the kOutPad-wide tile holding each and read its column
// back into input order.
void IntQuantLinear::weight_rows(int64_t first, int64_t count, float* out) const {
  const IntLayout& L = layout_;
  std::vector<float> tile(size_t(L.in_pad * kOutPad));
  int64_t tile_o0 = -1;
  for (int64_t o = first; o < first + count; ++o) {
    const int64_t o0 = o / kOutPad * kOutPad;
    if (o0 != tile_o0) kernels_->int_dequant(L, o0, o0 + kOutPad, tile.data());
    tile_o0 = o0;
    float* row = out + (o - first) * L.in;
    for (int64_t i = 0; i < L.in_pad; ++i)
      if (const int32_t c = L.src_col[size_t(i)]; c >= 0) row[c] = tile[size_t(i * kOutPad + (o - o0))];
  }
}

Bnb4QuantLinear::Bnb4QuantLinear(Bnb4Tensors tensors, const QuantLinearOptions& options)
    : t_(std::move(tensors)), kernels_(pick_kernels(options)), gemm_min_tokens_(options.gemm_min_tokens) {}

size_t Bnb4QuantLinear::storage_bytes() const { return size_t(quant_size(t_.spec, t_.rows, t_.cols).total()); }

void Bnb4QuantLinear::forward(const float* x, int64_t n, float* y) const {
  const int64_t rows = t_.rows, cols = t_.cols;
  const bool worth_it = worth_forking(n, cols, rows);
  if (n < gemm_min_tokens_) {
    const int64_t items = ceil_div(rows, kGemvRows);
    parallel_for(items, worth_it, Schedule::Static, [&](int64_t k) {
      kernels_->bnb4_gemv(t_, x, n, k * kGemvRows, std::min(rows, (k + 1) * kGemvRows), y, rows);
    });
    return;
  }
  const int64_t height = tile_width(cols, kTileAlign, rows, worth_it);
  const int64_t tiles = ceil_div(rows, height);
  parallel_for(tiles, worth_it, Schedule::Dynamic, [&](int64_t k) {
    thread_local std::vector<float> tile;
    const int64_t r0 = k * height, r1 = std::min(rows, r0 + height);
    tile.resize(size_t((r1 - r0) * cols));
    kernels_->bnb4_dequant(t_, r0, r1, tile.data());
    moeq::gemm({.m = n, .n = r1 - r0, .k = cols, .a = x, .lda = cols,
                .b = {GemmB::Layout::NT, DType::F32, tile.data(), cols}, .c = y + r0, .ldc = rows});
  });
}

void Bnb4QuantLinear::weight_rows(int64_t first, int64_t count, float* out) const {
  kernels_->bnb4_dequant(t_, first, first + count, out);
}

LinearPtr make_quant_linear(const QuantizedMatrix& m, const QuantLinearOptions& options) {
  if (m.spec.format == QuantFormat::Int) return std::make_unique<IntQuantLinear>(m, options);
  return std::make_unique<Bnb4QuantLinear>(pack_bnb4(m), options);
}

LinearPtr make_quant_linear(const GptqTensors& t, const QuantLinearOptions& options) {
  return std::make_unique<IntQuantLinear>(unpack_gptq(t), options);
}

LinearPtr make_quant_linear(const Bnb4Tensors& t, const QuantLinearOptions& options) {
  check_quantized_matrix(unpack_bnb4(t), "make_quant_linear");
  return std::make_unique<Bnb4QuantLinear>(t, options);
}

}  // namespace moeq
