// Weight formats: spec parsing, the traits table, GPTQ packing against AutoGPTQ's own packing
// loop, bitsandbytes NF4/FP4 and double quantization against published tables and hand-built
// blocks, and size accounting.
#include <bit>
#include <cmath>

#include <gtest/gtest.h>

#include "core/dtype.h"
#include "core/error.h"
#include "quant/algo/rtn.h"
#include "quant/formats/bnb4.h"
#include "quant/formats/gptq.h"
#include "quant/formats/size.h"
#include "quant/formats/traits.h"
#include "quant_test_util.h"

namespace moeq {
namespace {

std::vector<float> random_weights(int64_t n, uint32_t seed) { return testing::normal_values(n, seed, 0.02f); }

TEST(QuantSpec, ParsesAndPrintsCanonically) {
  for (const char* text : {"int4 g128 asym", "int8 g0 sym", "int3 g32 asym", "int2 g64 sym", "nf4 dq", "fp4", "nf4"}) {
    EXPECT_EQ(to_string(parse_quant_spec(text)), text);
    EXPECT_TRUE(parse_quant_spec(to_string(parse_quant_spec(text))) == parse_quant_spec(text));
  }
  EXPECT_FALSE(parse_quant_spec("int4 g128 sym") == parse_quant_spec("int4 g128 asym"));
  const QuantSpec s = parse_quant_spec("int4 sym");
  EXPECT_EQ(s.bits, 4);
  EXPECT_EQ(s.group_size, 128);
  EXPECT_TRUE(s.symmetric);
  EXPECT_FALSE(parse_quant_spec("nf4").double_quant);
  EXPECT_EQ(parse_quant_spec("nf4 dq").group_size, 64);
  EXPECT_THROW(parse_quant_spec("int5"), Error);
  EXPECT_THROW(parse_quant_spec("int4 g100"), Error);
  EXPECT_THROW(parse_quant_spec("nf4 sym"), Error);
  EXPECT_THROW(parse_quant_spec(""), Error);
}

TEST(FormatTraits, TableDescribesEveryFormat) {
  EXPECT_EQ(format_traits(FormatId::Int3).bits, 3);
  EXPECT_EQ(format_traits(FormatId::Int3).block_bytes, 12);
  EXPECT_DOUBLE_EQ(format_traits(FormatId::Int3).payload_bits_per_weight(), 3.0);
  EXPECT_DOUBLE_EQ(format_traits(FormatId::NF4).payload_bits_per_weight(), 4.0);
  EXPECT_EQ(format_traits(FormatId::NF4).block_values, 64);
  EXPECT_EQ(format_traits(parse_quant_spec("int8 g0 sym")).name, "int8");
  EXPECT_EQ(format_traits(parse_quant_spec("fp4")).name, "fp4");
  for (int i = 0; i < kFormatCount; ++i) {  // pack/unpack round-trips every code value
    const FormatTraits& t = format_traits(FormatId(i));
    std::vector<uint8_t> codes(size_t(t.block_values)), back(codes.size());
    for (size_t v = 0; v < codes.size(); ++v) codes[v] = uint8_t((v * 7 + 3) % (1u << t.bits));
    std::vector<uint8_t> block(size_t(t.block_bytes));
    t.pack_block(codes.data(), block.data());
    t.unpack_block(block.data(), back.data());
    EXPECT_EQ(back, codes) << t.name;
  }
}

// AutoGPTQ's qlinear pack loop for one column of 32 codes, transcribed from its 3-bit branch.
std::array<uint32_t, 3> autogptq_pack3(const std::array<uint32_t, 32>& q) {
  std::array<uint32_t, 3> w{};
  int i = 0;
  for (int j = i; j < i + 10; ++j) w[0] |= q[size_t(j)] << (3 * (j - i));
  i += 10;
  w[0] |= q[size_t(i)] << 30;
  w[1] |= (q[size_t(i)] >> 2) & 1;
  i += 1;
  for (int j = i; j < i + 10; ++j) w[1] |= q[size_t(j)] << (3 * (j - i) + 1);
  i += 10;
  w[1] |= q[size_t(i)] << 31;
  w[2] |= (q[size_t(i)] >> 1) & 0x3;
  i += 1;
  for (int j = i; j < i + 10; ++j) w[2] |= q[size_t(j)] << (3 * (j - i) + 2);
  return w;
}

QuantizedMatrix rtn(const std::vector<float>& w, int64_t rows, int64_t cols, const char* spec) {
  return rtn_quantize(w.data(), rows, cols, parse_quant_spec(spec));
}

TEST(Gptq, ThreeBitInterleavingMatchesAutoGptq) {
  const int64_t rows = 64, cols = 64;
  const QuantizedMatrix m = rtn(random_weights(rows * cols, 1), rows, cols, "int3 g32 asym");
  const GptqTensors g = pack_gptq(m);
  ASSERT_EQ(g.qweight_rows(), cols * 3 / 32);
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t k = 0; k < cols / 32; ++k) {
      std::array<uint32_t, 32> q{};
      for (size_t v = 0; v < 32; ++v) q[v] = m.codes[size_t(o * cols + k * 32) + v];
      const std::array<uint32_t, 3> expect = autogptq_pack3(q);
      for (int j = 0; j < 3; ++j) ASSERT_EQ(uint32_t(g.qweight[size_t((k * 3 + j) * rows + o)]), expect[size_t(j)]);
    }
  }
}

