// Helpers shared by the tests: where ../shared is, and reading reference files.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace moeq::testing {

// The ../shared folder (MOEQ_SHARED, set by ctest). Its absence fails the test: the parity
// references are the point of these tests and must not be skipped quietly.
inline std::filesystem::path shared_dir() {
  const char* env = std::getenv("MOEQ_SHARED");
  std::filesystem::path dir = env ? env : std::filesystem::path(MOEQ_SOURCE_DIR) / ".." / "shared";
  if (!std::filesystem::exists(dir / "README.md"))
    throw std::runtime_error("shared folder not found at " + dir.string() + " (set MOEQ_SHARED)");
  return dir;
}

inline std::filesystem::path source_dir() { return MOEQ_SOURCE_DIR; }

}  // namespace moeq::testing
