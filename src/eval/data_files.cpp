#include "eval/data_files.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace moeq {

std::string read_data_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open evaluation data file", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) fail("{}: evaluation data file is empty", path.string());
  return std::move(text).str();
}

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::string text = read_data_file(path);
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    lines.emplace_back(text, pos, end - pos);
    pos = end + 1;
  }
  return lines;
}

std::vector<JsonRecord> read_jsonl(const std::filesystem::path& path) {
  std::vector<JsonRecord> records;
  std::vector<std::string> lines = read_lines(path);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json value = nlohmann::json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded() || !value.is_object())
      fail("{}:{}: line is not a JSON object", path.string(), i + 1);
    records.push_back({std::move(value), int(i + 1)});
  }
  if (records.empty()) fail("{}: no JSON records", path.string());
  return records;
}

const nlohmann::json& json_field(const JsonRecord& r, std::string_view name,
                                 const std::filesystem::path& path) {
  auto it = r.value.find(name);
  if (it == r.value.end()) fail("{}:{}: field '{}' is missing", path.string(), r.line, name);
  return *it;
}

std::string json_string(const JsonRecord& r, std::string_view name, const std::filesystem::path& path) {
  const nlohmann::json& v = json_field(r, name, path);
  if (!v.is_string()) fail("{}:{}: field '{}' is not a string", path.string(), r.line, name);
  return v.get<std::string>();
}

std::vector<std::vector<std::string>> read_csv(const std::filesystem::path& path) {
  std::string text = read_data_file(path);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  auto end_row = [&] {
    row.push_back(std::move(field));
    field.clear();
    rows.push_back(std::move(row));
    row.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c != '"') field.push_back(c);
      else if (i + 1 < text.size() && text[i + 1] == '"') field.push_back(text[++i]);
      else quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      end_row();
    } else if (c != '\r') {
      field.push_back(c);
    }
  }
  if (quoted) fail("{}: unterminated quoted field at end of file", path.string());
  if (!field.empty() || !row.empty()) end_row();
  return rows;
}

}  // namespace moeq
