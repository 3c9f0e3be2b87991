// The input Hessians of every decoder-body linear from the statistics pass (model_stats.h), kept
// so that `moeq bench` can quantize every grid row with GPTQ without running calibration data
// through the model again. Linears that read the same input share one entry (q/k/v of a block,
// gate/up of one expert). Routed experts that saw fewer than kMinExpertTokens calibration tokens
// also get an entry built from every token of their layer (the recipes' under-calibrated policy:
// gate/up from the router's input, down from SiLU(gate(x))·up(x) over all tokens).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "core/tensor.h"
#include "quant/plan/unit.h"

namespace moeq::analysis {

// Under this many routed calibration tokens an expert is calibrated on all of its layer's tokens
// (the generated recipes' under_calibrated.min_tokens).
constexpr int64_t kMinExpertTokens = 32;

class HessianStore {
 public:
  enum class Tokens : uint8_t { Routed, AllOfLayer };

  // "L3.E5.gate_up", "L0.attn.qkv", "L3.E5.down.all": the input a unit reads.
  static std::string key(const plan::QuantUnit& unit, Tokens tokens = Tokens::Routed);

  void put(const std::string& key, Tensor hessian) { entries_.insert_or_assign(key, std::move(hessian)); }
  bool contains(const std::string& key) const { return entries_.count(key) > 0; }
  // Throws moeq::Error naming the key when absent.
  const Tensor& get(const std::string& key) const;
  size_t size() const { return entries_.size(); }

  // One fp32 safetensors file, a tensor per key (atomically written).
  void save(const std::filesystem::path& file) const;
  static HessianStore load(const std::filesystem::path& file);

 private:
  std::map<std::string, Tensor> entries_;
};

}  // namespace moeq::analysis
