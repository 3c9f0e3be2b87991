// Reading safetensors: map each file, check its header against the bytes actually there, and
// expose the tensors as views into the mapping. Format: 8-byte little-endian header length N,
// N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the data section that the offsets index.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace moeq {

static_assert(std::endian::native == std::endian::little, "safetensors is little-endian");

using nlohmann::json;
namespace fs = std::filesystem;

// A read-only mapping of one whole file; unmapped when the checkpoint goes away.
struct MappedFile {
  fs::path path;
  const std::byte* data = nullptr;
  size_t size = 0;

  explicit MappedFile(fs::path file) : path(std::move(file)) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("{}: cannot open for reading", path.string());
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      fail("{}: cannot stat", path.string());
    }
    size = size_t(st.st_size);
    // Shorter than the length prefix: nothing to map (and mmap refuses length 0).
    if (size < 8) {
      ::close(fd);
      fail("{}: file is {} bytes, shorter than the 8-byte header length", path.string(), size);
    }
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) fail("{}: mmap failed", path.string());
    data = static_cast<const std::byte*>(p);
  }
  ~MappedFile() { ::munmap(const_cast<std::byte*>(data), size); }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
};

namespace {

struct Header {
  std::vector<TensorView> tensors;
  std::map<std::string, std::string> metadata;
};

// A non-negative JSON integer, or a failure naming the file, tensor and field.
uint64_t read_count(const json& v, const fs::path& file, const std::string& name, const char* field) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
    fail("{}: tensor '{}': field '{}' must hold non-negative integers, got {}", file.string(), name,
         field, v.dump());
  return v.get<uint64_t>();
}

const json& require_field(const json& entry, const fs::path& file, const std::string& name,
                          const char* field) {
  auto it = entry.find(field);
  if (it == entry.end()) fail("{}: tensor '{}': missing field '{}'", file.string(), name, field);
  return *it;
}

std::vector<int64_t> parse_shape(const json& entry, const fs::path& file, const std::string& name) {
  const json& shape = require_field(entry, file, name, "shape");
  if (!shape.is_array()) fail("{}: tensor '{}': field 'shape' must be an array", file.string(), name);
  std::vector<int64_t> dims;
  uint64_t numel = 1;
  for (const json& d : shape) {
    const uint64_t n = read_count(d, file, name, "shape");
    // numel must fit in int64 for Tensor::count and in size_t for byte arithmetic.
    if (n != 0 && numel > uint64_t(std::numeric_limits<int64_t>::max()) / n)
      fail("{}: tensor '{}': shape {} overflows", file.string(), name, shape.dump());
    numel *= n;
    dims.push_back(int64_t(n));
  }
  return dims;
}

TensorView parse_entry(const std::string& name, const json& entry, const MappedFile& map,
                       size_t data_start) {
  const fs::path& file = map.path;
  if (!entry.is_object()) fail("{}: tensor '{}': entry must be a JSON object", file.string(), name);
  TensorView view;
  view.name = name;
  view.file = file;

  const json& dtype = require_field(entry, file, name, "dtype");
  auto parsed = dtype.is_string() ? dtype_from_name(dtype.get<std::string>()) : std::nullopt;
  if (!parsed) fail("{}: tensor '{}': field 'dtype' has unknown dtype {}", file.string(), name, dtype.dump());
  view.dtype = *parsed;
  view.shape = parse_shape(entry, file, name);

  const json& offsets = require_field(entry, file, name, "data_offsets");
  if (!offsets.is_array() || offsets.size() != 2)
    fail("{}: tensor '{}': field 'data_offsets' must be [begin, end]", file.string(), name);
  const uint64_t begin = read_count(offsets[0], file, name, "data_offsets");
  const uint64_t end = read_count(offsets[1], file, name, "data_offsets");
  const uint64_t data_size = map.size - data_start;
  if (begin > end || end > data_size)
    fail("{}: tensor '{}': field 'data_offsets' [{}, {}] out of range of the {}-byte data section",
         file.string(), name, begin, end, data_size);
  view.nbytes = size_t(end - begin);
  // numel × element size may exceed 64 bits for a hostile shape; compare by division first.
  const size_t elem = dtype_size(view.dtype);
  if (uint64_t(view.numel()) > view.nbytes / elem || uint64_t(view.numel()) * elem != view.nbytes)
    fail("{}: tensor '{}': data_offsets span {} bytes, but {} {} needs {} × {}", file.string(), name,
         view.nbytes, dtype_name(view.dtype), entry["shape"].dump(), view.numel(), elem);
  view.data = map.data + data_start + begin;
  return view;
}

void check_no_overlap(std::vector<TensorView>& views, const fs::path& file) {
  std::sort(views.begin(), views.end(), [](const TensorView& a, const TensorView& b) { return a.data < b.data; });
  const TensorView* prev = nullptr;
  for (const TensorView& v : views) {
    if (v.nbytes == 0) continue;  // empty tensors occupy no bytes and cannot collide
    if (prev && v.data < prev->data + prev->nbytes)
      fail("{}: tensors '{}' and '{}' overlap in the data section", file.string(), prev->name, v.name);
    prev = &v;
  }
}

