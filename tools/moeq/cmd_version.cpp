#include <fmt/format.h>

#include "commands.h"

namespace moeq::cli {

void add_version_command(CLI::App& app) {
  app.add_subcommand("version", "Print the moeq version")->callback([] { fmt::print("moeq 0.1.0\n"); });
}

}  // namespace moeq::cli
