// A compiled PCRE2 pattern searched in tensor names (recipe `name_regex`).
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace moeq::plan {

class NameRegex {
 public:
  // Throws moeq::Error "{where}: bad name_regex '{pattern}': {reason} at offset {n}".
  NameRegex(const std::string& pattern, std::string_view where);
  // True when the pattern occurs anywhere in `name` (anchor with ^...$ for a full match).
  bool search(std::string_view name) const;

 private:
  std::shared_ptr<void> code_;  // pcre2_code_8, freed with pcre2_code_free
};

// ^name$ with every regex metacharacter escaped: a pattern that matches exactly `name`.
std::string exact_name_pattern(std::string_view name);

}  // namespace moeq::plan