TEST(Gptq, FourBitWordsAndZerosConventions) {
  const int64_t rows = 32, cols = 64;
  const QuantizedMatrix m = rtn(random_weights(rows * cols, 2), rows, cols, "int4 g32 asym");
  const GptqTensors g = pack_gptq(m);
  uint32_t word = 0;  // input rows 8..15 of output 5: code j in bits 4j..4j+3
  for (int j = 0; j < 8; ++j) word |= uint32_t(m.codes[size_t(5 * cols + 8 + j)]) << (4 * j);
  EXPECT_EQ(uint32_t(g.qweight[size_t(1 * rows + 5)]), word);
  uint32_t zword = 0;  // group 1, outputs 0..7, along the output dimension
  for (int j = 0; j < 8; ++j) zword |= uint32_t(m.zeros[size_t(j * m.n_groups + 1)]) << (4 * j);
  EXPECT_EQ(uint32_t(g.qzeros[size_t(1 * g.qzeros_cols())]), zword);
  EXPECT_EQ(f16_to_f32(g.scales[size_t(1 * rows + 3)]), f16_to_f32(f32_to_f16(m.scales[size_t(3 * m.n_groups + 1)])));

  // v1 stores zero − 1 (sym int4: zero 8 → 7); a zero of 0 cannot be stored that way.
  const QuantizedMatrix s = rtn(random_weights(rows * cols, 3), rows, cols, "int4 g32 sym");
  const GptqTensors v1 = pack_gptq(s, GptqZeros::MinusOne);
  EXPECT_EQ(uint32_t(v1.qzeros[0]), 0x77777777u);
  EXPECT_EQ(unpack_gptq(v1).zeros, s.zeros);
  std::vector<float> positive(size_t(rows * cols), 0.5f);
  positive[0] = 1.0f;
  const QuantizedMatrix p = rtn(positive, rows, cols, "int4 g32 asym");
  ASSERT_EQ(p.zeros[0], 0.0f);
  EXPECT_NO_THROW(pack_gptq(p));
  EXPECT_THROW(pack_gptq(p, GptqZeros::MinusOne), Error);
  QuantizedMatrix unwidened = p;  // a one-signed group's zero from an unwidened range: −2
  unwidened.zeros[size_t(3 * p.n_groups + 1)] = -2.0f;
  try {
    pack_gptq(unwidened);
    ADD_FAILURE() << "a negative zero point was packed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 3, group 1"), std::string::npos) << e.what();
  }
}

TEST(Gptq, UnpackInvertsPackForEveryWidthAndShape) {
  struct Case { const char* spec; int64_t rows, cols; };
  for (const Case& c : {Case{"int2 g64 asym", 40, 192}, Case{"int3 g128 asym", 37, 448}, Case{"int4 g0 sym", 13, 100},
                        Case{"int8 g0 sym", 19, 128}, Case{"int3 g32 sym", 96, 96}}) {
    QuantizedMatrix m = rtn(random_weights(c.rows * c.cols, 4), c.rows, c.cols, c.spec);
    if (m.spec.group_size != 0) std::reverse(m.g_idx.begin(), m.g_idx.end());  // an act-order permutation
    const QuantizedMatrix back = unpack_gptq(pack_gptq(m));
    EXPECT_EQ(back.codes, m.codes) << c.spec;
    EXPECT_EQ(back.zeros, m.zeros) << c.spec;
    EXPECT_EQ(back.g_idx, m.g_idx) << c.spec;
    for (size_t i = 0; i < m.scales.size(); ++i) ASSERT_EQ(back.scales[i], f16_to_f32(f32_to_f16(m.scales[i]))) << c.spec;
    EXPECT_EQ(pack_gptq(back).qweight, pack_gptq(m).qweight);
  }
  GptqTensors bad = pack_gptq(rtn(random_weights(32 * 64, 5), 32, 64, "int4 g32 asym"));
  bad.scales.pop_back();
  EXPECT_THROW(unpack_gptq(bad), Error);
}

