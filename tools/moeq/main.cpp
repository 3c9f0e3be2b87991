// moeq: compress Mixture-of-Experts models by post-training quantization, run them, and measure
// what each choice costs and buys. See README.md.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"moeq: structure-aware post-training quantization for Mixture-of-Experts models"};
  app.require_subcommand(1);
  moeq::cli::add_version_command(app);
  moeq::cli::add_info_command(app);
  moeq::cli::add_tokenize_command(app);
  moeq::cli::add_quantize_command(app);
  moeq::cli::add_generate_command(app);
  moeq::cli::add_eval_command(app);
  moeq::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const moeq::Error& e) {
    fmt::print(stderr, "moeq: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "moeq: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "moeq: internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}
