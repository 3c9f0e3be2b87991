// Each `moeq` subcommand lives in its own cmd_*.cpp and registers itself on the app here.
#pragma once

#include <filesystem>

#include <CLI/CLI.hpp>

namespace moeq::cli {

// Adds the subcommand and its options to `app`; the callback runs the command and throws
// moeq::Error on bad input (main() turns it into one line on stderr and exit code 1).
void add_version_command(CLI::App& app);
void add_info_command(CLI::App& app);  // moeq info MODEL [--json]
void add_tokenize_command(CLI::App& app);
void add_quantize_command(CLI::App& app);  // moeq quantize MODEL --recipe R --out DIR
void add_generate_command(CLI::App& app);  // moeq generate MODEL --prompt-ids 1,2,3 -n N
void add_eval_command(CLI::App& app);  // moeq eval MODEL [--ppl FILE ...] [--tasks LIST] [--json OUT]
void add_bench_command(CLI::App& app);  // moeq bench MODEL [--grid paper|FILE] --out DIR --calib FILE

// ../shared/data/eval next to the repository: $MOEQ_SHARED/data/eval when set, else relative to
// the binary (build/moeq → <repo>/../shared), else relative to the working directory.
std::filesystem::path default_data_dir();

}  // namespace moeq::cli
