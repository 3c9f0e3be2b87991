// How many bits a plan spends.
//
// Two averages over the *quantized* weight matrices (units whose action quantizes):
//  - nominal bits, the paper's count (Li et al. 2024): Σ bits·numel / Σ numel, where bits is the
//    format's code width (int2 → 2, nf4 → 4). Scales and zeros are not counted.
//  - effective bits: the same matrices' real storage (codes + scales + zeros / absmax) per weight.
// And the whole checkpoint: bytes per parameter, with every tensor that is not quantized (kept
// units and the `other_params` outside the units: norms, biases, embeddings) at 16 bits.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/plan/plan.h"

namespace moeq::plan {

// Storage of one [rows, cols] matrix quantized with `spec`, in bits. Until the formats
// workstream publishes its own sizes this follows the layouts named in qtensor.h:
//  - Int: packed b-bit codes; per (row, group) an fp16 scale and a b-bit packed zero (stored for
//    symmetric specs too, as GPTQ checkpoints do); group_size 0 = one group per row. GPTQ's
//    per-column g_idx is not counted.
//  - NF4/FP4 (bitsandbytes): 4-bit codes over the flattened matrix in blocks of group_size;
//    per block an fp32 absmax, or with double_quant an 8-bit absmax plus, per 256 blocks, an fp32
//    scale, plus one fp32 offset per matrix. Constant code tables are not counted.
struct StorageBits {
  int64_t codes = 0;
  int64_t metadata = 0;
  int64_t total() const { return codes + metadata; }
};
StorageBits storage_bits(const QuantSpec& spec, int64_t rows, int64_t cols);
int64_t storage_bytes(const QuantAction& action, int64_t rows, int64_t cols);  // kept: 2 per weight

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
