// Errors in two tiers (see docs/ARCHITECTURE.md):
//  - moeq::Error for bad input at a boundary (files, configs, recipes, CLI). The message names
//    the file and the field or tensor, so one line tells the user what to fix. The CLI prints
//    it and exits non-zero; library code never calls exit().
//  - MOEQ_ASSERT for internal invariants on hot paths: checked in debug and sanitizer builds.
#pragma once

#include <cassert>
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace moeq {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws moeq::Error with a fmt-formatted message, e.g.
//   fail("{}: tensor '{}' has dtype {}, expected BF16", path, name, dtype);
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace moeq

#define MOEQ_ASSERT(cond) assert(cond)
