// How many bits a plan spends.
//
// Two averages over the *quantized* weight matrices (units whose action quantizes):
//  - nominal bits, the paper's count (Li et al. 2024): Σ bits·numel / Σ numel, where bits is the
//    format's code width (int2 → 2, nf4 → 4). Scales and zeros are not counted.
//  - effective bits: the same matrices' real storage per weight, as the formats pack them
//    (codes, scales, zeros, GPTQ's g_idx; bitsandbytes' absmax and code tables).
// And the whole checkpoint: bytes per parameter, with every tensor that is not quantized (kept
// units and the `other_params` outside the units: norms, biases, embeddings) at 16 bits.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/plan/plan.h"

namespace moeq::plan {

// Bytes of one [rows, cols] matrix under `action`: quant/formats/size.h's quant_size() as the
// packers write it (GPTQ qweight/qzeros/scales/g_idx; bitsandbytes weight/absmax/tables), or 2
// per weight for a kept matrix.
int64_t storage_bytes(const QuantAction& action, int64_t rows, int64_t cols);

struct BitsSummary {
  int64_t quantized_params = 0;  // weights of quantized units
  double nominal_bits = 0;       // paper's count over them (0 when nothing is quantized)
  double effective_bits = 0;     // their storage per weight
};

struct RoleBits {
  TensorRole role;
  int64_t params = 0;  // all units of the role, quantized or not
  BitsSummary bits;    // over the role's quantized units
};

struct BitsReport {
  BitsSummary quantized;          // over every quantized unit
  std::vector<RoleBits> by_role;  // roles present, in TensorRole order
  int64_t total_params = 0;       // units + other_params
  int64_t total_bytes = 0;        // quantized units' storage + all the rest at 2 bytes
  double bytes_per_param = 0;
};

BitsReport bits_report(const QuantPlan& plan, int64_t other_params = 0);

}  // namespace moeq::plan
