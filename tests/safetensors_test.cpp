// Safetensors reading and writing: the real trained checkpoint against facts read by an
// independent parser, round trips, sharded checkpoints, and every kind of broken file.
#include "io/safetensors.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"

namespace moeq {
namespace {

namespace fs = std::filesystem;

// A fresh folder per test, removed afterwards.
class SafetensorsFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("moeq_st_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes the raw layout by hand: length prefix, header text, data bytes.
  fs::path write_raw(const std::string& file, const std::string& header, size_t data_bytes,
                     std::optional<uint64_t> declared_len = std::nullopt) const {
    const fs::path path = dir_ / file;
    std::ofstream out(path, std::ios::binary);
    const uint64_t len = declared_len.value_or(header.size());
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << header << std::string(data_bytes, '\0');
    return path;
  }

  // Opening `path` must fail with one message naming the file and each of `parts`.
  static void expect_open_error(const fs::path& path, const std::vector<std::string>& parts) {
    try {
      Checkpoint::open(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path.filename().string()), std::string::npos) << msg;
      for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << "message should be one line: " << msg;
    }
  }

  fs::path dir_;
};

using testing::bytes_of;

std::vector<std::byte> bf16_bytes(const std::vector<float>& v) {
  std::vector<uint16_t> h;
  for (float f : v) h.push_back(f32_to_bf16(f));
  return bytes_of(h);
}

// Facts about shared/models/mixtral/model.safetensors computed with python's json + struct
// (independent of this parser): raw bf16 bits at the header's offsets, sums in float64.
TEST(Safetensors, TrainedMixtralMatchesIndependentParser) {
  const Checkpoint ck = Checkpoint::open(testing::shared_model("mixtral"));
  EXPECT_EQ(ck.tensors().size(), 251u);
  int64_t numel = 0;
  for (const auto& [name, v] : ck.tensors()) {
    EXPECT_EQ(v.dtype, DType::BF16) << name;
    numel += v.numel();
  }
  EXPECT_EQ(numel, 27808000);
  EXPECT_EQ(ck.metadata().at("format"), "pt");

  struct Probe {
    const char* name;
    std::vector<int64_t> shape;
    std::vector<std::pair<int64_t, uint16_t>> bits;
    double sum;
  };
  const Probe probes[] = {
      {"model.layers.3.block_sparse_moe.gate.weight", {8, 256}, {{0, 0xbdc3}, {1, 0xbdeb}, {2047, 0xbca2}}, -9.471784591674805},
      {"model.norm.weight", {256}, {{0, 0x3fd9}, {17, 0x3fd8}, {255, 0x3fd9}}, 432.140625},
      {"model.layers.7.block_sparse_moe.experts.5.w2.weight", {256, 448}, {{0, 0x3d1b}, {1000, 0x3d65}, {114687, 0x3caf}}, -15.484486816450953},
  };
  for (const Probe& p : probes) {
    const TensorView& v = ck.get(p.name, p.shape);
    const Tensor t = v.to_f32();
    for (auto [i, bits] : p.bits) {
      uint16_t raw;
      std::memcpy(&raw, v.data + 2 * i, 2);
      EXPECT_EQ(raw, bits) << p.name << "[" << i << "]";
      EXPECT_EQ(t.data[size_t(i)], bf16_to_f32(bits)) << p.name << "[" << i << "]";
    }
    double sum = 0;
    for (float x : t.data) sum += x;
    EXPECT_NEAR(sum, p.sum, 1e-9 * std::max(1.0, std::abs(p.sum))) << p.name;
  }
  EXPECT_TRUE(scan_nonfinite(ck).empty());
}

TEST_F(SafetensorsFiles, RoundTripEveryDtype) {
  const std::vector<TensorToWrite> tensors = {
      {"a.bf16", DType::BF16, {2, 3}, bf16_bytes({1, -2, 0.5f, 3.25f, -0.125f, 1e30f})},
      {"b.f16", DType::F16, {3}, bytes_of(std::vector<uint16_t>{f32_to_f16(1.5f), f32_to_f16(-7), f32_to_f16(65504)})},
      {"c.f32", DType::F32, {1, 2}, bytes_of(std::vector<float>{3.14159f, -1e-20f})},
      {"d.i8", DType::I8, {3}, bytes_of(std::vector<int8_t>{-128, 0, 127})},
      {"e.u8", DType::U8, {1}, bytes_of(std::vector<uint8_t>{255})},
      {"f.i32", DType::I32, {2}, bytes_of(std::vector<int32_t>{-5, 1 << 30})},
      {"g.i64", DType::I64, {}, bytes_of(std::vector<int64_t>{int64_t(1) << 40})},
      {"h.empty", DType::F32, {0, 4}, {}},
  };
  const fs::path path = dir_ / "rt.safetensors";
  write_safetensors(path, tensors, {{"format", "pt"}, {"moeq", "test"}});

  // Header per spec: length prefix, '{' first, padded with spaces to a multiple of 8 bytes.
  std::ifstream in(path, std::ios::binary);
  uint64_t len = 0;
  in.read(reinterpret_cast<char*>(&len), 8);
  std::string header(len, '\0');
  in.read(header.data(), std::streamsize(len));
  EXPECT_EQ(len % 8, 0u);
  EXPECT_EQ(header.front(), '{');
  EXPECT_EQ(header.substr(header.find_last_of('}') + 1), std::string(len - 1 - header.find_last_of('}'), ' '));

  const Checkpoint ck = Checkpoint::open(path);
  ASSERT_EQ(ck.tensors().size(), tensors.size());
  EXPECT_EQ(ck.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"moeq", "test"}}));
  for (const TensorToWrite& t : tensors) {
    const TensorView& v = ck.get(t.name);
    EXPECT_EQ(v.dtype, t.dtype) << t.name;
    EXPECT_EQ(v.shape, t.shape) << t.name;
    ASSERT_EQ(v.nbytes, t.bytes.size()) << t.name;
    EXPECT_TRUE(std::equal(t.bytes.begin(), t.bytes.end(), v.data)) << t.name;
    // Widest-first layout keeps every tensor aligned to its element size.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % dtype_size(v.dtype), 0u) << t.name;
  }
  EXPECT_EQ(ck.get("a.bf16").to_f32().data, (std::vector<float>{1, -2, 0.5f, 3.25f, -0.125f, bf16_to_f32(f32_to_bf16(1e30f))}));
  EXPECT_EQ(ck.get("b.f16").to_f32().data, (std::vector<float>{1.5f, -7, 65504}));
  EXPECT_EQ(ck.get("c.f32").to_f32().data, (std::vector<float>{3.14159f, -1e-20f}));
  EXPECT_EQ(ck.get("h.empty").to_f32().shape, (std::vector<int64_t>{0, 4}));
}

