// Helpers for the tokenizer tests: files, a scratch folder, reference ids.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "test_util.h"

namespace moeq::testing {

// Raw int32 little-endian, the layout of reference/*.ids.int32.
inline std::vector<int32_t> read_ids(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  std::vector<int32_t> ids(bytes.size() / 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    uint32_t value = 0;
    for (size_t b = 4; b-- > 0;) value = (value << 8) | static_cast<unsigned char>(bytes[4 * i + b]);
    ids[i] = static_cast<int32_t>(value);
  }
  return ids;
}

// A fresh folder under the system temp dir, removed with everything in it on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(std::string_view name)
      : path_(std::filesystem::temp_directory_path() /
              ("moeq_" + std::string(name) + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace moeq::testing
