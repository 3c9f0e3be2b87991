// `moeq eval` end to end on the embedded demo model: the JSON it writes against the library's
// own perplexity and task numbers, and one-line errors for bad input.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "eval/lm_backend.h"
#include "eval/perplexity.h"
#include "eval/run_task.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "test_util.h"

namespace moeq {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int status = -1;
  std::string err;
};

class EvalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("moeq_eval_cli_{}", ::getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliRun run(const std::string& args) {
    const fs::path err = dir_ / "stderr.txt";
    std::string cmd = fmt::format("cd '{}' && '{}/moeq' eval {} > /dev/null 2> '{}'", testing::source_dir().string(),
                                  MOEQ_BINARY_DIR, args, err.string());
    int raw = std::system(cmd.c_str());
    std::ifstream in(err);
    std::stringstream text;
    text << in.rdbuf();
    return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, text.str()};
  }

  fs::path demo() const { return testing::demo_model(); }
  fs::path dir_;
};

TEST_F(EvalCli, JsonMatchesTheLibrary) {
  const fs::path text = dir_ / "text.txt", out = dir_ / "out.json";
  std::string body;
  for (int i = 0; i < 40; ++i) body += "The ship sailed at dawn, and the whale rose from the grey sea. ";
  std::ofstream(text) << body;
  CliRun r = run(fmt::format("'{}' --ppl '{}' --tasks copa,arc_easy --limit 3 --max-length 64 --json '{}'",
                             demo().string(), text.string(), out.string()));
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream in(out);
  nlohmann::json j = nlohmann::json::parse(in);

  auto model = Model::load(demo());
  Tokenizer tok = Tokenizer::load(demo() / "tokenizer.json");
  PerplexityResult ppl = perplexity(*model, tok.encode(body), {.window = 64, .windows_per_batch = 4});
  const nlohmann::json& p = j["ppl"][text.string()];
  EXPECT_NEAR(p["ppl"].get<double>(), ppl.ppl, 1e-9 * ppl.ppl);
  EXPECT_NEAR(p["nll_sum"].get<double>(), ppl.nll_sum, 1e-9 * ppl.nll_sum);
  EXPECT_EQ(p["windows"], ppl.windows);
  EXPECT_EQ(p["predicted"], ppl.predicted);
  EXPECT_EQ(p["tokens"], ppl.tokens);

  auto lm = make_model_backend(*model);
  TextEncoder encode = [&](std::string_view t) { return tok.encode(t); };
  for (std::string name : {"copa", "arc_easy"}) {
    Task task = load_task(name, {testing::shared_dir() / "data/eval", 3});
    TaskRun want = run_task(*lm, encode, task, {.max_length = 64, .eot_id = tok.eos_id()}, {});
    EXPECT_EQ(j["tasks"][name]["n"], 3);
    EXPECT_DOUBLE_EQ(j["tasks"][name]["acc"].get<double>(), want.result.acc) << name;
    EXPECT_EQ(j["tasks"][name].contains("acc_norm"), want.result.acc_norm.has_value()) << name;
  }
  EXPECT_GT(j["seconds"].get<double>(), 0.0);
  EXPECT_GT(j["tokens_per_second"].get<double>(), 0.0);
}

TEST_F(EvalCli, UnknownTask) {
  CliRun r = run(fmt::format("'{}' --tasks piqa,nope", demo().string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("moeq: error: --tasks: unknown task 'nope'"), std::string::npos) << r.err;
}

TEST_F(EvalCli, MissingDataFile) {
  CliRun r = run(fmt::format("'{}' --tasks copa --data-dir '{}'", demo().string(), dir_.string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("copa/val.jsonl: cannot open evaluation data file"), std::string::npos) << r.err;
}

TEST_F(EvalCli, EmptyOrShortPerplexityFile) {
  std::ofstream(dir_ / "empty.txt");
  CliRun r = run(fmt::format("'{}' --ppl '{}'", demo().string(), (dir_ / "empty.txt").string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("empty.txt: evaluation data file is empty"), std::string::npos) << r.err;
  std::ofstream(dir_ / "short.txt") << "Too short for a window.";
  r = run(fmt::format("'{}' --ppl '{}'", demo().string(), (dir_ / "short.txt").string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("short.txt: 7 tokens, fewer than one 512-token window"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace moeq
