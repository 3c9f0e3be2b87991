#include "quant/formats/size.h"

#include "core/error.h"
#include "quant/formats/blocks.h"
#include "quant/formats/gptq.h"
#include "quant/formats/traits.h"

namespace moeq {

QuantSize quant_size(const QuantSpec& spec, int64_t rows, int64_t cols) {
  const FormatTraits& t = format_traits(spec);
  QuantSize s;
  if (t.family == QuantFormat::Int) {
    const int64_t groups = group_count(spec, cols);
    s.payload = gptq_packed_rows(cols, t.bits) * rows * 4;
    s.zeros = groups * gptq_packed_rows(rows, t.bits) * 4;
    s.scales = groups * rows * 2;
    s.index = cols * 4;
    return s;
  }
  if (cols % kBnbBlock != 0) fail("quant_size: {} needs in_features % 64 == 0, got {}", t.name, cols);
  const int64_t blocks = rows * cols / kBnbBlock;
  s.payload = rows * cols / 2;
  s.tables = 16 * 4;
  if (spec.double_quant) {
    s.scales = blocks + ceil_div(blocks, kBnbNestedBlock) * 4 + 4;
    s.tables += 256 * 4;
  } else {
    s.scales = blocks * 4;
  }
  return s;
}

}  // namespace moeq
