// Incremental decoding and batching give the same logits as one batch-1 prefill.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <omp.h>

#include "io/safetensors.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "test_util.h"

namespace moeq {
namespace {

constexpr float kDecodeTol = 1e-4f;

struct FixtureRun {
  std::unique_ptr<Model> model;
  std::vector<int32_t> ids;  // [2, seq]
  int64_t seq = 0;
};

FixtureRun open_fixture(const std::string& name) {
  const auto dir = testing::fixture_dir(name);
  FixtureRun f;
  f.model = Model::load(dir);
  Checkpoint ref = Checkpoint::open(dir / "reference.safetensors");
  const TensorView& t = ref.get("input_ids");
  f.seq = t.shape[1];
  f.ids.resize(size_t(t.numel()));
  std::memcpy(f.ids.data(), t.data, f.ids.size() * sizeof(int32_t));
  return f;
}

// Max |a - b| over n values.
float max_diff(const float* a, const float* b, int64_t n) {
  float d = 0.0f;
  for (int64_t i = 0; i < n; ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

class Decode : public ::testing::TestWithParam<std::string> {};

TEST_P(Decode, TokenByTokenWithCacheMatchesPrefill) {
  // Two threads whatever OMP_NUM_THREADS says: decode steps spread the experts over the threads,
  // a path a one-thread run never takes. (ctest runs each test in its own process.)
  omp_set_num_threads(2);
  FixtureRun f = open_fixture(GetParam());
  const int64_t v = f.model->vocab_size(), prompt = 5;
  std::span<const int32_t> row(f.ids.data(), size_t(f.seq));
  Tensor full = f.model->forward(row, 1, f.seq);

  auto cache = f.model->new_cache(1, f.seq);
  Tensor first = f.model->forward(row.first(prompt), 1, prompt, cache.get());
  EXPECT_LE(max_diff(first.ptr(), full.ptr(), prompt * v), kDecodeTol);
  for (int64_t t = prompt; t < f.seq; ++t) {
    Tensor step = f.model->forward(row.subspan(size_t(t), 1), 1, 1, cache.get());
    EXPECT_LE(max_diff(step.ptr(), full.ptr() + t * v, v), kDecodeTol) << "position " << t;
  }
  EXPECT_EQ(cache->length(), f.seq);
}

TEST_P(Decode, ForkedCacheContinuesEachCopyIndependently) {
  FixtureRun f = open_fixture(GetParam());
  const int64_t v = f.model->vocab_size(), prompt = 10;
  std::span<const int32_t> a(f.ids.data(), size_t(f.seq)), b(f.ids.data() + f.seq, size_t(f.seq));
  // Two sequences sharing the first `prompt` tokens of a, then going on with a's and b's tails.
  std::vector<int32_t> ab(a.begin(), a.end());
  std::copy(b.begin() + prompt, b.end(), ab.begin() + prompt);
  Tensor full_a = f.model->forward(a, 1, f.seq);
  Tensor full_ab = f.model->forward(ab, 1, f.seq);

  auto cache = f.model->new_cache(1, f.seq);
  f.model->forward(a.first(prompt), 1, prompt, cache.get());
  KVCache copy = *cache;  // fork by value
  KVCache both = cache->repeated(2);
  const int64_t tail = f.seq - prompt;
  Tensor ta = f.model->forward(a.subspan(prompt), 1, tail, cache.get());
  Tensor tab = f.model->forward(std::span<const int32_t>(ab).subspan(prompt), 1, tail, &copy);
  EXPECT_LE(max_diff(ta.ptr(), full_a.ptr() + prompt * v, tail * v), kDecodeTol);
  EXPECT_LE(max_diff(tab.ptr(), full_ab.ptr() + prompt * v, tail * v), kDecodeTol);

  std::vector<int32_t> tails(a.begin() + prompt, a.end());
  tails.insert(tails.end(), ab.begin() + prompt, ab.end());
  Tensor tb = f.model->forward(tails, 2, tail, &both);
  EXPECT_LE(max_diff(tb.ptr(), ta.ptr(), tail * v), kDecodeTol);
  EXPECT_LE(max_diff(tb.ptr() + tail * v, tab.ptr(), tail * v), kDecodeTol);
}

TEST_P(Decode, BatchOfTwoEqualsTwoSingleRuns) {
  FixtureRun f = open_fixture(GetParam());
  const int64_t n = f.seq * f.model->vocab_size();
  Tensor both = f.model->forward(f.ids, 2, f.seq);
  Tensor first = f.model->forward(std::span<const int32_t>(f.ids).first(size_t(f.seq)), 1, f.seq);
  Tensor second = f.model->forward(std::span<const int32_t>(f.ids).subspan(size_t(f.seq)), 1, f.seq);
  EXPECT_LE(max_diff(both.ptr(), first.ptr(), n), kDecodeTol);
  EXPECT_LE(max_diff(both.ptr() + n, second.ptr(), n), kDecodeTol);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Decode,
                         ::testing::Values("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3",
                                           "granitemoe", "phimoe"));

TEST(KVCache, RejectsOverflowingTheCache) {
  FixtureRun f = open_fixture("mixtral");
  auto cache = f.model->new_cache(1, 4);
  std::span<const int32_t> row(f.ids.data(), 5);
  EXPECT_THROW(f.model->forward(row, 1, 5, cache.get()), Error);
}

TEST(KVCache, TruncateRewindsToAnEarlierPosition) {
  FixtureRun f = open_fixture("qwen3_moe");
  const int64_t v = f.model->vocab_size();
  std::span<const int32_t> row(f.ids.data(), size_t(f.seq));
  auto cache = f.model->new_cache(1, f.seq);
  f.model->forward(row.first(8), 1, 8, cache.get());
  Tensor once = f.model->forward(row.subspan(8, 4), 1, 4, cache.get());
  cache->truncate(8);
  EXPECT_EQ(cache->length(), 8);
  Tensor again = f.model->forward(row.subspan(8, 4), 1, 4, cache.get());
  EXPECT_EQ(max_diff(once.ptr(), again.ptr(), 4 * v), 0.0f);
}

}  // namespace
}  // namespace moeq
