// Every quantized kernel path (scalar reference, AVX2, AVX-512; fused gemv and tile + gemm)
// against the reference kernels and against dequantize-then-matmul, for each format, on odd
// shapes (in 448, 192, 128, 100; out not a multiple of 8), including act-order g_idx; and the
// rows of the stored matrix that embedding lookups read (weight_rows); and the per-token INT8
// activation quantization in front of any of them (W8A8 / W4A8), with the integer kernels that
// take its codes.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>
#include <omp.h>

#include "core/error.h"
#include "kernels/act_quant_linear.h"
#include "kernels/cpu/quant_linear.h"
#include "quant/algo/rtn.h"
#include "quant/formats/traits.h"
#include "quant_test_util.h"

namespace moeq {
namespace {

using testing::normal_values;

std::vector<Isa> isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

struct Shape {
  int64_t out, in;
};

// x · ŵᵀ in double from the reference dequantization, and Σ|x·ŵ| per output: fp32 sums of
// `in` terms in any order (and the gemv's factored zero point, Σx·q − z·Σx) stay within a few
// 1e-6 of that magnitude.
struct Dense {
  std::vector<double> y, magnitude;
};

Dense dense_reference(const QuantizedMatrix& m, const std::vector<float>& x, int64_t n) {
  const std::vector<float> w = dequantize(m);
  Dense d{std::vector<double>(size_t(n * m.rows)), std::vector<double>(size_t(n * m.rows))};
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < m.rows; ++o)
      for (int64_t i = 0; i < m.cols; ++i) {
        const double p = double(x[size_t(t * m.cols + i)]) * w[size_t(o * m.cols + i)];
        d.y[size_t(t * m.rows + o)] += p;
        d.magnitude[size_t(t * m.rows + o)] += std::fabs(p);
      }
  return d;
}

void expect_near(const std::vector<float>& y, const std::vector<double>& expect, const Dense& d,
                 const std::string& what) {
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], expect[i], 4e-6 * d.magnitude[i] + 1e-6) << what << " at " << i;
}

// The matrix the op computes with: fp16 scales for Int, the packed (maybe double-quantized) absmax for bnb.
QuantizedMatrix as_stored(const QuantizedMatrix& m) {
  if (m.spec.format != QuantFormat::Int) return unpack_bnb4(pack_bnb4(m));
  return unpack_gptq(pack_gptq(m));
}

// weight_rows (embedding lookups) gives exactly the stored matrix's rows, from any first row.
void check_weight_rows(const QuantizedMatrix& stored, const LinearOp& op, const std::string& what) {
  const std::vector<float> w = dequantize(stored);
  for (int64_t first : {int64_t(0), int64_t(5), stored.rows - 3}) {
    const int64_t count = std::min<int64_t>(20, stored.rows - first);
    std::vector<float> rows(size_t(count * stored.cols), NAN);
    op.weight_rows(first, count, rows.data());
    const auto begin = w.begin() + first * stored.cols;
    ASSERT_EQ(rows, std::vector<float>(begin, begin + count * stored.cols)) << what << " rows from " << first;
  }
}

void check_all_paths(const QuantizedMatrix& m, const std::string& what) {
  const QuantizedMatrix stored = as_stored(m);
  for (Isa isa : isas()) check_weight_rows(stored, *make_quant_linear(m, {.isa = isa}), what + " " + std::string(isa_name(isa)));
  for (int64_t n : {1, 3, 6, 16, 33}) {
    const std::vector<float> x = normal_values(n * m.cols, uint32_t(n));
    const Dense dense = dense_reference(stored, x, n);
    std::vector<float> ref(size_t(n * m.rows));
    make_quant_linear(m, {.isa = Isa::Scalar, .gemm_min_tokens = 1 << 30})->forward(x.data(), n, ref.data());
    expect_near(ref, dense.y, dense, what + " scalar gemv");
    const std::vector<double> ref_d(ref.begin(), ref.end());
    for (Isa isa : isas()) {
      for (int64_t gemm_min : {int64_t(1), int64_t(1) << 30}) {
        const LinearPtr op = make_quant_linear(m, {.isa = isa, .gemm_min_tokens = gemm_min});
        std::vector<float> y(size_t(n * m.rows), NAN);
        op->forward(x.data(), n, y.data());
        const std::string path = what + " " + std::string(isa_name(isa)) + (gemm_min == 1 ? " gemm" : " gemv") +
                                 " n=" + std::to_string(n);
        expect_near(y, dense.y, dense, path + " vs dense");
        expect_near(y, ref_d, dense, path + " vs scalar reference");
      }
    }
  }
}