std::map<std::string, std::string> parse_metadata(const json& meta, const fs::path& file) {
  if (!meta.is_object()) fail("{}: field '__metadata__' must be an object", file.string());
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : meta.items()) {
    if (!value.is_string())
      fail("{}: field '__metadata__.{}' must be a string, got {}", file.string(), key, value.dump());
    out[key] = value.get<std::string>();
  }
  return out;
}

Header parse_header(const MappedFile& map) {
  const std::string file = map.path.string();
  uint64_t header_len = 0;
  std::memcpy(&header_len, map.data, 8);
  if (header_len > map.size - 8)
    fail("{}: header length {} runs past the end of the file ({} bytes)", file, header_len, map.size);
  const char* text = reinterpret_cast<const char*>(map.data + 8);
  json header;
  try {
    header = json::parse(text, text + header_len);
  } catch (const json::parse_error& e) {
    fail("{}: header is not valid JSON ({})", file, e.what());
  }
  if (!header.is_object()) fail("{}: header must be a JSON object", file);

  Header out;
  const size_t data_start = 8 + size_t(header_len);
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__")
      out.metadata = parse_metadata(entry, map.path);
    else
      out.tensors.push_back(parse_entry(name, entry, map, data_start));
  }
  check_no_overlap(out.tensors, map.path);
  return out;
}

json read_json_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open for reading", path.string());
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON ({})", path.string(), e.what());
  }
}

}  // namespace

Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

Checkpoint Checkpoint::open(const fs::path& path) {
  fs::path file = path;
  if (fs::is_directory(path)) {
    file = path / "model.safetensors.index.json";
    if (!fs::exists(file)) file = path / "model.safetensors";
    if (!fs::exists(file))
      fail("{}: no model.safetensors or model.safetensors.index.json in this folder", path.string());
  } else if (!fs::exists(path)) {
    fail("{}: no such file or folder", path.string());
  }

  Checkpoint ck;
  ck.path_ = path;
  if (file.string().ends_with(".index.json")) {
    ck.open_sharded(file);
  } else {
    ck.mappings_.push_back(std::make_unique<MappedFile>(file));
    Header header = parse_header(*ck.mappings_.back());
    ck.metadata_ = std::move(header.metadata);
    for (TensorView& v : header.tensors) ck.tensors_.emplace(v.name, std::move(v));
  }
  return ck;
}

// The index's weight_map is the source of truth: every tensor it names must be in the shard it
// names (as transformers requires); tensors a shard holds beyond the map are not part of the model.
void Checkpoint::open_sharded(const fs::path& index_path) {
  const json index = read_json_file(index_path);
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object())
    fail("{}: field 'weight_map' missing or not an object", index_path.string());

  std::map<std::string, std::map<std::string, TensorView>> shards;
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string())
      fail("{}: field 'weight_map.{}' must be a file name", index_path.string(), name);
    const std::string shard_name = shard.get<std::string>();
    if (!shards.contains(shard_name)) {
      const fs::path shard_path = index_path.parent_path() / shard_name;
      if (!fs::is_regular_file(shard_path))
        fail("{}: tensor '{}' is mapped to shard '{}', but {} does not exist", index_path.string(), name,
             shard_name, shard_path.string());
      mappings_.push_back(std::make_unique<MappedFile>(shard_path));
      Header header = parse_header(*mappings_.back());
      metadata_.merge(header.metadata);
      auto& by_name = shards[shard_name];
      for (TensorView& v : header.tensors) by_name.emplace(v.name, std::move(v));
    }
    const auto& in_shard = shards.at(shard_name);
    auto it = in_shard.find(name);
    if (it == in_shard.end())
      fail("{}: tensor '{}' is mapped to shard '{}', but that shard does not contain it", index_path.string(),
           name, shard_name);
    tensors_.emplace(name, it->second);
  }
}

bool Checkpoint::contains(const std::string& name) const { return tensors_.contains(name); }

const TensorView& Checkpoint::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("{}: missing tensor '{}'", path_.string(), name);
  return it->second;
}

const TensorView& Checkpoint::get(const std::string& name, const std::vector<int64_t>& expected_shape) const {
  const TensorView& view = get(name);
  if (view.shape != expected_shape)
    fail("{}: tensor '{}' has shape {}, expected {}", view.file.string(), name, view.shape, expected_shape);
  return view;
}

Tensor TensorView::to_f32() const {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    fail("{}: tensor '{}' has dtype {}, which does not convert to F32", file.string(), name, dtype_name(dtype));
  Tensor out(shape);
  if (out.numel() > 0) convert_to_f32(dtype, data, out.ptr(), size_t(out.numel()));  // empty: data() may be null
  return out;
}

}  // namespace moeq
