#include "quant/formats/qtensor.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/int_math.h"

namespace moeq {
namespace {

bool parse_int(const std::string& s, int& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// The format token: "int4" → Int 4 bits, "nf4" / "fp4" → 4-bit codebooks.
bool parse_format(const std::string& tok, QuantSpec& spec) {
  if (tok == "nf4" || tok == "fp4") {
    spec.format = tok == "nf4" ? QuantFormat::NF4 : QuantFormat::FP4;
    spec.bits = 4;
    spec.group_size = 64;
    spec.double_quant = false;
    return true;
  }
  if (tok.rfind("int", 0) != 0) return false;
  spec.format = QuantFormat::Int;
  spec.group_size = 128;
  spec.symmetric = false;
  spec.double_quant = false;
  return parse_int(tok.substr(3), spec.bits) &&
         (spec.bits == 2 || spec.bits == 3 || spec.bits == 4 || spec.bits == 8);
}

}  // namespace

QuantSpec parse_quant_spec(const std::string& text) {
  std::istringstream in(text);
  std::string tok;
  QuantSpec spec;
  if (!(in >> tok) || !parse_format(tok, spec))
    fail("quant spec '{}': expected int2, int3, int4, int8, nf4 or fp4 first, got '{}'", text, tok);
  const bool is_int = spec.format == QuantFormat::Int;
  while (in >> tok) {
    int g = -1;
    if (tok.size() > 1 && tok[0] == 'g' && parse_int(tok.substr(1), g) &&
        (is_int ? (g == 0 || g == 32 || g == 64 || g == 128) : g == 64)) {
      spec.group_size = g;
    } else if (is_int && (tok == "sym" || tok == "asym")) {
      spec.symmetric = tok == "sym";
    } else if (!is_int && tok == "dq") {
      spec.double_quant = true;
    } else {
      fail("quant spec '{}': token '{}' is not valid here (int: g0|g32|g64|g128, sym|asym; "
           "nf4/fp4: g64, dq)", text, tok);
    }
  }
  return spec;
}

std::string to_string(const QuantSpec& spec) {
  switch (spec.format) {
    case QuantFormat::Int:
      return fmt::format("int{} g{} {}", spec.bits, spec.group_size, spec.symmetric ? "sym" : "asym");
    case QuantFormat::NF4:
      return spec.double_quant ? "nf4 dq" : "nf4";
    case QuantFormat::FP4:
      return spec.double_quant ? "fp4 dq" : "fp4";
  }
  return "?";
}

bool operator==(const QuantSpec& a, const QuantSpec& b) {
  if (a.format != b.format || a.bits != b.bits || a.group_size != b.group_size) return false;
  return a.format == QuantFormat::Int ? a.symmetric == b.symmetric : a.double_quant == b.double_quant;
}

int64_t group_width(const QuantSpec& spec, int64_t cols) {
  return spec.group_size == 0 ? cols : std::min<int64_t>(spec.group_size, cols);
}

int64_t group_count(const QuantSpec& spec, int64_t cols) { return ceil_div(cols, group_width(spec, cols)); }

}  // namespace moeq