TEST(QuantKernels, IntFormatsOnOddShapes) {
  const Shape shapes[] = {{37, 448}, {100, 192}, {13, 128}};
  const char* specs[] = {"int2 g32 asym", "int3 g128 asym", "int4 g64 sym", "int4 g128 asym", "int8 g0 sym", "int3 g0 sym"};
  uint32_t seed = 10;
  for (const Shape& s : shapes)
    for (const char* spec : specs) {
      const std::vector<float> w = normal_values(s.out * s.in, ++seed);
      check_all_paths(rtn_quantize(w.data(), s.out, s.in, parse_quant_spec(spec)),
                      std::string(spec) + " " + std::to_string(s.out) + "x" + std::to_string(s.in));
    }
}

TEST(QuantKernels, IntPaddingAndActOrder) {
  // in = 100: per-channel rows padded to 128 inputs.
  const std::vector<float> w = normal_values(21 * 100, 3);
  check_all_paths(rtn_quantize(w.data(), 21, 100, parse_quant_spec("int4 g0 asym")), "int4 g0 100 in");
  // Act-order: a g_idx that interleaves the groups (GPTQ desc_act); groups of 64 over 192 columns.
  const std::vector<float> w2 = normal_values(30 * 192, 4);
  QuantizedMatrix m = rtn_quantize(w2.data(), 30, 192, parse_quant_spec("int3 g64 asym"));
  for (int64_t c = 0; c < 192; ++c) m.g_idx[size_t(c)] = int32_t(c % 3);
  check_all_paths(m, "int3 g64 act-order");
}

TEST(QuantKernels, Bnb4FormatsOnOddShapes) {
  const Shape shapes[] = {{37, 448}, {100, 192}, {13, 128}};
  uint32_t seed = 50;
  for (const Shape& s : shapes)
    for (const char* spec : {"nf4", "fp4", "nf4 dq", "fp4 dq"}) {
      const std::vector<float> w = normal_values(s.out * s.in, ++seed);
      check_all_paths(rtn_quantize(w.data(), s.out, s.in, parse_quant_spec(spec)),
                      std::string(spec) + " " + std::to_string(s.out) + "x" + std::to_string(s.in));
    }
}

TEST(QuantKernels, SimdDequantTilesEqualTheReferenceBitForBit) {
  const std::vector<float> w = normal_values(37 * 448, 9);
  for (const char* spec : {"int2 g32 asym", "int3 g128 sym", "int4 g64 asym", "int8 g0 sym"}) {
    const IntLayout L = make_int_layout(rtn_quantize(w.data(), 37, 448, parse_quant_spec(spec)));
    std::vector<float> ref(size_t(L.in_pad * L.out_pad));
    scalar_quant_kernels().int_dequant(L, 0, L.out_pad, ref.data());
    for (Isa isa : isas()) {
      std::vector<float> got(ref.size());
      quant_kernels(isa).int_dequant(L, 0, L.out_pad, got.data());
      EXPECT_EQ(got, ref) << spec << " " << isa_name(isa);
    }
  }
  const Bnb4Tensors t = pack_bnb4(rtn_quantize(w.data(), 37, 448, parse_quant_spec("nf4 dq")));
  std::vector<float> ref(size_t(37 * 448));
  scalar_quant_kernels().bnb4_dequant(t, 0, 37, ref.data());
  EXPECT_EQ(ref, dequantize(unpack_bnb4(t)));
  for (Isa isa : isas()) {
    std::vector<float> got(ref.size());
    quant_kernels(isa).bnb4_dequant(t, 0, 37, got.data());
    EXPECT_EQ(got, ref) << isa_name(isa);
  }
}

