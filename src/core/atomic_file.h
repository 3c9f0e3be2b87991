// Outputs are never half-written: write to a temporary sibling, then rename over the target.
#pragma once

#include <filesystem>
#include <functional>
#include <ostream>
#include <string_view>

namespace moeq {

// Calls write(stream) on a temporary file next to `path`, flushes, and renames it to `path`.
// On any exception the temporary is removed and the exception propagates.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write);

void write_text_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace moeq
