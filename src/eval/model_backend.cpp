// LmBackend over moeq's Model: states are KV caches; the blocks run on every token but the
// vocabulary projection only on the rows the evaluator scores.
#include <algorithm>
#include <optional>

#include "eval/lm_backend.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace moeq {
namespace {

struct CacheState : LmBackend::State {
  explicit CacheState(KVCache c) : cache(std::move(c)) {}
  KVCache cache;
};

class ModelBackend final : public LmBackend {
 public:
  explicit ModelBackend(Model& model) : model_(model) {}

  int64_t vocab_size() const override { return model_.vocab_size(); }

  std::unique_ptr<State> start(int64_t capacity) override {
    return std::make_unique<CacheState>(*model_.new_cache(1, std::max<int64_t>(capacity, 1)));
  }

  std::unique_ptr<State> fork(const State& state) override {
    return std::make_unique<CacheState>(static_cast<const CacheState&>(state).cache);
  }

  Tensor extend(State& state, std::span<const int32_t> ids, int64_t skip) override {
    const int64_t n = int64_t(ids.size());
    Tensor hidden = run_blocks(ids, 1, n, &static_cast<CacheState&>(state).cache);
    return head(hidden, std::vector<RowRange>{{0, skip, n}});
  }

  // Right-padded to the longest segment: with causal attention and per-token routing the padding
  // never reaches a real position, and the padded tail of the cache copy is thrown away.
  std::vector<Tensor> extend_leaves(const State* parent, std::span<const Segment> segments,
                                    int64_t capacity) override {
    if (segments.size() == 1) {
      std::unique_ptr<State> state = parent ? fork(*parent) : start(capacity);
      return {extend(*state, segments[0].ids, segments[0].skip)};
    }
    const int64_t batch = int64_t(segments.size());
    int64_t longest = 0;
    for (const Segment& s : segments) longest = std::max(longest, int64_t(s.ids.size()));
    std::vector<int32_t> ids(size_t(batch * longest), 0);
    std::vector<RowRange> rows;
    for (int64_t b = 0; b < batch; ++b) {
      const Segment& s = segments[size_t(b)];
      std::copy(s.ids.begin(), s.ids.end(), ids.begin() + b * longest);
      rows.push_back({b * longest, s.skip, int64_t(s.ids.size())});
    }
    std::optional<KVCache> cache;
    if (parent) cache = static_cast<const CacheState*>(parent)->cache.repeated(batch);
    Tensor hidden = run_blocks(ids, batch, longest, cache ? &*cache : nullptr);
    return split(head(hidden, rows), rows);
  }

 private:
  // Rows [offset + from, offset + to) of a hidden-state matrix.
  struct RowRange {
    int64_t offset, from, to;
  };

  Tensor run_blocks(std::span<const int32_t> ids, int64_t batch, int64_t seq, KVCache* cache) {
    Tensor hidden = model_.embed(ids);
    for (int l = 0; l < int(model_.num_layers()); ++l) model_.run_block(l, hidden, batch, seq, cache);
    return hidden;
  }

  // Final norm and lm_head on the selected rows only, in one matrix.
  Tensor head(const Tensor& hidden, const std::vector<RowRange>& rows) {
    const int64_t h = hidden.cols();
    int64_t total = 0;
    for (const RowRange& r : rows) total += r.to - r.from;
    if (total == 0) return Tensor({0, model_.vocab_size()});
    Tensor picked({total, h});
    float* dst = picked.ptr();
    for (const RowRange& r : rows) {
      dst = std::copy(hidden.row(r.offset + r.from), hidden.row(r.offset + r.to), dst);
    }
    model_.final_norm(picked);
    return model_.lm_head(picked);
  }

  static std::vector<Tensor> split(const Tensor& logits, const std::vector<RowRange>& rows) {
    std::vector<Tensor> out;
    int64_t at = 0;
    for (const RowRange& r : rows) {
      Tensor part({r.to - r.from, logits.cols()});
      std::copy(logits.row(at), logits.row(at + r.to - r.from), part.ptr());
      at += r.to - r.from;
      out.push_back(std::move(part));
    }
    return out;
  }

  Model& model_;
};

}  // namespace

std::unique_ptr<LmBackend> make_model_backend(Model& model) { return std::make_unique<ModelBackend>(model); }

}  // namespace moeq
