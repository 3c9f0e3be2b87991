// The target-bits optimiser: one candidate action per unit, minimising the summed expected loss
// subject to the average bits (the paper's count, bits.h) being at most a target.
//
// It is a multiple-choice knapsack. Bisection on a Lagrange multiplier λ gives the two hull
// solutions around the budget (each unit takes argmin loss + λ·bits·numel); the one under budget
// is filled greedily, the one over budget repaired greedily and then filled; both are improved
// by exchanges (one unit up, another down) while the loss drops, and the better one is taken.
// Its gap to the optimum is at most about one unit's loss step, small for a model of hundreds of
// units. When affordable (a few hundred units whose sizes share a large common factor, as
// experts do) an exact dynamic programme over the (bits, loss) Pareto frontier is used instead.
// The budget is never exceeded.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "quant/plan/recipe.h"

namespace moeq::plan {

struct Candidate {
  QuantAction action;  // its bits are action.nominal_bits() (16 for keep)
  double loss = 0;     // expected loss increase, e.g. Hessian-weighted output error × routing frequency
};

struct Allocation {
  std::vector<size_t> choice;  // per unit, an index into its candidates
  double total_loss = 0;
  double average_bits = 0;     // Σ bits·numel / Σ numel over all the units
  double lambda = 0;           // the multiplier at which the hull solution fits the budget
  bool exact = false;          // found by the exact programme (else by the Lagrangian heuristic)
};

struct AllocateOptions {
  double target_bits = 4;  // maximum of Σ bits·numel / Σ numel
  // Use the exact programme while its work (frontier points × candidates, summed over units)
  // stays below this; 0 forces the Lagrangian heuristic.
  int64_t max_exact_work = 50'000'000;
};

// candidates[i] are the options of units[i] (only numel() of a unit is used). Throws moeq::Error
// when a unit has no candidate, a loss is not finite, or even the cheapest candidates exceed
// the target.
Allocation allocate_bits(std::span<const QuantUnit> units, std::span<const std::vector<Candidate>> candidates,
                         const AllocateOptions& options);

// The allocation as a re-runnable recipe (rules_for), with its bits and loss in the description.
Recipe allocation_recipe(std::span<const QuantUnit> units, std::span<const std::vector<Candidate>> candidates,
                         const Allocation& allocation, double target_bits);

}  // namespace moeq::plan
