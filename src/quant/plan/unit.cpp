#include "quant/plan/unit.h"

#include <array>
#include <utility>

#include <fmt/format.h>

namespace moeq::plan {
namespace {

template <typename Enum, size_t N>
bool lookup(const std::array<std::pair<Enum, std::string_view>, N>& table, std::string_view text,
            Enum& out) {
  for (const auto& [value, name] : table) {
    if (name == text) {
      out = value;
      return true;
    }
  }
  return false;
}

template <typename Enum, size_t N>
std::string_view name_of(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return "?";
}

constexpr std::array<std::pair<QuantMethod, std::string_view>, 4> kMethods{{
    {QuantMethod::None, "none"},
    {QuantMethod::Rtn, "rtn"},
    {QuantMethod::Gptq, "gptq"},
    {QuantMethod::Awq, "awq"},
}};

constexpr std::array<std::pair<QuantFormat, std::string_view>, 3> kFormats{{
    {QuantFormat::Int, "int"},
    {QuantFormat::NF4, "nf4"},
    {QuantFormat::FP4, "fp4"},
}};

}  // namespace

QuantUnit unit_of(const LinearSlot& slot) {
  const LinearOp& op = **slot.op;
  return {slot.name, slot.role, slot.layer, slot.expert, slot.projection, op.out_features(),
          op.in_features()};
}

std::vector<QuantUnit> units_of(std::span<const LinearSlot> slots) {
  std::vector<QuantUnit> units;
  units.reserve(slots.size());
  for (const LinearSlot& s : slots) units.push_back(unit_of(s));
  return units;
}

QuantAction QuantAction::int_bits(QuantMethod method, int bits, int group_size, bool symmetric) {
  QuantSpec spec;
  spec.format = QuantFormat::Int;
  spec.bits = bits;
  spec.group_size = group_size;
  spec.symmetric = symmetric;
  spec.double_quant = false;
  return {method, spec};
}

bool operator==(const QuantAction& a, const QuantAction& b) {
  return a.method == b.method && (!a.quantizes() || (a.spec == b.spec && a.act_bits == b.act_bits));
}

std::string_view method_name(QuantMethod method) { return name_of(kMethods, method); }
std::string_view format_name(QuantFormat format) { return name_of(kFormats, format); }

bool parse_role(std::string_view text, TensorRole& role) {
  for (int r = 0; r <= int(TensorRole::Other); ++r) {
    if (role_name(TensorRole(r)) == text) {
      role = TensorRole(r);
      return true;
    }
  }
  return false;
}

bool parse_method(std::string_view text, QuantMethod& method) { return lookup(kMethods, text, method); }
bool parse_format(std::string_view text, QuantFormat& format) { return lookup(kFormats, text, format); }

std::string describe(const QuantAction& action) {
  if (!action.quantizes()) return "keep";
  return fmt::format("{} {}{}", method_name(action.method), to_string(action.spec),
                     action.act_bits == kActBitsNone ? "" : fmt::format(" a{}", action.act_bits));
}

bool is_protected_role(TensorRole role) {
  return role == TensorRole::Router || role == TensorRole::SharedExpertGate;
}

bool needs_named_role(TensorRole role) {
  return is_protected_role(role) || role == TensorRole::Embedding || role == TensorRole::LmHead;
}

}  // namespace moeq::plan
