// The packing unit of every weight format, one struct each, with its size checked (ggml style).
// Packers, unpackers, size accounting and the kernels' layouts all derive from these.
// docs/FORMATS.md draws the bit layouts.
#pragma once

#include <cstdint>

namespace moeq {

// GPTQ integer formats (AutoGPTQ / GPTQModel qweight and qzeros): 32 consecutive codes form a
// little-endian bit stream of `Bits` 32-bit words — code v occupies bits [v·Bits, v·Bits + Bits)
// of the stream. For 2, 4 and 8 bits no code crosses a word; for 3 bits codes 10 and 21 straddle
// words 0/1 and 1/2, which is GPTQ's 3-bit interleaving. In qweight the words of one block are
// one output column's rows k·Bits … k·Bits + Bits − 1; in qzeros they are adjacent in a row.
template <int Bits>
struct IntBlock {
  static constexpr int kValues = 32;
  uint32_t words[Bits];
};
static_assert(sizeof(IntBlock<2>) == 32 * 2 / 8);
static_assert(sizeof(IntBlock<3>) == 32 * 3 / 8);
static_assert(sizeof(IntBlock<4>) == 32 * 4 / 8);
static_assert(sizeof(IntBlock<8>) == 32 * 8 / 8);

// bitsandbytes 4-bit (NF4, FP4): the codes of one 64-weight block, two per byte, the first code
// of each pair in the HIGH nibble (bnb: packed = q[2i] << 4 | q[2i+1]). As in bitsandbytes the
// block's absmax is not interleaved: it lives in its own tensor (fp32, or 8-bit when double
// quantized).
struct Bnb4Block {
  static constexpr int kValues = 64;
  uint8_t qs[kValues / 2];
};
static_assert(sizeof(Bnb4Block) == 64 * 4 / 8);

// Block sizes of bitsandbytes' double quantization: the absmax of 256 consecutive 4-bit blocks
// share one fp32 nested absmax.
inline constexpr int kBnbBlock = Bnb4Block::kValues;
inline constexpr int kBnbNestedBlock = 256;

}  // namespace moeq
