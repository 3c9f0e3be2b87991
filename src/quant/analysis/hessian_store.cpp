#include "quant/analysis/hessian_store.h"

#include <cstring>

#include <fmt/format.h>

#include "core/error.h"
#include "io/safetensors.h"

namespace moeq::analysis {

std::string HessianStore::key(const plan::QuantUnit& u, Tokens tokens) {
  if (u.layer < 0) return std::string(role_name(u.role));  // the lm_head: the final norm's output
  const std::string& p = u.projection;
  const std::string input = p == "q" || p == "k" || p == "v" ? "qkv" : p == "gate" || p == "up" ? "gate_up" : p;
  const std::string owner = u.expert >= 0 ? fmt::format("E{}", u.expert) : std::string(role_name(u.role));
  return fmt::format("L{}.{}.{}{}", u.layer, owner, input, tokens == Tokens::AllOfLayer ? ".all" : "");
}

const Tensor& HessianStore::get(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) fail("hessian store: no entry '{}'", key);
  return it->second;
}

void HessianStore::save(const std::filesystem::path& file) const {
  std::vector<TensorToWrite> tensors;
  for (const auto& [key, h] : entries_) {
    TensorToWrite t{key, DType::F32, h.shape, std::vector<std::byte>(size_t(h.numel()) * sizeof(float))};
    std::memcpy(t.bytes.data(), h.ptr(), t.bytes.size());
    tensors.push_back(std::move(t));
  }
  const std::filesystem::path tmp = file.string() + ".tmp";
  write_safetensors(tmp, tensors, {{"moeq", "hessians"}});
  std::filesystem::rename(tmp, file);
}

HessianStore HessianStore::load(const std::filesystem::path& file) {
  const Checkpoint ck = Checkpoint::open(file);
  HessianStore store;
  for (const auto& [name, view] : ck.tensors()) store.put(name, view.to_f32());
  return store;
}

}  // namespace moeq::analysis
