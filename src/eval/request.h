// Loglikelihood requests as token sequences, encoded exactly like lm-evaluation-harness's
// HFLM._encode_pair and truncated like HFLM._loglikelihood_tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace moeq {

// Text → token ids without special tokens (HF tokenizer.encode(text, add_special_tokens=False)).
using TextEncoder = std::function<std::vector<int32_t>(std::string_view)>;

struct EncodeOptions {
  int64_t max_length = 512;        // model inputs longer than this are left-truncated
  std::optional<int32_t> eot_id;   // stands in for an empty context (lm-eval's eot_token_id)
};

// tokens = (context_enc + continuation_enc), keeping its last max_length + 1 tokens. The model
// reads tokens[:-1]; the last `continuation` positions of that input predict the continuation,
// i.e. tokens[size - continuation ..]. `context` counts the context tokens that survived.
struct TokenizedRequest {
  std::vector<int32_t> tokens;
  int64_t continuation = 0;

  int64_t input_length() const { return int64_t(tokens.size()) - 1; }
  std::span<const int32_t> input() const { return {tokens.data(), tokens.size() - 1}; }
};

// The context's trailing whitespace moves into the continuation; whole = enc(context +
// continuation); context_enc = enc(context); continuation_enc = whole[len(context_enc):].
// Throws moeq::Error when the continuation encodes to no tokens or alone exceeds max_length.
TokenizedRequest encode_request(const TextEncoder& encode, std::string_view context,
                                std::string_view continuation, const EncodeOptions& options);

}  // namespace moeq
