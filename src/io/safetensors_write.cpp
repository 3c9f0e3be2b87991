// Writing safetensors files, and the NaN/Inf scan that loaders run over a checkpoint.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"

namespace moeq {

namespace {

void check_tensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors) {
  std::set<std::string_view> seen;
  for (const TensorToWrite& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__")
      fail("{}: tensor name '{}' is reserved or empty", path.string(), t.name);
    if (!seen.insert(t.name).second) fail("{}: tensor '{}' given twice", path.string(), t.name);
    const size_t expected = size_t(Tensor::count(t.shape)) * dtype_size(t.dtype);
    if (t.bytes.size() != expected)
      fail("{}: tensor '{}' has {} bytes, but {} of {} elements needs {}", path.string(), t.name, t.bytes.size(),
           dtype_name(t.dtype), Tensor::count(t.shape), expected);
  }
}

}  // namespace

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  check_tensors(path, tensors);
  // Widest dtype first: the data section starts 8-aligned, so every tensor lands on a multiple
  // of its element size and readers may use the mapping as typed arrays.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].dtype) > dtype_size(tensors[b].dtype);
  });

  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i : order) {
    const TensorToWrite& t = tensors[i];
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the spec pads the header with spaces to 8 bytes

  write_file_atomically(path, [&](std::ostream& out) {
    const uint64_t len = text.size();
    out.write(reinterpret_cast<const char*>(&len), 8);
    out.write(text.data(), std::streamsize(text.size()));
    for (size_t i : order)
      out.write(reinterpret_cast<const char*>(tensors[i].bytes.data()), std::streamsize(tensors[i].bytes.size()));
  });
}

namespace {

// True when some element of n `Bits` words has all bits of `exp_mask` set (exponent all ones:
// Inf or NaN). Branch-free inner loop over blocks so the compiler vectorizes it.
template <typename Bits>
bool any_exponent_all_ones(const std::byte* p, size_t n, Bits exp_mask) {
  constexpr size_t kBlock = 4096;
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t stop = std::min(n, start + kBlock);
    bool hit = false;
    for (size_t i = start; i < stop; ++i) {
      Bits w;
      std::memcpy(&w, p + i * sizeof(Bits), sizeof(Bits));
      hit |= (w & exp_mask) == exp_mask;
    }
    if (hit) return true;
  }
  return false;
}

bool has_nonfinite(const TensorView& v) {
  const size_t n = size_t(v.numel());
  switch (v.dtype) {
    case DType::BF16: return any_exponent_all_ones<uint16_t>(v.data, n, 0x7f80u);
    case DType::F16: return any_exponent_all_ones<uint16_t>(v.data, n, 0x7c00u);
    case DType::F32: return any_exponent_all_ones<uint32_t>(v.data, n, 0x7f800000u);
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