// GPTQ's range search ranks candidate (scale, zero) pairs by range_errors: every ISA must give the
// reference's sums to the bit (or a search would pick other parameters on another CPU), and the
// reference must be the definition, here with std::nearbyint. The weights include exact .5 ties
// (ties to even) and a scale so small that w / scale passes 2^22 (round_half_even's other branch).
TEST(QuantKernels, RangeErrorsEqualTheDefinitionBitForBit) {
  std::vector<float> w = normal_values(131, 12);
  for (int k = 0; k < 8; ++k) w[size_t(k)] = (float(k) - 3.5f) * 0.25f;  // ties at scale 0.25
  std::vector<GroupParams> candidates;
  for (int bits : {2, 3, 4, 8})
    for (int i = 0; i < 19; ++i) {
      const float step = 2.5f / float((1 << bits) - 1) * (1.0f - 0.04f * float(i));
      candidates.push_back({step, i % 2 == 0 ? float(1 << (bits - 1)) : std::nearbyint(1.2f / step)});
    }
  candidates.push_back({0.25f, 2.0f});
  candidates.push_back({1e-8f, 1.0f});
  for (const size_t n : {size_t(131), size_t(37), size_t(1)}) {
    for (const int max_code : {3, 15, 255}) {
      std::vector<float> expected(candidates.size());
      for (size_t c = 0; c < candidates.size(); ++c) {
        const GroupParams p = candidates[c];
        for (size_t i = 0; i < n; ++i) {
          const float code = std::clamp(std::nearbyint(w[i] / p.scale) + p.zero, 0.0f, float(max_code));
          const float d = w[i] - (code - p.zero) * p.scale;
          expected[c] += d * d;
        }
      }
      for (Isa isa : isas())
        for (const size_t count : {candidates.size(), size_t(17), size_t(1)}) {
          std::vector<float> got(count);
          quant_kernels(isa).range_errors(w.data(), int64_t(n), candidates.data(), int64_t(count), max_code, got.data());
          EXPECT_EQ(got, std::vector<float>(expected.begin(), expected.begin() + ptrdiff_t(count)))
              << isa_name(isa) << " n=" << n << " max_code=" << max_code << " count=" << count;
        }
    }
  }
}

// A prefill-sized forward forks and splits the outputs into tiles by thread count; every
// column's sum must come out the same however it was split.
TEST(QuantKernels, ForkedGemmEqualsOneThreadBitForBit) {
  const int64_t out = 448, in = 256, n = 64;  // 7.3 M multiply-adds: above the fork threshold
  const std::vector<float> w = normal_values(out * in, 21), x = normal_values(n * in, 22);
  const int threads = omp_get_max_threads();
  for (const char* spec : {"int4 g128 asym", "int3 g64 sym", "nf4 dq"}) {
    const QuantizedMatrix m = rtn_quantize(w.data(), out, in, parse_quant_spec(spec));
    const LinearPtr op = make_quant_linear(m, {.isa = best_isa(), .gemm_min_tokens = 1});
    std::vector<float> one(size_t(n * out)), forked(size_t(n * out));
    omp_set_num_threads(1);
    op->forward(x.data(), n, one.data());
    omp_set_num_threads(3);
    op->forward(x.data(), n, forked.data());
    omp_set_num_threads(threads);
    EXPECT_EQ(forked, one) << spec;
    const Dense dense = dense_reference(as_stored(m), x, n);
    expect_near(forked, dense.y, dense, spec);
  }
}

TEST(QuantKernels, OpReportsShapeFormatAndStoredBytes) {
  const std::vector<float> w = normal_values(448 * 256, 5);
  const LinearPtr op = make_quant_linear(rtn_quantize(w.data(), 448, 256, parse_quant_spec("int4 g128 asym")));
  EXPECT_EQ(op->in_features(), 256);
  EXPECT_EQ(op->out_features(), 448);
  EXPECT_EQ(op->format_name(), "int4 g128 asym");
  EXPECT_EQ(op->storage_bytes(), size_t(256 * 448 / 2 + 2 * 56 * 4 + 2 * 448 * 2 + 256 * 4));
  const LinearPtr nf4 = make_quant_linear(rtn_quantize(w.data(), 448, 256, parse_quant_spec("nf4 dq")));
  EXPECT_EQ(nf4->format_name(), "nf4 dq");
  EXPECT_EQ(nf4->storage_bytes(), size_t(448 * 256 / 2 + 1792 + 7 * 4 + 4 + 16 * 4 + 256 * 4));
}


