#include "io/tokenizer_bpe.h"

#include <algorithm>
#include <queue>

#include "core/error.h"
#include "io/tokenizer_text.h"

namespace moeq::tok {
namespace {

// Words longer than this are not cached: they are rare and would only bloat the cache (the
// same limit as Hugging Face's BPE cache).
constexpr size_t kMaxCachedWordBytes = 256;

// One possible merge in the queue. Lowest rank first, then leftmost: the order in which Hugging
// Face's Word::merge_all applies merges, which decides the result when merges overlap.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
};
struct AppliedLater {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

// A merge as its two token strings: "a b" (the older form) or ["a", "b"].
std::pair<std::string, std::string> merge_parts(const JsonNode& merge) {
  if (merge.json().is_array()) {
    if (merge.array_size() != 2) merge.fail("must hold exactly two tokens");
    return {merge.element(0).string(), merge.element(1).string()};
  }
  const std::string line = merge.string();
  const size_t space = line.find(' ');
  if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
    merge.fail(fmt::format("'{}' is not two tokens separated by one space", line));
  return {line.substr(0, space), line.substr(space + 1)};
}

}  // namespace

bool BpeModel::Cache::lookup(std::string_view word, std::vector<int32_t>& out) const {
  const auto it = spans_.find(word);
  if (it == spans_.end()) return false;
  const auto [offset, count] = it->second;
  out.insert(out.end(), ids_.begin() + offset, ids_.begin() + offset + count);
  return true;
}

void BpeModel::Cache::store(std::string_view word, const int32_t* ids, size_t count) {
  if (word.size() > kMaxCachedWordBytes) return;
  spans_.emplace(word, std::pair{uint32_t(ids_.size()), uint32_t(count)});
  ids_.insert(ids_.end(), ids, ids + count);
}

BpeModel BpeModel::from_json(const JsonNode& model) {
  // Files written by old versions of tokenizers leave out the type of a BPE model.
  const std::string type = model.string_or("type", "BPE");
  if (type != "BPE") model.at("type").fail(fmt::format("is '{}'; only BPE models are supported", type));
  if (const auto dropout = model.find("dropout"); dropout && dropout->json() != 0)
    dropout->fail("is set; BPE dropout makes encoding random and is not supported");

  BpeModel bpe;
  bpe.continuing_subword_prefix_ = model.string_or("continuing_subword_prefix", "");
  bpe.end_of_word_suffix_ = model.string_or("end_of_word_suffix", "");
  bpe.fuse_unk_ = model.boolean_or("fuse_unk", false);
  bpe.byte_fallback_ = model.boolean_or("byte_fallback", false);
  bpe.ignore_merges_ = model.boolean_or("ignore_merges", false);
  bpe.read_vocab(model.at("vocab"));
  bpe.read_merges(model.at("merges"));
  if (const auto unk = model.find("unk_token")) {
    bpe.unk_id_ = bpe.token_to_id(unk->string());
    if (!bpe.unk_id_) unk->fail(fmt::format("names '{}', which is not in model.vocab", unk->string()));
  }
  for (int b = 0; b < 256; ++b)
    bpe.byte_ids_[b] = bpe.token_to_id(fmt::format("<0x{:02X}>", b)).value_or(-1);
  return bpe;
}

void BpeModel::read_vocab(const JsonNode& vocab) {
  if (!vocab.json().is_object()) vocab.fail("is not a JSON object of token → id");
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab.json().items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      vocab.fail(fmt::format("gives token '{}' the id {}, not a non-negative int32", token, id.dump()));
    vocab_.emplace(token, int32_t(id.get<int64_t>()));
    max_id = std::max(max_id, id.get<int64_t>());
  }
  id_to_token_.resize(size_t(max_id + 1));
  has_id_.resize(size_t(max_id + 1));
  for (const auto& [token, id] : vocab_) {
    id_to_token_[size_t(id)] = token;
    has_id_[size_t(id)] = true;
  }
}

