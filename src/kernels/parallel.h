// Loops that fork an OpenMP team only when it gets threads and the work is worth them.
//
// Why not `#pragma omp parallel for if (worth_it)`: with the condition false, or inside another
// parallel region (nesting is off), libgomp still builds a team of one and closes it with a
// barrier whose futex wake is a system call. A qwen2_moe decode step ran ~180 such empty regions
// per token, and in this machine's VM a system call costs microseconds: ~15% of decode time.
#pragma once

#include <omp.h>

#include <cstdint>

namespace moeq {

enum class Schedule { Static, Dynamic };

// Elements below which a loop of a few operations per element is not worth forking threads for.
inline constexpr int64_t kParallelElements = int64_t{1} << 15;

// Whether a parallel region started here would get more than one thread.
inline bool can_fork() { return omp_get_level() == 0 && omp_get_max_threads() > 1; }

// body(i) for i in [0, n): split over the threads when worth_it and possible, else a plain loop.
template <typename Body>
void parallel_for(int64_t n, bool worth_it, Schedule schedule, Body&& body) {
  if (!worth_it || n < 2 || !can_fork()) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
  if (schedule == Schedule::Dynamic) {
#pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < n; ++i) body(i);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

}  // namespace moeq