// W8A8 / W4A8: each token's row to INT8 with its own scale absmax / 127, ties to even. The rows'
// maxima are 127 and 127/8, so every scale and value is exact and the rows can be written out.
TEST(ActQuant, EachRowToInt8WithItsOwnScaleTiesToEven) {
  const std::vector<float> x = {127, -50.5f, 2.5f, 3.5f, -0.4f, 0.6f,          // scale 1
                                -15.875f, 6.3125f, 0.0625f, -0.1875f, 1, 0,  // scale 1/8
                                0, 0, 0, 0, 0, 0};
  const std::vector<float> expected = {127, -50, 2, 4, 0, 1, -15.875f, 6.25f, 0, -0.25f, 1, 0, 0, 0, 0, 0, 0, 0};
  std::vector<float> row(6);
  for (size_t r = 0; r < 3; ++r) {
    quantize_activation_row({x.data() + 6 * r, 6}, row);
    EXPECT_EQ(row, std::vector<float>(expected.begin() + 6 * r, expected.begin() + 6 * r + 6)) << "row " << r;
  }

  // The op hands the quantized rows to the op it wraps, and reports that op's weights.
  struct Recorder final : LinearOp {
    mutable std::vector<float> seen;
    int64_t in_features() const override { return 6; }
    int64_t out_features() const override { return 1; }
    void forward(const float* in, int64_t n, float* y) const override {
      seen.assign(in, in + n * 6);
      std::fill(y, y + n, 0.0f);
    }
    void weight_rows(int64_t, int64_t count, float* out) const override { std::fill(out, out + 6 * count, 2.0f); }
    size_t storage_bytes() const override { return 12; }
    std::string format_name() const override { return "int4 g128 asym"; }
  };
  auto recorder = std::make_unique<Recorder>();
  const Recorder* inner = recorder.get();
  const LinearPtr op = with_act_bits(std::move(recorder), 8);
  std::vector<float> y(3);
  op->forward(x.data(), 3, y.data());
  EXPECT_EQ(inner->seen, expected);
  EXPECT_EQ(op->format_name(), "int4 g128 asym a8");
  EXPECT_EQ(op->storage_bytes(), 12u);
  std::vector<float> w(6);
  op->weight_rows(0, 1, w.data());
  EXPECT_EQ(w, std::vector<float>(6, 2.0f));

  auto plain = std::make_unique<Recorder>();
  const LinearOp* unwrapped = plain.get();
  EXPECT_EQ(with_act_bits(std::move(plain), 16).get(), unwrapped);
  EXPECT_THROW(with_act_bits(std::make_unique<Recorder>(), 4), Error);
}

// Rows for the INT8-activation kernels: Gaussian, except that row 0 has absmax 127 (scale 1)
// and values at .5 ties, and row 1 is zeros (scale 0).
std::vector<float> a8_rows(int64_t n, int64_t in, uint32_t seed) {
  std::vector<float> x = normal_values(n * in, seed);
  for (int64_t i = 0; i < in; ++i) x[size_t(i)] = i == 0 ? 127.0f : float(i % 40) - 19.5f;
  if (n > 1) std::fill_n(x.begin() + in, in, 0.0f);
  return x;
}

// The integer kernels (INT8 activations × INT2/4/8 codes): the scalar one against
// Σ code · scale · ŵ in double, with codes and scales from quantize_activation_codes and ŵ the
// stored matrix; every ISA's quantization and product against the scalar ones bit for bit.
// Padding (in = 100), per-channel groups and act-order included; INT3 has no integer kernel.
TEST(QuantKernels, Int8ActivationKernelsEqualTheReferenceBitForBit) {
  struct Case {
    const char* spec;
    int64_t out, in;
    bool act_order;
  };
  const Case cases[] = {{"int4 g128 asym", 37, 448, false}, {"int4 g32 sym", 21, 100, false},
                        {"int2 g64 asym", 30, 192, true},   {"int8 g0 sym", 37, 448, false},
                        {"int8 g32 asym", 13, 128, true},   {"int4 g0 asym", 100, 192, false}};
  uint32_t seed = 70;
  for (const Case& c : cases) {
    const std::vector<float> w = normal_values(c.out * c.in, ++seed);
    QuantizedMatrix m = rtn_quantize(w.data(), c.out, c.in, parse_quant_spec(c.spec));
    if (c.act_order)
      for (int64_t col = 0; col < c.in; ++col) m.g_idx[size_t(col)] = int32_t(col % m.n_groups);
    const std::vector<float> stored = dequantize(as_stored(m));
    const IntQuantLinear scalar(m, {.isa = Isa::Scalar});
    ASSERT_GT(scalar.int8_max_tokens(), 0) << c.spec;
    for (int64_t n : {1, 2, 3, 7, 20}) {
      const std::vector<float> x = a8_rows(n, c.in, uint32_t(n) + seed);
      std::vector<float> ref(size_t(n * c.out), NAN);
      scalar.forward_a8(x.data(), n, ref.data());
      const std::string what = std::string(c.spec) + " n=" + std::to_string(n);
      std::vector<int8_t> codes(size_t(c.in));
      for (int64_t t = 0; t < n; ++t) {
        const float scale = quantize_activation_codes({x.data() + t * c.in, size_t(c.in)}, codes);
        for (int64_t o = 0; o < c.out; ++o) {
          double y = 0, magnitude = 0;
          for (int64_t i = 0; i < c.in; ++i) {
            const double p = double(codes[size_t(i)]) * scale * stored[size_t(o * c.in + i)];
            y += p;
            magnitude += std::fabs(p);
          }
          ASSERT_NEAR(ref[size_t(t * c.out + o)], y, 4e-6 * magnitude + 1e-6) << what << " t=" << t << " o=" << o;
        }
      }
      const IntLayout L = make_int_layout(m);
      for (Isa isa : isas()) {
        const IntQuantLinear op(m, {.isa = isa});
        if (op.int8_max_tokens() == 0) continue;
        std::vector<float> got(ref.size(), NAN);
        op.forward_a8(x.data(), n, got.data());
        EXPECT_EQ(got, ref) << what << " " << isa_name(isa);
        if (L.identity) {  // the quantization on its own: codes in a8_slot order, group sums, scales
          std::vector<int8_t> xq[2];
          std::vector<int32_t> sums[2];
          std::vector<float> scales[2];
          const QuantKernels* kernels[2] = {&scalar_quant_kernels(), &quant_kernels(isa)};
          for (int k = 0; k < 2; ++k) {
            xq[k].resize(size_t(n * L.in_pad));
            sums[k].resize(size_t(n * L.n_groups));
            scales[k].resize(size_t(n));
            kernels[k]->int_a8_quantize(L, x.data(), n, xq[k].data(), sums[k].data(), scales[k].data());
          }
          EXPECT_EQ(xq[1], xq[0]) << what << " " << isa_name(isa);
          EXPECT_EQ(sums[1], sums[0]) << what << " " << isa_name(isa);
          EXPECT_EQ(scales[1], scales[0]) << what << " " << isa_name(isa);
        }
      }
    }
  }
  const std::vector<float> w = normal_values(16 * 64, 1);
  EXPECT_TRUE(IntQuantLinear(rtn_quantize(w.data(), 16, 64, parse_quant_spec("int3 g32 asym")), {}).int8_max_tokens() == 0);
}

