// Block-scaled FP8 weights (DeepSeek-V3's checkpoint format) widened to BF16: each F8_E4M3
// weight W [rows, cols] comes with W_scale_inv [ceil(rows / br), ceil(cols / bc)] in fp32, and
// w[i][j] = bf16(f32(W[i][j]) · scale_inv[i / br][j / bc]), the conversion of DeepSeek's
// fp8_cast_bf16.py and of transformers' FP8 dequantization.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arch/config.h"
#include "io/safetensors.h"

namespace moeq {

// "<stem>.weight" → "<stem>.weight_scale_inv".
std::string fp8_scale_name(const std::string& weight_name);

// Whether `name` is the scale tensor of an F8_E4M3 weight of the checkpoint.
bool is_fp8_scale(const Checkpoint& checkpoint, const std::string& name);

// Throws naming the file and tensor when the scale tensor is missing or of the wrong shape.
std::vector<uint16_t> fp8_weight_to_bf16(const Checkpoint& checkpoint, const TensorView& weight,
                                         ModelConfig::Fp8Blocks blocks);

}  // namespace moeq