TEST_F(SafetensorsFiles, LookupErrorsNameTensor) {
  const fs::path path = dir_ / "x.safetensors";
  write_safetensors(path, {{"w", DType::I32, {2}, bytes_of(std::vector<int32_t>{1, 2})}});
  const Checkpoint ck = Checkpoint::open(path);
  EXPECT_TRUE(ck.contains("w"));
  EXPECT_FALSE(ck.contains("v"));
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] { ck.get("v"); }), path.string() + ": missing tensor 'v'");
  EXPECT_EQ(message([&] { ck.get("w", {3}); }), path.string() + ": tensor 'w' has shape [2], expected [3]");
  EXPECT_EQ(message([&] { ck.get("w").to_f32(); }), path.string() + ": tensor 'w' has dtype I32, which does not convert to F32");
  EXPECT_EQ(message([&] { write_safetensors(dir_ / "y.safetensors", {{"w", DType::F32, {2}, {}}}); }),
            (dir_ / "y.safetensors").string() + ": tensor 'w' has 0 bytes, but F32 of 2 elements needs 8");
  EXPECT_FALSE(fs::exists(dir_ / "y.safetensors"));
}

TEST_F(SafetensorsFiles, BrokenFilesNameFileAndField) {
  const std::string ok_entry = R"("w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]})";
  {
    std::ofstream(dir_ / "short.safetensors") << "abc";
    expect_open_error(dir_ / "short.safetensors", {"3 bytes", "shorter than"});
  }
  expect_open_error(write_raw("pastend.safetensors", "{" + ok_entry + "}", 8, 1 << 20), {"header length 1048576", "past the end"});
  expect_open_error(write_raw("notjson.safetensors", "{\"w\": [1,", 0), {"not valid JSON"});
  expect_open_error(write_raw("array.safetensors", "[1,2]", 0), {"must be a JSON object"});
  expect_open_error(write_raw("nodtype.safetensors", R"({"w":{"shape":[2],"data_offsets":[0,4]}})", 4), {"'w'", "'dtype'"});
  expect_open_error(write_raw("noshape.safetensors", R"({"w":{"dtype":"F16","data_offsets":[0,4]}})", 4), {"'w'", "'shape'"});
  expect_open_error(write_raw("nooffsets.safetensors", R"({"w":{"dtype":"F16","shape":[2]}})", 4), {"'w'", "'data_offsets'"});
  expect_open_error(write_raw("baddtype.safetensors", R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,4]}})", 4), {"'w'", "unknown dtype \"Q4\""});
  expect_open_error(write_raw("negshape.safetensors", R"({"w":{"dtype":"F16","shape":[-2],"data_offsets":[0,4]}})", 4), {"'w'", "'shape'"});
  expect_open_error(write_raw("range.safetensors", "{" + ok_entry + "}", 6), {"'w'", "data_offsets", "[0, 8] out of range"});
  expect_open_error(write_raw("reversed.safetensors", R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}})", 8), {"'w'", "data_offsets"});
  expect_open_error(write_raw("length.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), {"'w'", "span 8 bytes", "[3]"});
  expect_open_error(write_raw("huge.safetensors", R"({"w":{"dtype":"I64","shape":[4611686018427387904, 2],"data_offsets":[0,8]}})", 8), {"'w'", "overflows"});
  expect_open_error(write_raw("overlap.safetensors", "{" + ok_entry + R"(,"v":{"dtype":"U8","shape":[2],"data_offsets":[7,9]}})", 9), {"'w'", "'v'", "overlap"});
  expect_open_error(write_raw("meta.safetensors", R"({"__metadata__":{"n":3}})", 0), {"__metadata__.n"});
  expect_open_error(dir_ / "absent.safetensors", {"no such file"});
}

// Splits the mixtral fixture into two shards + index, as transformers' save_pretrained would.
TEST_F(SafetensorsFiles, ShardedCheckpointEqualsSingleFile) {
  const Checkpoint whole = Checkpoint::open(testing::fixture_dir("mixtral") / "model.safetensors");
  std::vector<TensorToWrite> shard[2];
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  int i = 0;
  for (const auto& [name, v] : whole.tensors()) {
    const int s = i++ % 2;
    shard[s].push_back({name, v.dtype, v.shape, std::vector<std::byte>(v.data, v.data + v.nbytes)});
    index["weight_map"][name] = fmt::format("model-{:05d}-of-00002.safetensors", s + 1);
  }
  for (int s = 0; s < 2; ++s)
    write_safetensors(dir_ / fmt::format("model-{:05d}-of-00002.safetensors", s + 1), shard[s], {{"format", "pt"}});
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump(1);

  const Checkpoint sharded = Checkpoint::open(dir_);
  ASSERT_EQ(sharded.tensors().size(), whole.tensors().size());
  for (const auto& [name, v] : whole.tensors()) {
    const TensorView& s = sharded.get(name, v.shape);
    EXPECT_EQ(s.dtype, v.dtype);
    ASSERT_EQ(s.nbytes, v.nbytes);
    EXPECT_EQ(std::memcmp(s.data, v.data, v.nbytes), 0) << name;
  }
  EXPECT_EQ(sharded.get("model.norm.weight").file.filename(), "model-00002-of-00002.safetensors");

  // The index names a tensor its shard lacks, then a shard file that is not there.
  index["weight_map"]["model.extra.weight"] = "model-00001-of-00002.safetensors";
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump(1);
  expect_open_error(dir_ / "model.safetensors.index.json", {"'model.extra.weight'", "model-00001-of-00002.safetensors", "does not contain"});
  index["weight_map"]["model.extra.weight"] = "model-00003-of-00002.safetensors";
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump(1);
  expect_open_error(dir_ / "model.safetensors.index.json", {"'model.extra.weight'", "model-00003-of-00002.safetensors", "does not exist"});
}

TEST_F(SafetensorsFiles, NonfiniteScanFindsExactlyTheBadTensors) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> big(10000, 0.25f);
  big[9999] = nan;  // past the first scan block
  const fs::path path = dir_ / "nf.safetensors";
  write_safetensors(path, {
      {"clean.bf16", DType::BF16, {4}, bf16_bytes({3.3895e38f, -3.3895e38f, 0, -0.0f})},  // ±bf16 max
      {"nan.bf16", DType::BF16, {10000}, bf16_bytes(big)},
      {"inf.f16", DType::F16, {2}, bytes_of(std::vector<uint16_t>{0x3c00, 0xfc00})},
      {"clean.f16", DType::F16, {1}, bytes_of(std::vector<uint16_t>{0x7bff})},  // f16 max
      {"inf.f32", DType::F32, {2}, bytes_of(std::vector<float>{1, -inf})},
      {"int.i32", DType::I32, {1}, bytes_of(std::vector<int32_t>{-1})},  // all ones, but not a float
  });
  const Checkpoint ck = Checkpoint::open(path);
  EXPECT_EQ(scan_nonfinite(ck), (std::vector<std::string>{"inf.f16", "inf.f32", "nan.bf16"}));
  ::testing::internal::CaptureStderr();
  warn_nonfinite(ck);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("tensor 'nan.bf16' contains NaN or Inf"), std::string::npos) << err;
  EXPECT_NE(err.find(path.string()), std::string::npos) << err;
}

}  // namespace
}  // namespace moeq
