// moeq tokenize MODEL (--text T | --file F) [--out ids.int32] [--add-special-tokens]
// Encodes text with MODEL's tokenizer.json and prints the ids, or writes them as raw int32
// little-endian (the layout of the reference .ids.int32 files).
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/tokenizer.h"

namespace moeq::cli {
namespace {

struct TokenizeOptions {
  std::filesystem::path model;  // a folder holding tokenizer.json, or the file itself
  std::string text;
  std::filesystem::path file;
  std::filesystem::path out;
  bool add_special_tokens = false;
};

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open file", path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_ids(const std::filesystem::path& path, const std::vector<int32_t>& ids) {
  write_file_atomically(path, [&](std::ostream& out) {
    for (const int32_t id : ids) {
      const auto value = static_cast<uint32_t>(id);
      const char bytes[4] = {char(value & 0xFF), char((value >> 8) & 0xFF), char((value >> 16) & 0xFF),
                             char((value >> 24) & 0xFF)};
      out.write(bytes, sizeof bytes);
    }
  });
}

void run_tokenize(const TokenizeOptions& options) {
  if (!std::filesystem::exists(options.model)) fail("{}: no such model folder", options.model.string());
  const std::filesystem::path json =
      std::filesystem::is_directory(options.model) ? options.model / "tokenizer.json" : options.model;
  const Tokenizer tokenizer = Tokenizer::load(json);
  const std::string text = options.file.empty() ? options.text : read_text(options.file);
  const std::vector<int32_t> ids = tokenizer.encode(text, options.add_special_tokens);
  if (!options.out.empty()) {
    write_ids(options.out, ids);
    fmt::print("{} tokens written to {}\n", ids.size(), options.out.string());
    return;
  }
  fmt::print("{}\n{} tokens\n", fmt::join(ids, " "), ids.size());
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* command = app.add_subcommand("tokenize", "Encode text with a model's tokenizer.json and print or save the ids");
  command->add_option("model", options->model, "Model folder holding tokenizer.json (or the file itself)")->required();
  CLI::Option* text = command->add_option("--text", options->text, "Text to encode");
  CLI::Option* file = command->add_option("--file", options->file, "UTF-8 file to encode, read whole");
  text->excludes(file);
  file->excludes(text);
  command->add_option("--out", options->out, "Write the ids here as raw int32 little-endian instead of printing them");
  command->add_flag("--add-special-tokens", options->add_special_tokens,
                    "Apply the post-processor (e.g. a BOS token), as transformers' add_special_tokens=True");
  command->callback([options, text, file] {
    if (text->count() == 0 && file->count() == 0) fail("tokenize: give --text or --file");
    run_tokenize(*options);
  });
}

}  // namespace moeq::cli
