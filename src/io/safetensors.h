// CONTRACT (owned by the io workstream): memory-mapped safetensors checkpoints, single file or
// sharded (model.safetensors.index.json). Tensors are viewed in place; nothing is copied until
// a caller converts one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace moeq {

struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  // Points into the mapping; valid while the Checkpoint lives. Files written by other tools
  // need not align tensors to their element size: read through memcpy or convert_to_f32.
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  std::filesystem::path file;       // for error messages

  int64_t numel() const { return Tensor::count(shape); }
  // Converts to an owning fp32 tensor (BF16/F16/F32 only; others throw naming the tensor).
  Tensor to_f32() const;
};

struct MappedFile;  // one read-only mmap of a whole file (io/safetensors.cpp)

// One or more mapped files seen as one name → tensor table.
class Checkpoint {
 public:
  // `path` is a model folder (model.safetensors or model.safetensors.index.json inside it)
  // or a .safetensors file. Validates every header against its file: throws moeq::Error naming
  // the file and tensor for a truncated file, a header length past the end, offsets out of
  // range or overlapping, byte lengths that disagree with dtype × shape, unknown dtypes.
  static Checkpoint open(const std::filesystem::path& path);

  bool contains(const std::string& name) const;
  // Throws moeq::Error("<file>: missing tensor '<name>'") when absent.
  const TensorView& get(const std::string& name) const;
  // Like get(), and also checks the shape: throws naming the tensor, expected and actual shape.
  const TensorView& get(const std::string& name, const std::vector<int64_t>& expected_shape) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The path open() was given: what error messages about the whole checkpoint name.
  const std::filesystem::path& path() const { return path_; }

  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;
  ~Checkpoint();

 private:
  Checkpoint() = default;
  void open_sharded(const std::filesystem::path& index_path);
  std::vector<std::unique_ptr<MappedFile>> mappings_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
  std::filesystem::path path_;
};

// Names of the floating tensors (BF16/F16/F32) holding a NaN or an infinity. Checks exponent bits
// only, so it reads each byte once at memory speed; loaders call warn_nonfinite() on every load.
std::vector<std::string> scan_nonfinite(const Checkpoint& checkpoint);
// Runs scan_nonfinite and prints one warning line on stderr per offending tensor; returns them.
std::vector<std::string> warn_nonfinite(const Checkpoint& checkpoint);

// Writes tensors to one .safetensors file atomically (temp file + rename), with `metadata` in
// the header's __metadata__. Used by `moeq quantize` and by the tests that build bad files.
// Tensors are laid out widest dtype first, so each one starts at a multiple of its element size.
// Throws moeq::Error naming the file and tensor on a duplicate name or a byte length that
// disagrees with dtype × shape.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace moeq
