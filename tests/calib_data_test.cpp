#include "calib/calib_data.h"

#include <set>

#include <gtest/gtest.h>

#include "core/error.h"

namespace moeq {
namespace {

std::vector<int32_t> counting_stream(int32_t n) {
  std::vector<int32_t> s(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) s[size_t(i)] = i;
  return s;
}

TEST(CalibData, DrawsDistinctAlignedWindowsReproducibly) {
  const auto stream = counting_stream(1000);  // 10 windows of 100, tail of 0
  CalibOptions opt{"corpus.txt", 6, 100, 42};
  const CalibSet a = draw_windows(stream, opt);
  ASSERT_EQ(a.ids.size(), 600u);
  std::set<int32_t> starts;
  for (int64_t s = 0; s < a.samples; ++s) {
    const int32_t first = a.ids[size_t(s * 100)];
    EXPECT_EQ(first % 100, 0) << "windows start on multiples of seqlen";
    for (int64_t t = 0; t < 100; ++t) EXPECT_EQ(a.ids[size_t(s * 100 + t)], first + t);
    starts.insert(first);
  }
  EXPECT_EQ(starts.size(), 6u) << "no window drawn twice";
  EXPECT_EQ(draw_windows(stream, opt).ids, a.ids) << "same seed, same draw";
  opt.seed = 43;
  EXPECT_NE(draw_windows(stream, opt).ids, a.ids);
}

TEST(CalibData, TooShortTextIsAnErrorNamingTheFile) {
  CalibOptions opt{"tiny.txt", 11, 100, 0};
  try {
    draw_windows(counting_stream(1000), opt);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tiny.txt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1100"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moeq
