#include "eval/task_metrics.h"

#include <cmath>

#include "core/error.h"

namespace moeq {
namespace {

// np.argmax: the first index holding the largest score.
template <typename Score>
size_t argmax(size_t n, Score score) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i)
    if (score(i) > score(best)) best = i;
  return best;
}

}  // namespace

TaskResult task_result(const Task& task, std::span<const LoglikResult> results) {
  TaskResult out{task.name, int64_t(task.docs.size()), 0, std::nullopt, std::nullopt};
  if (task.docs.empty()) fail("task '{}' has no documents", task.name);
  size_t next = 0;
  double correct = 0, correct_norm = 0, loglik_sum = 0;
  for (const Doc& doc : task.docs) {
    if (next + doc.choices.size() > results.size())
      fail("task '{}': {} results for more choices", task.name, results.size());
    std::span<const LoglikResult> r = results.subspan(next, doc.choices.size());
    next += doc.choices.size();
    if (task.metric == TaskMetric::Lambada) {
      correct += r[0].greedy ? 1 : 0;
      loglik_sum += r[0].loglik;
      continue;
    }
    size_t pick = argmax(r.size(), [&](size_t i) { return r[i].loglik; });
    size_t pick_norm = argmax(r.size(), [&](size_t i) {
      return r[i].loglik / double(doc.choices[i].continuation.size());
    });
    correct += pick == size_t(doc.gold) ? 1 : 0;
    correct_norm += pick_norm == size_t(doc.gold) ? 1 : 0;
  }
  if (next != results.size()) fail("task '{}': {} results for {} choices", task.name, results.size(), next);
  const double n = double(task.docs.size());
  out.acc = correct / n;
  if (task.metric == TaskMetric::Lambada) out.ppl = std::exp(-loglik_sum / n);
  else if (task.reports_acc_norm) out.acc_norm = correct_norm / n;
  return out;
}

}  // namespace moeq
