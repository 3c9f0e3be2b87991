#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace moeq {

KVCache::KVCache(const KvShape& s) : shape_(s), lengths_(size_t(s.layers), 0) {
  if (s.layers < 1 || s.batch < 1 || s.max_len < 1 || s.heads < 1)
    fail("KVCache: layers, batch, max_len and heads must be positive (got {}, {}, {}, {})", s.layers, s.batch,
         s.max_len, s.heads);
  const size_t slots = size_t(s.layers * s.batch * s.heads * s.max_len);
  k_.resize(slots * size_t(s.k_dim));
  v_.resize(slots * size_t(s.v_dim));
}

void KVCache::truncate(int64_t len) {
  for (auto& l : lengths_) l = std::min(l, std::max<int64_t>(len, 0));
}

KVCache KVCache::repeated(int64_t copies) const {
  if (shape_.batch != 1) fail("KVCache::repeated: source batch is {}, expected 1", shape_.batch);
  KvShape s = shape_;
  s.batch = copies;
  KVCache out(s);
  out.lengths_ = lengths_;
  for (int64_t l = 0; l < s.layers; ++l)
    for (int64_t b = 0; b < copies; ++b)
      for (int64_t h = 0; h < s.heads; ++h) {
        std::copy_n(keys(l, 0, h), s.max_len * s.k_dim, out.keys(l, b, h));
        std::copy_n(values(l, 0, h), s.max_len * s.v_dim, out.values(l, b, h));
      }
  return out;
}

}  // namespace moeq
