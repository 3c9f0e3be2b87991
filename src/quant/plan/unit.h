// The vocabulary of the planning layer: what can be quantized (QuantUnit) and what is done to
// it (QuantAction). Units mirror model::LinearSlot without the op, so recipes, strategies and
// the optimiser can be built and tested without loading a model.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "arch/tensor_roles.h"
#include "kernels/act_quant_linear.h"
#include "model/model.h"
#include "quant/formats/qtensor.h"

namespace moeq::plan {

// One weight matrix of the model, [rows = out features, cols = in features].
struct QuantUnit {
  std::string name;        // HF tensor name, e.g. "model.layers.3.mlp.experts.5.down_proj.weight"
  TensorRole role = TensorRole::Other;
  int layer = -1;          // -1 for embedding / lm_head
  int expert = -1;         // routed-expert index, else -1
  std::string projection;  // "q", "k", "v", "o", "gate", "up", "down", "router", ...
  int64_t rows = 0;
  int64_t cols = 0;

  int64_t numel() const { return rows * cols; }
};

// A LinearSlot of a loaded model as a unit (shape read from its op).
QuantUnit unit_of(const LinearSlot& slot);
// Every slot as a unit, in the slots' order.
std::vector<QuantUnit> units_of(std::span<const LinearSlot> slots);

enum class QuantMethod : uint8_t { None, Rtn, Gptq, Awq };  // None: keep the tensor 16-bit

struct QuantAction {
  QuantMethod method = QuantMethod::Rtn;
  QuantSpec spec;  // ignored when method == None
  // Bits of the activations the quantized linear reads: 16 (as computed) or 8 (each token's
  // input quantized to INT8 on the fly: W8A8 / W4A8, kernels/act_quant_linear.h).
  int act_bits = kActBitsNone;

  bool quantizes() const { return method != QuantMethod::None; }
  // GPTQ and AWQ read calibration inputs; RTN and keep do not.
  bool calibrates() const { return method == QuantMethod::Gptq || method == QuantMethod::Awq; }
  // The paper's count: the format's nominal bits, 16 for a kept tensor.
  int nominal_bits() const { return quantizes() ? spec.bits : 16; }
  static QuantAction keep() { return {QuantMethod::None, {}}; }
  static QuantAction int_bits(QuantMethod method, int bits, int group_size = 128, bool symmetric = false);
};

// Equal when they quantize identically (QuantSpec's == ignores the fields a format does not use);
// the spec of a kept tensor is not compared.
bool operator==(const QuantAction& a, const QuantAction& b);

// Recipe spellings ("gptq", "nf4"; roles as arch/tensor_roles.h's role_name: "routed_expert").
// parse_* return false on an unknown name.
std::string_view method_name(QuantMethod method);
std::string_view format_name(QuantFormat format);
bool parse_role(std::string_view text, TensorRole& role);
bool parse_method(std::string_view text, QuantMethod& method);
bool parse_format(std::string_view text, QuantFormat& format);

// Short human label for reports and warnings: "gptq int4 g128 asym", "rtn nf4 dq",
// "gptq int8 g0 sym a8", "keep".
std::string describe(const QuantAction& action);

// Routers and the shared-expert gate steer tokens; quantizing them changes which experts run,
// so they stay 16-bit unless a rule names their role explicitly.
bool is_protected_role(TensorRole role);
// Roles a rule selects only when its role selector names them: the protected ones, and the
// embedding and lm_head, which stay 16-bit by default (they hold a large share of a small
// model's bytes, so a recipe quantizes them on purpose, with RTN).
bool needs_named_role(TensorRole role);

}  // namespace moeq::plan
