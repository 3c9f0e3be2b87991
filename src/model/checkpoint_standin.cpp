// TEMPORARY stand-in for io/safetensors.cpp so the model workstream can load checkpoints before
// the io workstream's implementation lands on main. Minimal: no validation beyond what loading
// needs. Delete this file when merging main with the real Checkpoint.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>

#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"

namespace moeq {

struct Checkpoint::Mapping {
  void* base = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (base) munmap(base, size);
  }
};

Tensor TensorView::to_f32() const {
  Tensor t(shape);
  convert_to_f32(dtype, data, t.ptr(), size_t(numel()));
  return t;
}

Checkpoint Checkpoint::open(const std::filesystem::path& path) {
  Checkpoint ck;
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path)) {
    auto index = path / "model.safetensors.index.json";
    if (std::filesystem::exists(index)) {
      std::ifstream in(index);
      auto j = nlohmann::json::parse(in);
      std::set<std::string> names;
      for (auto& [k, v] : j.at("weight_map").items()) names.insert(v.get<std::string>());
      for (auto& n : names) files.push_back(path / n);
    } else {
      files.push_back(path / "model.safetensors");
    }
  } else {
    files.push_back(path);
  }
  for (auto& f : files) {
    auto m = std::make_unique<Mapping>();
    int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) fail("{}: cannot open", f.string());
    struct stat st {};
    fstat(fd, &st);
    m->size = size_t(st.st_size);
    m->base = mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (m->base == MAP_FAILED) fail("{}: cannot map", f.string());
    auto* bytes = static_cast<const std::byte*>(m->base);
    uint64_t hlen;
    std::memcpy(&hlen, bytes, 8);
    auto header = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(bytes + 8), hlen));
    for (auto& [name, v] : header.items()) {
      if (name == "__metadata__") continue;
      TensorView tv;
      tv.name = name;
      tv.dtype = *dtype_from_name(v.at("dtype").get<std::string>());
      tv.shape = v.at("shape").get<std::vector<int64_t>>();
      auto off = v.at("data_offsets").get<std::vector<size_t>>();
      tv.data = bytes + 8 + hlen + off[0];
      tv.nbytes = off[1] - off[0];
      tv.file = f;
      ck.tensors_[name] = tv;
    }
    ck.mappings_.push_back(std::move(m));
  }
  return ck;
}

bool Checkpoint::contains(const std::string& name) const { return tensors_.count(name) > 0; }

const TensorView& Checkpoint::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("checkpoint: missing tensor '{}'", name);
  return it->second;
}

const TensorView& Checkpoint::get(const std::string& name, const std::vector<int64_t>& shape) const {
  const auto& t = get(name);
  if (t.shape != shape) fail("{}: tensor '{}' has shape [{}], expected [{}]", t.file.string(), name,
                             fmt::join(t.shape, ", "), fmt::join(shape, ", "));
  return t;
}

Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

}  // namespace moeq
