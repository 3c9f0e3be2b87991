// Helpers shared by the tests: where ../shared is, reading reference files, whole files, raw
// tensor bytes, error messages.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"

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

// A tiny random model of ../shared/fixtures with its transformers reference outputs.
inline std::filesystem::path fixture_dir(std::string_view name) { return shared_dir() / "fixtures" / name; }
// A trained checkpoint of ../shared/models with its reference/ folder.
inline std::filesystem::path shared_model(std::string_view name) { return shared_dir() / "models" / name; }

// The trained demo model and calibration text that ship with the repository (scripts/demo.sh).
inline std::filesystem::path demo_model() { return source_dir() / "models/demo_mixtral"; }
inline std::filesystem::path demo_calib_text() { return source_dir() / "data/calib/demo_calib.txt"; }

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), std::streamsize(text.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// The bytes of v as a safetensors tensor stores them.
template <typename T>
std::vector<std::byte> bytes_of(const std::vector<T>& v) {
  std::vector<std::byte> out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// The message of the moeq::Error that `fn` throws ("" if none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace moeq::testing
