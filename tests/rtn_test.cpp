// Round-to-nearest against hand-computed examples of rtn_torch.md's definition.
#include <cmath>

#include <gtest/gtest.h>

#include "quant/algo/rtn.h"
#include "quant/formats/bnb4.h"
#include "quant/formats/traits.h"
#include "quant_test_util.h"

namespace moeq {
namespace {

QuantizedMatrix rtn(const std::vector<float>& w, int64_t rows, const char* spec) {
  return rtn_quantize(w.data(), rows, int64_t(w.size()) / rows, parse_quant_spec(spec));
}

TEST(Rtn, AsymmetricRoundsHalfToEven) {
  // Range [−1, 2.75]: scale 3.75 / 15 = 0.25, zero round(1 / 0.25) = 4.
  // w / scale = −4, −0.5, 1.5, 2.5, 11 → round half to even −4, −0, 2, 2, 11 → + 4.
  const QuantizedMatrix m = rtn({-1.0f, -0.125f, 0.375f, 0.625f, 2.75f}, 1, "int4 g0 asym");
  EXPECT_EQ(m.scales, std::vector<float>{0.25f});
  EXPECT_EQ(m.zeros, std::vector<float>{4.0f});
  EXPECT_EQ(m.codes, (std::vector<uint8_t>{0, 4, 6, 6, 15}));
  EXPECT_EQ(dequantize(m), (std::vector<float>{-1.0f, 0.0f, 0.5f, 0.5f, 2.75f}));
}

TEST(Rtn, SymmetricStoresCodesWithOffset) {
  // absmax 1.75, qmax 7: scale 0.25; q = −7, 0 (0.5 → 0), 2 (1.5 → 2), 4; codes q + 8.
  const QuantizedMatrix m = rtn({-1.75f, 0.125f, 0.375f, 1.0f}, 1, "int4 g0 sym");
  EXPECT_EQ(m.scales, std::vector<float>{0.25f});
  EXPECT_EQ(m.zeros, std::vector<float>{8.0f});
  EXPECT_EQ(m.codes, (std::vector<uint8_t>{1, 8, 10, 12}));
  // int8: qmax 127, scale 1.27 / 127 = 0.01; −1.27 → −127 → code 1; 0 → code 128.
  const QuantizedMatrix m8 = rtn({-1.27f, 0.635f, 0.0f}, 1, "int8 g0 sym");
  EXPECT_FLOAT_EQ(m8.scales[0], 0.01f);
  EXPECT_EQ(m8.codes[0], 1);
  EXPECT_EQ(m8.codes[2], 128);
  EXPECT_EQ(m8.zeros[0], 128.0f);
}

TEST(Rtn, OneSignedGroupsWidenTheRangeToZero) {
  // All weights > 0: the anchor formula would give zero = round(−0.5 / 0.2167) = −2, which no
  // unsigned qzeros can hold. moeq widens to [0, 3.75]: scale 0.25, zero 0, codes w / 0.25.
  const QuantizedMatrix pos = rtn({0.5f, 1.0f, 1.5f, 3.75f}, 1, "int4 g0 asym");
  EXPECT_EQ(pos.scales[0], 0.25f);
  EXPECT_EQ(pos.zeros[0], 0.0f);
  EXPECT_EQ(pos.codes, (std::vector<uint8_t>{2, 4, 6, 15}));
  // All weights < 0: widened to [−3.75, 0], zero = 15 (the anchor's would be 17 > qmax).
  const QuantizedMatrix neg = rtn({-0.5f, -3.75f}, 1, "int4 g0 asym");
  EXPECT_EQ(neg.zeros[0], 15.0f);
  EXPECT_EQ(neg.codes, (std::vector<uint8_t>{13, 0}));
  // A constant-zero group hits the 1e-8 scale floor and stays exact.
  const QuantizedMatrix zero = rtn({0.0f, 0.0f}, 1, "int2 g0 asym");
  EXPECT_EQ(zero.scales[0], 1e-8f);
  EXPECT_EQ(dequantize(zero), (std::vector<float>{0.0f, 0.0f}));
}

// The group {−a, a} with a = 0.5078125 (a bf16 value) at INT2: range 2a, qmax 3, −min / scale =
// 1.5 exactly with the correctly rounded scale, one ulp below 1.5 with the reciprocal's.
TEST(Rtn, ScaleDivisionDecidesHalfStepsAsItsToolDoes) {
  const std::vector<float> w = {-0.5078125f, 0.5078125f};
  const QuantSpec spec = parse_quant_spec("int2 g0 asym");
  const QuantizedMatrix exact = rtn_quantize(w.data(), 1, 2, spec, ScaleDivision::Exact);
  const QuantizedMatrix recip = rtn_quantize(w.data(), 1, 2, spec, ScaleDivision::Reciprocal);
  EXPECT_EQ(exact.scales[0], 1.015625f / 3.0f);
  EXPECT_EQ(recip.scales[0], 1.015625f * (1.0f / 3.0f));
  EXPECT_EQ(recip.scales[0], std::nextafter(exact.scales[0], 1.0f));
  // Exact: ±1.5 round half to even to ±2, zero 2 → codes 0 and 4 clamped to 3.
  EXPECT_EQ(exact.zeros[0], 2.0f);
  EXPECT_EQ(exact.codes, (std::vector<uint8_t>{0, 3}));
  // Reciprocal: ±1.4999999 → ±1, zero 1 → codes 0 and 2. −a comes back as −scale, not −2·scale.
  EXPECT_EQ(recip.zeros[0], 1.0f);
  EXPECT_EQ(recip.codes, (std::vector<uint8_t>{0, 2}));
  EXPECT_EQ(dequantize(recip)[0], -recip.scales[0]);
  EXPECT_EQ(dequantize(exact)[0], -2.0f * exact.scales[0]);
  // Symmetric scales divide the absmax the same two ways.
  const QuantSpec sym = parse_quant_spec("int4 g0 sym");
  EXPECT_EQ(rtn_quantize(w.data(), 1, 2, sym, ScaleDivision::Exact).scales[0], 0.5078125f / 7.0f);
  EXPECT_EQ(rtn_quantize(w.data(), 1, 2, sym, ScaleDivision::Reciprocal).scales[0], 0.5078125f * (1.0f / 7.0f));
}

TEST(Rtn, GroupsAreIndependentAndErrorIsHalfAStep) {
  const int64_t rows = 3, cols = 192;
  const std::vector<float> w = testing::normal_values(rows * cols, 7);
  for (const char* spec : {"int2 g32 asym", "int3 g64 sym", "int4 g128 asym", "int8 g0 sym"}) {
    const QuantizedMatrix m = rtn(w, rows, spec);
    const std::vector<float> back = dequantize(m);
    EXPECT_EQ(m.n_groups, m.spec.group_size ? (cols + m.spec.group_size - 1) / m.spec.group_size : 1);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t g = m.g_idx[size_t(c)];
        const float s = m.scales[size_t(r * m.n_groups + g)];
        const size_t i = size_t(r * cols + c);
        // Symmetric ranges clip the top code (+qmax, not qmax + 1): the error there may reach a step.
        const float bound = m.spec.symmetric ? s : 0.5f * s * (1 + 1e-5f);
        ASSERT_LE(std::fabs(w[i] - back[i]), bound) << spec << " " << r << "," << c;
      }
    }
    // Changing one group leaves every other group's codes untouched.
    std::vector<float> w2 = w;
    w2[0] = 40.0f;
    const QuantizedMatrix m2 = rtn(w2, rows, spec);
    const int64_t g = m.spec.group_size ? m.spec.group_size : cols;
    for (size_t i = size_t(g); i < w.size(); ++i) ASSERT_EQ(m2.codes[i], m.codes[i]) << spec;
  }
}

TEST(Rtn, Nf4GoesThroughTheBnbQuantizer) {
  std::vector<float> w(128);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(float(i));
  const QuantizedMatrix m = rtn(w, 1, "nf4");
  const QuantizedMatrix b = quantize_bnb4(w.data(), 1, 128, parse_quant_spec("nf4"));
  EXPECT_EQ(m.codes, b.codes);
  EXPECT_EQ(m.scales, b.scales);
  EXPECT_TRUE(m.zeros.empty());
}

}  // namespace
}  // namespace moeq