// ActQuantLinear hands x to the integer kernels where there are some and x̂ to the fp32 kernels
// elsewhere: the two are the same product up to fp32 rounding.
TEST(ActQuant, IntegerAndFp32PathsAgree) {
  // The same op seen only as a LinearOp: ActQuantLinear cannot find its integer kernel.
  struct Fp32Only final : LinearOp {
    LinearPtr op;
    int64_t in_features() const override { return op->in_features(); }
    int64_t out_features() const override { return op->out_features(); }
    void forward(const float* x, int64_t n, float* y) const override { op->forward(x, n, y); }
    void weight_rows(int64_t first, int64_t count, float* out) const override { op->weight_rows(first, count, out); }
    size_t storage_bytes() const override { return op->storage_bytes(); }
    std::string format_name() const override { return op->format_name(); }
  };
  const int64_t out = 48, in = 256;
  const std::vector<float> w = normal_values(out * in, 31);
  for (const char* spec : {"int4 g128 asym", "int8 g0 sym", "int3 g128 asym"}) {
    const QuantizedMatrix m = rtn_quantize(w.data(), out, in, parse_quant_spec(spec));
    const ActQuantLinear integer(make_quant_linear(m));
    auto hidden = std::make_unique<Fp32Only>();
    hidden->op = make_quant_linear(m);
    const ActQuantLinear fp32(std::move(hidden));
    EXPECT_FALSE(fp32.integer_kernel());
    const bool has_kernel = IntQuantLinear(m, {}).int8_max_tokens() > 0;
    EXPECT_EQ(integer.integer_kernel(), has_kernel) << spec;
    // AVX2's integer kernels lose to the tile + gemm path at prefill sizes: decode only there.
    if (has_kernel && isa_supported(Isa::Avx2)) {
      EXPECT_EQ(IntQuantLinear(m, {.isa = Isa::Avx2, .gemm_min_tokens = 16}).int8_max_tokens(), 15) << spec;
    }
    for (int64_t n : {1, 5, 40}) {
      const std::vector<float> x = normal_values(n * in, uint32_t(n));
      std::vector<float> a(size_t(n * out)), b(size_t(n * out));
      integer.forward(x.data(), n, a.data());
      fp32.forward(x.data(), n, b.data());
      for (size_t k = 0; k < a.size(); ++k) ASSERT_NEAR(a[k], b[k], 2e-5f * (1.0f + std::fabs(b[k]))) << spec << " n=" << n;
    }
  }
}

}  // namespace
}  // namespace moeq
