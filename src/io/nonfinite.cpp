// The NaN/Inf scan that loaders run over every checkpoint they open.
#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "io/safetensors.h"

namespace moeq {

namespace {

// True when some element of n `Bits` words, sign bit cleared, is >= `inf_bits` (the pattern of
// +Inf): exactly the Inf and NaN encodings. A max-reduction over blocks vectorizes to one
// compare per lane; the per-block exit stops at the first bad block.
template <typename Bits>
bool any_nonfinite(const std::byte* p, size_t n, Bits inf_bits) {
  constexpr Bits kAbs = Bits(~Bits(0)) >> 1;
  constexpr size_t kBlock = 8192;
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t stop = std::min(n, start + kBlock);
    Bits max = 0;
    for (size_t i = start; i < stop; ++i) {
      Bits w;
      std::memcpy(&w, p + i * sizeof(Bits), sizeof(Bits));
      max = std::max(max, Bits(w & kAbs));
    }
    if (max >= inf_bits) return true;
  }
  return false;
}

bool has_nonfinite(const TensorView& v) {
  const size_t n = size_t(v.numel());
  switch (v.dtype) {
    case DType::BF16: return any_nonfinite<uint16_t>(v.data, n, 0x7f80u);
    case DType::F16: return any_nonfinite<uint16_t>(v.data, n, 0x7c00u);
    case DType::F32: return any_nonfinite<uint32_t>(v.data, n, 0x7f800000u);
    default: return false;
  }
}

}  // namespace

std::vector<std::string> scan_nonfinite(const Checkpoint& checkpoint) {
  std::vector<const TensorView*> views;
  for (const auto& [name, view] : checkpoint.tensors()) views.push_back(&view);
  std::vector<char> bad(views.size(), 0);
#pragma omp parallel for schedule(dynamic, 4)
  for (size_t i = 0; i < views.size(); ++i) bad[i] = has_nonfinite(*views[i]);
  std::vector<std::string> names;
  for (size_t i = 0; i < views.size(); ++i)
    if (bad[i]) names.push_back(views[i]->name);
  return names;
}

std::vector<std::string> warn_nonfinite(const Checkpoint& checkpoint) {
  std::vector<std::string> names = scan_nonfinite(checkpoint);
  for (const std::string& name : names)
    fmt::print(stderr, "moeq: warning: {}: tensor '{}' contains NaN or Inf\n",
               checkpoint.get(name).file.string(), name);
  return names;
}

}  // namespace moeq
