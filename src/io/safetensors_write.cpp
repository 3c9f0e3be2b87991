// Writing safetensors files: one header, tensors laid out back to back, renamed into place.
#include <algorithm>
#include <numeric>
#include <set>

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

}  // namespace moeq