TEST(Bnb4, CodeTablesAreBitsandbytes) {
  const auto& nf4 = nf4_code_table();
  EXPECT_EQ(nf4[0], -1.0f);
  EXPECT_EQ(nf4[7], 0.0f);
  EXPECT_EQ(nf4[15], 1.0f);
  EXPECT_EQ(nf4[8], 0.07958029955625534f);
  EXPECT_EQ(nf4[1], -0.6961928009986877f);
  for (int i = 1; i < 16; ++i) EXPECT_LT(nf4[size_t(i - 1)], nf4[size_t(i)]);
  const auto& fp4 = fp4_code_table();  // bnb: [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, ...] / 12
  EXPECT_EQ(fp4[1], 0.0625f / 12.0f);
  EXPECT_EQ(fp4[3], 1.0f);
  EXPECT_EQ(fp4[2], 8.0f / 12.0f);
  EXPECT_EQ(fp4[6], 2.0f / 12.0f);
  EXPECT_EQ(fp4[11], -1.0f);
  EXPECT_TRUE(std::signbit(fp4[8]));
}

TEST(Bnb4, QuantizesHandBuiltBlockToNearestCode) {
  // One row of 64: w = 2 · nf4[i % 16], so absmax = 2 and every weight is exactly a code.
  std::vector<float> w(64);
  for (int i = 0; i < 64; ++i) w[size_t(i)] = 2.0f * nf4_code_table()[size_t(i % 16)];
  w[5] = 2.0f * 0.03f;   // nearer to 0 (code 7) than to 0.0796 (code 8)
  w[6] = 2.0f * 0.05f;   // nearer to 0.0796 (code 8)
  w[9] = -2.0f * 0.8f;   // between −0.723 and −1: nearer −0.723 (code 1)
  const QuantizedMatrix m = quantize_bnb4(w.data(), 1, 64, parse_quant_spec("nf4"));
  EXPECT_EQ(m.scales[0], 2.0f);
  for (int i = 0; i < 64; ++i) {
    const int expect = i == 5 ? 7 : i == 6 ? 8 : i == 9 ? 1 : i % 16;
    EXPECT_EQ(m.codes[size_t(i)], expect) << i;
  }
  const Bnb4Tensors t = pack_bnb4(m);  // first code of each pair in the high nibble
  EXPECT_EQ(t.weight[0], 0x01);
  EXPECT_EQ(t.weight[1], 0x23);
  EXPECT_EQ(t.weight[7], 0xEF);
  EXPECT_EQ(t.absmax, std::vector<float>{2.0f});
  EXPECT_EQ(unpack_bnb4(t).codes, m.codes);
  // FP4: 0.3·absmax is nearest to 0.3333 (code 4: e2m1 value 4/12); −0.7 nearest −0.6667 (code 10).
  std::vector<float> f(64, 0.0f);
  f[0] = 1.0f;
  f[1] = 0.3f;
  f[2] = -0.7f;
  const QuantizedMatrix q = quantize_bnb4(f.data(), 1, 64, parse_quant_spec("fp4"));
  EXPECT_EQ(q.codes[0], 3);
  EXPECT_EQ(q.codes[1], 4);
  EXPECT_EQ(q.codes[2], 10);
  EXPECT_EQ(q.codes[3], 0);
}

