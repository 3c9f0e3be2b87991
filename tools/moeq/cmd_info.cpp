// `moeq info MODEL`: the model's shape and where its parameters sit, by role.
#include <string>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "arch/tensor_roles.h"
#include "commands.h"
#include "io/safetensors.h"
#include "model/model_summary.h"

namespace moeq::cli {

namespace {

struct Row {
  const char* label;
  TensorRole role;
  bool always;  // shown even when empty, so every MoE report has the same rows
};

constexpr Row kRows[] = {
    {"embedding", TensorRole::Embedding, true},
    {"attention", TensorRole::Attention, true},
    {"router", TensorRole::Router, true},
    {"routed experts", TensorRole::RoutedExpert, true},
    {"shared experts", TensorRole::SharedExpert, true},
    {"shared expert gate", TensorRole::SharedExpertGate, false},
    {"dense MLP", TensorRole::DenseMlp, true},
    {"norms", TensorRole::Norm, true},
    {"lm_head", TensorRole::LmHead, true},
    {"other", TensorRole::Other, false},
};

// 27808000 → "27,808,000" (counts are never negative).
std::string grouped(int64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string mib(int64_t bytes) { return fmt::format("{:.2f} MiB", double(bytes) / (1 << 20)); }

void print_table(const ModelSummary& s) {
  fmt::print("model_type    {}\n", s.model_type);
  fmt::print("architecture  {}\n", s.architecture);
  fmt::print("layers        {} ({} MoE)\n", s.layers, s.moe_layers);
  fmt::print("hidden        {}\n", s.hidden);
  fmt::print("experts       {} routed, top-{}, {} shared\n", s.routed_experts, s.top_k, s.shared_experts);
  fmt::print("vocab         {}{}\n\n", s.vocab, s.tied_embeddings ? " (lm_head tied to embedding)" : "");

  // Quantized models add the share of each role's parameters that is quantized, their average
  // format bits (the paper's count) and the role's stored bits per parameter (true bytes).
  std::string header = fmt::format("{:<20}{:>8}{:>14}{:>9}{:>14}", "role", "tensors", "params", "share", "bytes");
  if (s.quantized) header += fmt::format("{:>12}{:>13}{:>14}", "quantized", "bits(paper)", "bits(stored)");
  fmt::print("{}\n{}\n", header, std::string(header.size(), '-'));
  auto line = [&](const char* label, const RoleTotals& t) {
    const double share = s.total.params ? 100.0 * double(t.params) / double(s.total.params) : 0.0;
    fmt::print("{:<20}{:>8}{:>14}{:>8.2f}%{:>14}", label, t.tensors, grouped(t.params), share, mib(t.bytes));
    if (s.quantized) {
      const double quantized = t.params ? 100.0 * double(t.quantized_params) / double(t.params) : 0.0;
      const std::string nominal = t.quantized_params ? fmt::format("{:.3f}", t.nominal_bits()) : "-";
      fmt::print("{:>11.1f}%{:>13}{:>14.3f}", quantized, nominal, t.stored_bits());
    }
    fmt::print("\n");
  };
  for (const Row& row : kRows)
    if (row.always || s.role(row.role).tensors > 0) line(row.label, s.role(row.role));
  fmt::print("{}\n", std::string(header.size(), '-'));
  line("total", s.total);
  if (s.total.act8_params > 0)
    fmt::print("{:<20}INT8 per token into the linears of {:.1f}% of the quantized parameters\n", "activations",
               100.0 * double(s.total.act8_params) / double(s.total.quantized_params));
  fmt::print("{:<20}{:>8}{:>14}\n", "active per token", "", grouped(s.active_params));
}

nlohmann::json totals_json(const RoleTotals& t) {
  return {{"tensors", t.tensors},
          {"params", t.params},
          {"bytes", t.bytes},
          {"quantized_params", t.quantized_params},
          {"act8_params", t.act8_params},
          {"nominal_bits", t.nominal_bits()},
          {"stored_bits", t.stored_bits()}};
}

void print_json(const ModelSummary& s) {
  nlohmann::json roles = nlohmann::json::object();
  for (const Row& row : kRows) roles[std::string(role_name(row.role))] = totals_json(s.role(row.role));
  const nlohmann::json out = {
      {"model_type", s.model_type},         {"architecture", s.architecture},
      {"layers", s.layers},                 {"moe_layers", s.moe_layers},
      {"hidden", s.hidden},                 {"vocab", s.vocab},
      {"routed_experts", s.routed_experts}, {"top_k", s.top_k},
      {"shared_experts", s.shared_experts}, {"tied_embeddings", s.tied_embeddings},
      {"quantized", s.quantized},
      {"roles", roles},                     {"total", totals_json(s.total)},
      {"active_params", s.active_params},
  };
  fmt::print("{}\n", out.dump(2));
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Show a model's architecture and its parameters by role");
  auto model = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("MODEL", *model, "Hugging Face model folder (config.json + safetensors)")->required();
  cmd->add_flag("--json", *as_json, "Print machine-readable JSON instead of a table");
  cmd->callback([model, as_json] {
    const Checkpoint checkpoint = Checkpoint::open(*model);
    warn_nonfinite(checkpoint);
    const ModelSummary s = summarize_model(*model, checkpoint);
    if (*as_json)
      print_json(s);
    else
      print_table(s);
  });
}

}  // namespace moeq::cli
