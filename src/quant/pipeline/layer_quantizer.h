// Quantizes the linear layers of one decoder block, GPTQ-style: calibration hidden states run
// through the block with recorders on the linears about to be quantized; their Hessians feed
// GPTQ/AWQ; the quantized ops replace the dense ones before the next stage runs, so each stage
// calibrates on the outputs of the already-quantized stages before it (true-sequential):
//   stage 0: attention inputs (q, k, v; MLA's q_a/q_b/kv_a/kv_b)   stage 1: o
//   stage 2: MLP inputs (router-side: gate, up of every expert, shared expert, dense MLP)
//   stage 3: down projections
// Stages 0 and 1 run the attention half of the block; once it is quantized, the hidden states
// move past it in place and stages 2 and 3 run the MLP half, computing only what their recorders
// read.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "calib/hessian.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "quant/algo/awq.h"
#include "quant/algo/gptq.h"
#include "quant/plan/plan.h"

namespace moeq {

class HessianAccumulator;  // calib/hessian.h

// What to do with a tensor whose input dimension the group size does not divide.
enum class IndivisibleGroups : uint8_t {
  Error,       // refuse, naming the tensor (default)
  PerChannel,  // quantize that tensor with one group per row (what rtn_torch.md's baselines do)
  Halve,       // halve the group size until it divides (not below kMinHalvedGroup), else per-channel:
               // g128 on mixtral's 448-wide down projections becomes g64
};
inline constexpr int kMinHalvedGroup = 32;

struct LayerJob {
  int layer = 0;
  std::span<LinearSlot> slots;               // this layer's linears
  std::span<const plan::PlanEntry*> entries;  // the plan entry of each slot (same order)
  const plan::RecipeSettings* settings = nullptr;
  IndivisibleGroups indivisible = IndivisibleGroups::Error;
  std::function<void(int64_t linears_done)> on_linear = {};  // after each linear is quantized, if set
};

struct UnitResult {
  std::string name;
  std::string method;       // what actually ran: "gptq", "awq", "rtn", or "rtn (fallback: ...)"
  QuantSpec spec;
  int64_t tokens = -1;      // calibration rows it saw (-1: not calibrated)
  double loss = 0.0;        // Hessian-weighted output error (GPTQ/AWQ), 0 for RTN
  std::vector<TensorToWrite> tensors;  // what the output checkpoint stores for it
  std::string input_scale;  // AWQ: the tensor of LayerResult::input_scales it divides its input by
};

struct LayerResult {
  int layer = 0;
  double seconds = 0.0;
  std::vector<UnitResult> units;
  std::vector<TensorToWrite> input_scales;  // AWQ's, one per input the linears share
  std::vector<std::string> warnings;
};

// Tokens the calibration passes run at a time (bounds the copies of hidden states and
// activations that quantizing a block makes).
inline constexpr int64_t kPassTokens = 4096;

// Adds SiLU(gate(x)) · up(x) for every token of the layer (x: [tokens, in]) to `h`: the inputs an
// expert's down projection would see if the router had sent it all tokens. kPassTokens rows at a
// time, so the activations never exist for all tokens at once.
void add_expert_activations(HessianAccumulator& h, const LinearOp& gate, const LinearOp& up, std::span<const float> x);

// A tied lm_head is the embedding's matrix, which one file cannot store both quantized (as the
// lm_head) and not (as the embedding): an error naming `source` if the entry quantizes it.
void check_not_tied(const Model& model, const plan::PlanEntry& entry, const std::string& source);

// Statistics of the lm_head's inputs: `hidden` ([tokens, hidden], the last block's output)
// through the model's final norm, kPassTokens rows at a time.
HessianAccumulator lm_head_inputs(const Model& model, const Tensor& hidden);

// A recipe's [gptq] and [awq] tables as the algorithms' options (GPTQ's for a tensor of `role`),
// with the recipe's [int_scales] division (the sensitivity estimates keep the default).
GptqOptions gptq_options(const plan::GptqSettings& settings, TensorRole role,
                         ScaleDivision division = ScaleDivision::Exact);
AwqOptions awq_options(const plan::AwqSettings& settings, ScaleDivision division = ScaleDivision::Exact);

// The spec a plan entry is quantized with for this tensor shape (applies IndivisibleGroups).
QuantSpec effective_spec(const plan::PlanEntry& entry, IndivisibleGroups indivisible);

// Quantizes every slot whose entry quantizes, installing the quantized op in the model, and
// advances `hidden` ([samples·seqlen, hidden], the block's input; may be empty when no entry
// needs calibration) through the quantized block: it leaves the next block's input.
LayerResult quantize_layer(Model& model, const LayerJob& job, Tensor& hidden, int64_t samples, int64_t seqlen);

}  // namespace moeq