TEST(Bnb4, DynamicMapMatchesTorchBuiltEntries) {
  const std::vector<float> map = create_dynamic_map();
  ASSERT_EQ(map.size(), 256u);
  // Bit patterns from bitsandbytes' create_dynamic_map() run under torch (entries on which
  // torch's linspace implementations agree).
  const std::vector<std::pair<int, uint32_t>> known = {
      {0, 0xbf7e3333}, {2, 0xbf770000}, {7, 0xbf650000}, {63, 0xbddb3334}, {64, 0xbdc9eb85},
      {100, 0xbbf4bc6a}, {126, 0xb513a3b7}, {127, 0x00000000}, {128, 0x3513a3b7}, {129, 0x365a1a94},
      {190, 0x3dc9eb85}, {254, 0x3f7e3333}, {255, 0x3f800000}};
  for (const auto& [i, bits] : known) EXPECT_EQ(std::bit_cast<uint32_t>(map[size_t(i)]), bits) << i;
  for (size_t i = 1; i < 256; ++i) EXPECT_LT(map[i - 1], map[i]);
  for (size_t i = 0; i < 127; ++i) EXPECT_EQ(map[i], -map[254 - i]);
}

TEST(Bnb4, DoubleQuantizationOfHandBuiltAbsmax) {
  // Four blocks with absmax 1, 2, 3, 6: offset 3, centered −2, −1, 0, 3, nested absmax 3,
  // normalized −2/3, −1/3, 0, 1 → nearest dynamic-map entries 23 (−0.6695), 47 (−0.3320), 127, 255.
  std::vector<float> w(256, 0.0f);
  const float amax[4] = {1.0f, 2.0f, 3.0f, 6.0f};
  for (int b = 0; b < 4; ++b) w[size_t(b * 64 + 3)] = -amax[b];
  const QuantizedMatrix m = quantize_bnb4(w.data(), 2, 128, parse_quant_spec("nf4 dq"));
  const Bnb4Tensors t = pack_bnb4(m);
  EXPECT_TRUE(t.absmax.empty());
  EXPECT_EQ(t.offset, 3.0f);
  EXPECT_EQ(t.nested_absmax, std::vector<float>{3.0f});
  EXPECT_EQ(t.absmax_q, (std::vector<uint8_t>{23, 47, 127, 255}));
  EXPECT_EQ(t.nested_quant_map, create_dynamic_map());
  EXPECT_EQ(t.quant_map.size(), 16u);
  EXPECT_EQ(bnb4_block_absmax(t, 3), 6.0f);  // 1.0 · 3 + 3
  EXPECT_EQ(bnb4_block_absmax(t, 2), 3.0f);
  EXPECT_NEAR(bnb4_block_absmax(t, 0), 1.0f, 0.0141f * 3 / 2);
  EXPECT_EQ(m.codes[3], 0);  // −absmax → NF4 −1.0
}

TEST(QuantSize, CountsEveryStoredTensor) {
  // int4 g128 on [448 out, 256 in]: qweight 256·4/8·448, qzeros 2·(448/32·4)·4, scales 2·448·2, g_idx 256·4.
  const QuantSize s = quant_size(parse_quant_spec("int4 g128 asym"), 448, 256);
  EXPECT_EQ(s.payload, 256 * 448 / 2);
  EXPECT_EQ(s.zeros, 2 * 56 * 4);
  EXPECT_EQ(s.scales, 2 * 448 * 2);
  EXPECT_EQ(s.index, 256 * 4);
  EXPECT_NEAR(s.bits_per_weight(448 * 256), 4.0 + (448.0 + 1792.0 + 1024.0) * 8 / (448 * 256), 1e-12);
  const QuantizedMatrix m = rtn(random_weights(448 * 256, 6), 448, 256, "int3 g64 sym");
  const GptqTensors g = pack_gptq(m);
  const QuantSize s3 = quant_size(m.spec, 448, 256);
  EXPECT_EQ(s3.payload, int64_t(g.qweight.size() * 4));
  EXPECT_EQ(s3.zeros, int64_t(g.qzeros.size() * 4));
  EXPECT_EQ(s3.scales, int64_t(g.scales.size() * 2));
  // nf4 dq on [256, 448]: 1792 blocks → 1792 uint8 + 7 nested fp32 + offset, plus both maps.
  const QuantSize n = quant_size(parse_quant_spec("nf4 dq"), 256, 448);
  EXPECT_EQ(n.payload, 256 * 448 / 2);
  EXPECT_EQ(n.scales, 1792 + 7 * 4 + 4);
  EXPECT_EQ(n.tables, 16 * 4 + 256 * 4);
  EXPECT_EQ(quant_size(parse_quant_spec("nf4"), 256, 448).scales, 1792 * 4);
  EXPECT_THROW(quant_size(parse_quant_spec("nf4"), 4, 100), Error);
}

}  // namespace
}  // namespace moeq