void BpeModel::read_merges(const JsonNode& merges) {
  const size_t prefix_length = continuing_subword_prefix_.size();
  int32_t rank = 0;
  for (size_t i = 0; i < merges.array_size(); ++i) {
    const JsonNode merge = merges.element(i);
    // merges.txt files began with a "#version" line; converted files sometimes keep it.
    if (merge.json().is_string() && merge.string().starts_with("#version")) continue;
    const auto [left, right] = merge_parts(merge);
    const auto left_id = token_to_id(left);
    const auto right_id = token_to_id(right);
    if (!left_id) merge.fail(fmt::format("names token '{}', which is not in model.vocab", left));
    if (!right_id) merge.fail(fmt::format("names token '{}', which is not in model.vocab", right));
    if (right.size() < prefix_length)
      merge.fail(fmt::format("token '{}' is shorter than continuing_subword_prefix", right));
    const std::string merged = left + right.substr(prefix_length);
    const auto new_id = token_to_id(merged);
    if (!new_id) merge.fail(fmt::format("makes '{}', which is not in model.vocab", merged));
    // A repeated pair takes its last rank, as Hugging Face's HashMap collect does.
    merges_[pair_key(*left_id, *right_id)] = Merge{rank++, *new_id};
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= id_to_token_.size() || !has_id_[size_t(id)]) return nullptr;
  return &id_to_token_[size_t(id)];
}

void BpeModel::encode(std::string_view word, Cache* cache, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  if (cache && cache->lookup(word, out)) return;
  std::vector<Symbol> symbols;
  initial_symbols(word, symbols);
  merge_all(symbols);
  const size_t first = out.size();
  for (const Symbol& symbol : symbols)
    if (!symbol.removed) out.push_back(symbol.id);
  if (cache) cache->store(word, out.data() + first, out.size() - first);
}

// One symbol per character (with the subword prefix / word suffix where configured); characters
// missing from the vocabulary become their <0xNN> byte tokens (byte_fallback) or the unknown
// token, consecutive unknowns fused into one when fuse_unk is set. Mirrors tokenizers' merge_word,
// including where it emits a pending unknown token.
void BpeModel::initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
  symbols.reserve(word.size());
  const auto add = [&](int32_t id) {
    const auto index = int32_t(symbols.size());
    symbols.push_back(Symbol{id, index - 1, index + 1, false});
  };
  int32_t pending_unk = -1;  // an unknown token not yet emitted (-1: none)
  std::string decorated;
  for (size_t pos = 0; pos < word.size();) {
    const size_t length = std::min(utf8_length(static_cast<unsigned char>(word[pos])), word.size() - pos);
    std::string_view key = word.substr(pos, length);
    const bool first = pos == 0;
    pos += length;
    const bool last = pos == word.size();
    if ((!first && !continuing_subword_prefix_.empty()) || (last && !end_of_word_suffix_.empty())) {
      decorated = first ? std::string() : continuing_subword_prefix_;
      decorated += key;
      if (last) decorated += end_of_word_suffix_;
      key = decorated;
    }
    if (const auto id = token_to_id(key)) {
      if (pending_unk >= 0) add(pending_unk);
      pending_unk = -1;
      add(*id);
      continue;
    }
    const bool bytes_known = std::all_of(key.begin(), key.end(), [&](char c) {
      return byte_ids_[static_cast<unsigned char>(c)] >= 0;
    });
    if (byte_fallback_ && bytes_known) {
      for (char c : key) add(byte_ids_[static_cast<unsigned char>(c)]);
      continue;
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) add(pending_unk);
  if (!symbols.empty()) symbols.back().next = -1;
}

void BpeModel::merge_all(std::vector<Symbol>& symbols) const {
  std::priority_queue<Candidate, std::vector<Candidate>, AppliedLater> queue;
  const auto consider = [&](int32_t left) {
    const Symbol& symbol = symbols[size_t(left)];
    if (symbol.next < 0) return;
    const auto it = merges_.find(pair_key(symbol.id, symbols[size_t(symbol.next)].id));
    if (it != merges_.end()) queue.push(Candidate{it->second.rank, left, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < int32_t(symbols.size()); ++i) consider(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& symbol = symbols[size_t(top.pos)];
    if (symbol.removed || symbol.next < 0) continue;
    const Symbol right = symbols[size_t(symbol.next)];
    // The pair may have changed since this candidate was queued: then it is stale.
    const auto it = merges_.find(pair_key(symbol.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    symbols[size_t(symbol.next)].removed = true;
    symbol.id = top.new_id;
    symbol.next = right.next;
    if (right.next >= 0) symbols[size_t(right.next)].prev = top.pos;
    if (symbol.prev >= 0) consider(symbol.prev);
    consider(top.pos);
  }
}

}  // namespace moeq::tok
