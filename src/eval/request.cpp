#include "eval/request.h"

#include <string>

#include "core/error.h"
#include "eval/task_text.h"

namespace moeq {

TokenizedRequest encode_request(const TextEncoder& encode, std::string_view context,
                                std::string_view continuation, const EncodeOptions& options) {
  std::string_view kept = py_rstrip(context);
  std::string cont = std::string(context.substr(kept.size())) + std::string(continuation);

  std::vector<int32_t> context_enc, continuation_enc;
  if (context.empty()) {
    // lm-eval scores a continuation without context after the end-of-text token.
    if (!options.eot_id) fail("empty context needs an end-of-text token, and the tokenizer has none");
    context_enc = {*options.eot_id};
    continuation_enc = encode(cont);
  } else {
    std::vector<int32_t> whole = encode(std::string(kept) + cont);
    context_enc = encode(kept);
    if (context_enc.empty()) fail("context '{}' encodes to no tokens", context);
    if (context_enc.size() < whole.size())
      continuation_enc.assign(whole.begin() + std::ptrdiff_t(context_enc.size()), whole.end());
  }
  if (continuation_enc.empty()) fail("continuation '{}' encodes to no tokens after its context", continuation);
  if (int64_t(continuation_enc.size()) > options.max_length)
    fail("continuation of {} tokens is longer than --max-length {}", continuation_enc.size(), options.max_length);

  TokenizedRequest request;
  request.continuation = int64_t(continuation_enc.size());
  size_t total = context_enc.size() + continuation_enc.size();
  size_t keep = std::min(total, size_t(options.max_length + 1));
  size_t drop = total - keep;  // from the front of the context
  request.tokens.assign(context_enc.begin() + std::ptrdiff_t(std::min(drop, context_enc.size())), context_enc.end());
  request.tokens.insert(request.tokens.end(), continuation_enc.begin(), continuation_enc.end());
  return request;
}

}  // namespace moeq
