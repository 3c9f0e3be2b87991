// Decoders of tokenizer.json: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace,
// BPEDecoder and Sequence, each a step of tokenizers' decode_chain.
#include <algorithm>
#include <charconv>

#include "core/error.h"
#include "io/tokenizer_impl.h"

namespace moeq::tok {
namespace {

// Byte offsets where each character of `text` begins.
std::vector<size_t> char_starts(std::string_view text) {
  std::vector<size_t> starts;
  for (size_t pos = 0; pos < text.size(); pos += utf8_length(static_cast<unsigned char>(text[pos])))
    starts.push_back(pos);
  return starts;
}

// Tokens spelled in the byte-level alphabet back to bytes, then to text (invalid UTF-8 becomes
// U+FFFD). A token with a character outside the alphabet (an added token) is taken as it is.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
    std::string bytes;
    for (const std::string& token : tokens) {
      const size_t mark = bytes.size();
      for (size_t pos = 0; pos < token.size(); pos += utf8_length(static_cast<unsigned char>(token[pos]))) {
        const int byte = alphabet.byte_of(utf8_decode(token, pos));
        if (byte < 0) {
          bytes.resize(mark);
          bytes += token;
          break;
        }
        bytes += static_cast<char>(byte);
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

// ▁ back to spaces. In the first token every ▁ is dropped unless prepend_scheme is "never":
// tokenizers does exactly this (it means to drop the ▁ the pre-tokenizer put in front).
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool drop_in_first) : replacement_(std::move(replacement)), drop_in_first_(drop_in_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& token = tokens[i];
      for (size_t pos = 0; pos < token.size(); pos += utf8_length(static_cast<unsigned char>(token[pos]))) {
        if (token.compare(pos, replacement_.size(), replacement_) != 0) {
          out.append(token, pos, utf8_length(static_cast<unsigned char>(token[pos])));
        } else if (i != 0 || !drop_in_first_) {
          out += ' ';
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool drop_in_first_;
};

// Runs of <0xNN> tokens back to the bytes they stand for: one string where those bytes are valid
// UTF-8, else one U+FFFD per byte.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    const auto flush = [&] {
      if (bytes.empty()) return;
      if (find_invalid_utf8(bytes)) {
        out.insert(out.end(), bytes.size(), "\xEF\xBF\xBD");
      } else {
        out.push_back(bytes);
      }
      bytes.clear();
    };
    for (std::string& token : tokens) {
      if (const auto byte = byte_token(token)) {
        bytes += static_cast<char>(*byte);
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static std::optional<uint8_t> byte_token(std::string_view token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
    uint8_t value = 0;
    const auto [end, error] = std::from_chars(token.data() + 3, token.data() + 5, value, 16);
    if (error != std::errc() || end != token.data() + 5) return std::nullopt;
    return value;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from each token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      const std::vector<size_t> starts = char_starts(token);
      const size_t n = starts.size();
      const auto is_content = [&](size_t i) {
        const size_t end = i + 1 < n ? starts[i + 1] : token.size();
        return token.compare(starts[i], end - starts[i], content_) == 0;
      };
      size_t first = 0;
      while (first < std::min(start_, n) && is_content(first)) ++first;
      size_t last = n;
      while (n - last < std::min(stop_, n) && is_content(last - 1)) --last;
      if (last <= first) {
        token.clear();
        continue;
      }
      const size_t begin = starts[first];
      const size_t end = last < n ? starts[last] : token.size();
      token = token.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_;
  size_t stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) token = replace_all(pattern_, token, content_);
  }

 private:
  Regex pattern_;
  std::string content_;
};

// The end-of-word suffix becomes a space, except after the last token.
class WordSuffixDecoder final : public Decoder {
 public:
  explicit WordSuffixDecoder(std::string_view suffix) : pattern_(suffix, Regex::Kind::Literal, "BPEDecoder suffix") {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = replace_all(pattern_, tokens[i], i + 1 == tokens.size() ? "" : " ");
  }

 private:
  Regex pattern_;
};

class SequenceOfDecoders final : public Decoder {
 public:
  explicit SequenceOfDecoders(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

size_t read_count(const JsonNode& node, std::string_view key) {
  const auto member = node.find(key);
  if (!member) return 0;
  if (member->integer() < 0) member->fail("is negative");
  return size_t(member->integer());
}

bool metaspace_drops_in_first(const JsonNode& node) {
  if (const auto scheme = node.find("prepend_scheme")) return scheme->string() != "never";
  return node.boolean_or("add_prefix_space", true);
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const JsonNode& node) {
  const std::string type = node.type();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace")
    return std::make_unique<MetaspaceDecoder>(node.string_or("replacement", "\xE2\x96\x81"), metaspace_drops_in_first(node));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(node.at("content").string(), read_count(node, "start"), read_count(node, "stop"));
  if (type == "Replace") return std::make_unique<ReplaceDecoder>(read_pattern(node.at("pattern")), node.at("content").string());
  if (type == "BPEDecoder") return std::make_unique<WordSuffixDecoder>(node.string_or("suffix", "</w>"));
  if (type == "Sequence") return std::make_unique<SequenceOfDecoders>(make_each(node.at("decoders"), make_decoder));
  node.at("type").fail(fmt::format("is '{}', a decoder moeq does not support", type));
}

}  // namespace moeq::tok
