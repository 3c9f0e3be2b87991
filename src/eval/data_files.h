// Readers for the evaluation data formats (JSON lines, plain line lists, CSV), with errors that
// name the file, the line and the field.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace moeq {

// The whole file; throws moeq::Error when it is missing, unreadable or empty.
std::string read_data_file(const std::filesystem::path& path);

// Lines without their '\n' (a final empty line is not a line).
std::vector<std::string> read_lines(const std::filesystem::path& path);

// One parsed JSON object per non-empty line, with its 1-based line number.
struct JsonRecord {
  nlohmann::json value;
  int line = 0;
};
std::vector<JsonRecord> read_jsonl(const std::filesystem::path& path);

// Field access that fails with "FILE:LINE: field 'NAME' ..." instead of a JSON exception.
const nlohmann::json& json_field(const JsonRecord& r, std::string_view name,
                                 const std::filesystem::path& path);
std::string json_string(const JsonRecord& r, std::string_view name, const std::filesystem::path& path);

// RFC 4180 CSV (quoted fields may hold commas, doubled quotes and newlines), as the MMLU files use.
std::vector<std::vector<std::string>> read_csv(const std::filesystem::path& path);

}  // namespace moeq
