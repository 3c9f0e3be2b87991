// `moeq tokenize`: the ids it prints and the raw int32 file it writes.
#include <sys/wait.h>

#include <cstdio>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "test_util.h"
#include "tokenizer_test_util.h"

namespace moeq {
namespace {

struct CommandResult {
  int status;
  std::string output;  // stdout and stderr
};

CommandResult run_moeq(const std::string& arguments) {
  const std::string command = fmt::format("{}/moeq {} 2>&1", MOEQ_BINARY_DIR, arguments);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  CommandResult run{0, {}};
  char buffer[4096];
  while (const size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) run.output.append(buffer, n);
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string quoted(const std::filesystem::path& path) { return fmt::format("'{}'", path.string()); }

TEST(TokenizeCommand, WritesWikiText2IdsEqualToReference) {
  const testing::ScratchDir dir("tokenize_cli");
  const auto model = testing::shared_dir() / "models/qwen3_moe";
  const auto out = dir.path() / "wiki.ids.int32";
  const CommandResult run = run_moeq(fmt::format("tokenize {} --file {} --out {}", quoted(model),
                                                 quoted(testing::shared_dir() / "data/eval/wikitext2/wiki.test.raw"),
                                                 quoted(out)));
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("416156 tokens"), std::string::npos) << run.output;
  EXPECT_TRUE(testing::read_file(out) == testing::read_file(model / "reference/wikitext2_test.ids.int32"));
}

TEST(TokenizeCommand, PrintsIdsAndCount) {
  const CommandResult run = run_moeq(fmt::format("tokenize {} --text 'Hello world'", quoted(testing::shared_dir() / "models/mixtral")));
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(run.output, "40 7423 1258\n3 tokens\n");  // tokenizer_cases.json: "Hello world"
}

TEST(TokenizeCommand, BadInputIsOneErrorLine) {
  const CommandResult missing = run_moeq("tokenize /nonexistent/model --text x");
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(missing.output, "moeq: error: /nonexistent/model: no such model folder\n");
  const CommandResult no_text = run_moeq(fmt::format("tokenize {}", quoted(testing::shared_dir() / "models/mixtral")));
  EXPECT_EQ(no_text.status, 1);
  EXPECT_NE(no_text.output.find("--text or --file"), std::string::npos) << no_text.output;
}

}  // namespace
}  // namespace moeq
