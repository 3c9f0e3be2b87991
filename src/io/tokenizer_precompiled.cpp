// The Precompiled normalizer: SentencePiece's normalization rules (nmt_nfkc and the like) as
// tokenizer.json carries them for SentencePiece-converted tokenizers. `precompiled_charsmap` is
// base64 of [u32 trie size in bytes][the trie: u32 units of a darts-clone double array][the
// replacements: NUL-terminated UTF-8 strings], each trie key a source string, its value the offset
// of its replacement. Hugging Face tokenizers applies it per extended grapheme cluster: a cluster
// shorter than 6 bytes whose bytes start with a key is replaced whole by the first (shortest)
// key's replacement; any other cluster is rewritten character by character. That quirk (a
// cluster may lose the marks after a matched prefix) is what SentencePiece-converted tokenizers
// were validated with, so moeq keeps it.
#include <cstring>

#include <utf8proc.h>

#include "core/error.h"
#include "io/tokenizer_impl.h"
#include "io/tokenizer_text.h"

namespace moeq::tok {
namespace {

// Standard base64 with '=' padding; nullopt on any other character or a bad length.
std::optional<std::string> decode_base64(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const size_t pad = i + 4 == text.size() ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    uint32_t bits = 0;
    for (size_t j = 0; j < 4; ++j) {
      const int v = j >= 4 - pad ? 0 : value(text[i + j]);
      if (v < 0) return std::nullopt;
      bits = bits << 6 | uint32_t(v);
    }
    for (size_t j = 0; j < 3 - pad; ++j) out += char(bits >> (16 - 8 * j) & 0xFF);
  }
  return out;
}

class Precompiled final : public Normalizer {
 public:
  explicit Precompiled(const JsonNode& charsmap) {
    const std::optional<std::string> blob = decode_base64(charsmap.string());
    if (!blob) charsmap.fail("is not base64");
    if (blob->size() < 4) charsmap.fail(fmt::format("holds {} bytes, fewer than the 4 of its trie size", blob->size()));
    uint32_t trie_bytes = 0;
    std::memcpy(&trie_bytes, blob->data(), 4);
    if (trie_bytes == 0 || trie_bytes % 4 != 0 || trie_bytes > blob->size() - 4)
      charsmap.fail(fmt::format("states a trie of {} bytes: not a positive multiple of 4 within the {} bytes that follow",
                                trie_bytes, blob->size() - 4));
    units_.resize(trie_bytes / 4);
    std::memcpy(units_.data(), blob->data() + 4, trie_bytes);
    replacements_ = blob->substr(4 + trie_bytes);
  }

  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t begin = 0, end; begin < text.size(); begin = end) {
      end = grapheme_end(text, begin);
      const std::string_view cluster = std::string_view(text).substr(begin, end - begin);
      if (const auto whole = cluster.size() < 6 ? replacement(cluster) : std::nullopt) {
        out += *whole;
        continue;
      }
      for (size_t pos = 0, next; pos < cluster.size(); pos = next) {
        next = pos + utf8_length(static_cast<unsigned char>(cluster[pos]));
        const std::string_view character = cluster.substr(pos, next - pos);
        out += replacement(character).value_or(character);
      }
    }
    text = std::move(out);
  }

 private:
  // The replacement of the shortest key that `key` starts with (darts-clone's
  // commonPrefixSearch, first result). A corrupt trie reads as "no key", never out of bounds; the
  // constructor guarantees the root unit.
  std::optional<std::string_view> replacement(std::string_view key) const {
    size_t node = offset(units_[0]);
    for (const char ch : key) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == 0) break;
      node ^= c;
      if (node >= units_.size() || label(units_[node]) != c) return std::nullopt;
      const uint32_t unit = units_[node];
      node ^= offset(unit);
      if (has_leaf(unit) && node < units_.size()) return replacement_at(units_[node] & 0x7FFFFFFFu);
    }
    return std::nullopt;
  }

  std::optional<std::string_view> replacement_at(size_t at) const {
    if (at >= replacements_.size()) return std::nullopt;
    const size_t end = replacements_.find('\0', at);
    return std::string_view(replacements_).substr(at, (end == std::string::npos ? replacements_.size() : end) - at);
  }

  // darts-clone's unit layout.
  static bool has_leaf(uint32_t unit) { return (unit >> 8 & 1) != 0; }
  static uint32_t label(uint32_t unit) { return unit & (0x80000000u | 0xFF); }
  static size_t offset(uint32_t unit) { return size_t(unit >> 10) << ((unit & (1u << 9)) >> 6); }

  // Where the extended grapheme cluster starting at `begin` ends (UAX #29, through utf8proc).
  static size_t grapheme_end(std::string_view text, size_t begin) {
    utf8proc_int32_t state = 0;
    char32_t previous = utf8_decode(text, begin);
    size_t end = begin + utf8_length(static_cast<unsigned char>(text[begin]));
    for (; end < text.size(); end += utf8_length(static_cast<unsigned char>(text[end]))) {
      const char32_t next = utf8_decode(text, end);
      if (utf8proc_grapheme_break_stateful(utf8proc_int32_t(previous), utf8proc_int32_t(next), &state)) break;
      previous = next;
    }
    return end;
  }

  std::vector<uint32_t> units_;
  std::string replacements_;
};

}  // namespace

std::unique_ptr<Normalizer> make_precompiled(const JsonNode& node) {
  return std::make_unique<Precompiled>(node.at("precompiled_charsmap"));
}

}  // namespace moeq::tok
