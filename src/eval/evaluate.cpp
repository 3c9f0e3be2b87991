#include "eval/evaluate.h"

#include <chrono>

#include "core/error.h"
#include "eval/data_files.h"
#include "eval/lm_backend.h"
#include "eval/perplexity.h"
#include "core/progress.h"
#include "eval/run_task.h"
#include "io/tokenizer.h"
#include "model/model.h"

namespace moeq {

EvalReport evaluate(Model& model, const Tokenizer& tokenizer, const EvalOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<Task> tasks;
  for (const std::string& name : options.tasks) tasks.push_back(load_task(name, {options.data_dir, options.limit}));

  EvalReport report;
  for (const std::filesystem::path& file : options.ppl_files) {
    std::vector<int32_t> ids = tokenizer.encode(read_data_file(file));
    if (int64_t(ids.size()) < options.max_length)
      fail("{}: {} tokens, fewer than one {}-token window", file.string(), ids.size(), options.max_length);
    ProgressBar bar(file.filename().string(), int64_t(ids.size()) / options.max_length);
    // Four windows a pass whatever --batch says (that is the tasks'): every documented
    // perplexity was computed so, and a forward of other shapes may round differently.
    PerplexityResult r = perplexity(model, ids,
                                    {.window = options.max_length,
                                     .windows_per_batch = 4,
                                     .progress = [&bar](int64_t done, int64_t tokens) { bar.update(done, tokens); }});
    report.ppl.push_back({file.string(), r.ppl, r.nll_sum, r.predicted, r.tokens, r.windows});
    report.tokens += r.windows * options.max_length;
  }

  std::unique_ptr<LmBackend> lm = make_model_backend(model);
  TextEncoder encode = [&](std::string_view text) { return tokenizer.encode(text); };
  const EncodeOptions encoding{.max_length = options.max_length, .eot_id = tokenizer.eos_id()};
  for (const Task& task : tasks) {
    TaskRun run = run_task(*lm, encode, task, encoding, {.batch = options.batch, .progress = {}});
    report.tasks.push_back(run.result);
    report.tokens += run.stats.tokens;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace moeq
