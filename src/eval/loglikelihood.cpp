#include "eval/loglikelihood.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace moeq {

std::vector<Tensor> LmBackend::extend_leaves(const State* parent, std::span<const Segment> segments,
                                             int64_t capacity) {
  std::vector<Tensor> logits;
  for (const Segment& segment : segments) {
    std::unique_ptr<State> state = parent ? fork(*parent) : start(capacity);
    logits.push_back(extend(*state, segment.ids, segment.skip));
  }
  return logits;
}

namespace {

// log-softmax of one logits row, in double: log p(t) = x[t] - lse.
struct RowStats {
  double lse;
  int64_t argmax;  // first maximum, as torch.argmax
};

RowStats row_stats(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - double(x[best]));
  return {double(x[best]) + std::log(sum), best};
}

using Range = std::span<const size_t>;  // request indices, sorted by their input tokens

class PrefixTreeScorer {
 public:
  PrefixTreeScorer(LmBackend& lm, std::span<const TokenizedRequest> requests, const ScoreOptions& options)
      : lm_(lm), requests_(requests), options_(options), results_(requests.size()) {}

  std::vector<LoglikResult> run(ScoreStats& stats) {
    std::vector<size_t> order(requests_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      auto x = input(a), y = input(b);
      return std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end());
    });
    for (size_t r : order) stats.request_tokens += requests_[r].input_length();
    process(order, 0, nullptr);
    stats.tokens += tokens_;
    return std::move(results_);
  }

 private:
  std::span<const int32_t> input(size_t r) const { return requests_[r].input(); }
  size_t length(size_t r) const { return input(r).size(); }

  // Sorted inputs: everything between the first and the last shares their common prefix.
  size_t common_end(Range range, size_t depth) const {
    auto first = input(range.front()), last = input(range.back());
    size_t end = depth, limit = std::min(first.size(), last.size());
    while (end < limit && first[end] == last[end]) ++end;
    return end;
  }

  size_t capacity(Range range) const {
    size_t most = 0;
    for (size_t r : range) most = std::max(most, length(r));
    return most;
  }

  bool is_leaf(Range range) const {
    return std::ranges::equal(input(range.front()), input(range.back()));
  }

  // First position in [begin, end) whose logits some request of `range` scores (end: none).
  // Every request here runs past `end` or ends there, so the positions needed form a suffix.
  size_t first_scored(Range range, size_t begin, size_t end) const {
    size_t first = end;
    for (size_t r : range) first = std::min(first, std::max(begin, length(r) - size_t(requests_[r].continuation)));
    return first;
  }

  // Logits rows for positions begin.. of every request in `range`: add the log-probabilities
  // of the continuation tokens they predict.
  void score_rows(Range range, size_t begin, const Tensor& logits) {
    const int64_t vocab = logits.cols();
    std::vector<std::optional<RowStats>> rows(size_t(logits.rows()));
    for (size_t r : range) {
      const TokenizedRequest& req = requests_[r];
      size_t len = length(r), scored = len - size_t(req.continuation);
      size_t from = std::max(begin, scored), to = std::min(begin + rows.size(), len);
      for (size_t p = from; p < to; ++p) {
        std::optional<RowStats>& s = rows[p - begin];
        const float* row = logits.row(int64_t(p - begin));
        if (!s) s = row_stats(row, vocab);
        int32_t target = req.tokens[p + 1];
        MOEQ_ASSERT(target >= 0 && target < vocab);
        results_[r].loglik += double(row[target]) - s->lse;
        results_[r].greedy = results_[r].greedy && s->argmax == target;
      }
    }
  }

  void finish(Range range) {
    done_ += int64_t(range.size());
    if (options_.progress) options_.progress(done_, tokens_);
  }

  // Splits requests continuing past `pos` by their token there (those ending at `pos` come
  // first in sorted order and are returned as `ended`), longest branches first.
  std::vector<Range> branches(Range range, size_t pos, Range* ended) const {
    size_t i = 0;
    while (i < range.size() && length(range[i]) == pos) ++i;
    *ended = range.first(i);
    std::vector<Range> out;
    while (i < range.size()) {
      size_t j = i + 1;
      while (j < range.size() && input(range[j])[pos] == input(range[i])[pos]) ++j;
      out.push_back(range.subspan(i, j - i));
      i = j;
    }
    std::stable_sort(out.begin(), out.end(), [&](Range a, Range b) { return capacity(a) > capacity(b); });
    return out;
  }

  void run_leaves(const std::vector<Range>& leaves, size_t pos, const LmBackend::State* state) {
    const size_t batch = size_t(std::max<int64_t>(1, options_.batch));
    for (size_t first = 0; first < leaves.size(); first += batch) {
      std::span<const Range> chunk = std::span(leaves).subspan(first, std::min(batch, leaves.size() - first));
      std::vector<LmBackend::Segment> segments;
      size_t most = 0;
      for (Range leaf : chunk) {
        size_t len = length(leaf.front());
        segments.push_back({input(leaf.front()).subspan(pos), int64_t(first_scored(leaf, pos, len) - pos)});
        most = std::max(most, len);
        tokens_ += int64_t(len - pos);
      }
      std::vector<Tensor> logits = lm_.extend_leaves(state, segments, int64_t(most));
      for (size_t k = 0; k < chunk.size(); ++k) {
        score_rows(chunk[k], pos + size_t(segments[k].skip), logits[k]);
        finish(chunk[k]);
      }
    }
  }

  // Every request in `range` shares input[0, depth), already run into `state` (null: nothing
  // run yet, depth 0).
  void process(Range range, size_t depth, std::unique_ptr<LmBackend::State> state) {
    size_t end = common_end(range, depth);
    if (end > depth) {
      if (!state) state = lm_.start(int64_t(capacity(range)));
      size_t scored = first_scored(range, depth, end);
      Tensor logits = lm_.extend(*state, input(range.front()).subspan(depth, end - depth), int64_t(scored - depth));
      tokens_ += int64_t(end - depth);
      score_rows(range, scored, logits);
    }
    Range ended;
    std::vector<Range> children = branches(range, end, &ended);
    if (!ended.empty()) finish(ended);

    std::vector<Range> leaves, inner;
    for (Range child : children) (is_leaf(child) ? leaves : inner).push_back(child);
    run_leaves(leaves, end, state.get());
    for (size_t i = 0; i < inner.size(); ++i) {
      bool last = i + 1 == inner.size();
      std::unique_ptr<LmBackend::State> branch = !state ? nullptr : last ? std::move(state) : lm_.fork(*state);
      process(inner[i], end, std::move(branch));
    }
  }

  LmBackend& lm_;
  std::span<const TokenizedRequest> requests_;
  const ScoreOptions& options_;
  std::vector<LoglikResult> results_;
  int64_t done_ = 0, tokens_ = 0;
};

}  // namespace

std::vector<LoglikResult> score_requests(LmBackend& lm, std::span<const TokenizedRequest> requests,
                                         const ScoreOptions& options, ScoreStats* stats) {
  for (const TokenizedRequest& r : requests)
    if (r.continuation < 1 || r.continuation > r.input_length())
      fail("loglikelihood request: continuation of {} tokens does not fit its {} input tokens", r.continuation,
           r.input_length());
  ScoreStats local;
  std::vector<LoglikResult> results = PrefixTreeScorer(lm, requests, options).run(stats ? *stats : local);
  return results;
}

}  // namespace moeq
