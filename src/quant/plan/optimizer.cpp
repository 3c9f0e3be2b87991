#include "quant/plan/optimizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "core/error.h"
#include "quant/plan/plan.h"

namespace moeq::plan {
namespace {

// Costs are bits·numel, exact in int64; losses as given.
struct Problem {
  std::vector<std::vector<int64_t>> cost;
  std::vector<std::vector<double>> loss;
  int64_t budget = 0;
  double eps = 0;           // smallest loss change that counts as an improvement
  double lambda_guess = 0;  // largest |loss| / largest cost
};

struct State {
  std::vector<size_t> x;
  int64_t used = 0;
  double loss = 0;
};

struct Move {
  size_t unit, option;
  int64_t dcost;
  double dloss;
};

void apply(const Problem& p, State& s, size_t u, size_t c) {
  s.used += p.cost[u][c] - p.cost[u][s.x[u]];
  s.loss += p.loss[u][c] - p.loss[u][s.x[u]];
  s.x[u] = c;
}

std::vector<Move> moves(const Problem& p, const State& s) {
  std::vector<Move> out;
  for (size_t u = 0; u < p.cost.size(); ++u)
    for (size_t c = 0; c < p.cost[u].size(); ++c)
      if (c != s.x[u])
        out.push_back({u, c, p.cost[u][c] - p.cost[u][s.x[u]], p.loss[u][c] - p.loss[u][s.x[u]]});
  return out;
}

// Each unit's argmin of loss + λ·cost, ties to the cheaper option.
State hull(const Problem& p, double lambda) {
  State s;
  for (size_t u = 0; u < p.cost.size(); ++u) {
    size_t best = 0;
    for (size_t c = 1; c < p.cost[u].size(); ++c) {
      double a = p.loss[u][c] + lambda * double(p.cost[u][c]), b = p.loss[u][best] + lambda * double(p.cost[u][best]);
      if (a < b || (a == b && p.cost[u][c] < p.cost[u][best])) best = c;
    }
    s.x.push_back(best);
    s.used += p.cost[u][best];
    s.loss += p.loss[u][best];
  }
  return s;
}

// Spends slack on the move with the best loss drop per bit until none fits.
void fill(const Problem& p, State& s) {
  for (;;) {
    std::optional<Move> best;
    auto rate = [](const Move& m) { return m.dcost <= 0 ? std::numeric_limits<double>::infinity() : -m.dloss / double(m.dcost); };
    for (const Move& m : moves(p, s)) {
      if (m.dcost > p.budget - s.used || m.dloss >= -p.eps) continue;
      if (!best || rate(m) > rate(*best) || (rate(m) == rate(*best) && m.dloss < best->dloss)) best = m;
    }
    if (!best) return;
    apply(p, s, best->unit, best->option);
  }
}

// Gives up bits at the least loss per bit until the budget holds. A solution exists: the
// cheapest options fit (checked before).
void repair(const Problem& p, State& s) {
  while (s.used > p.budget) {
    std::optional<Move> best;
    auto rate = [](const Move& m) { return m.dloss / double(-m.dcost); };
    for (const Move& m : moves(p, s))
      if (m.dcost < 0 && (!best || rate(m) < rate(*best))) best = m;
    MOEQ_ASSERT(best);
    apply(p, s, best->unit, best->option);
  }
}

// The best pair (one unit up, another down) that fits the budget and lowers the loss; applies
// it and returns true, or returns false. Downgrades sorted by bits freed, with suffix minima of
// their loss from two different units, answer each upgrade in O(log n).
bool exchange(const Problem& p, State& s) {
  const int64_t slack = p.budget - s.used;
  std::vector<Move> ups, downs;
  for (const Move& m : moves(p, s)) {
    if (m.dcost > slack && m.dloss < -p.eps) ups.push_back(m);
    if (m.dcost < 0) downs.push_back(m);
  }
  if (ups.empty() || downs.empty()) return false;
  std::sort(downs.begin(), downs.end(), [](const Move& a, const Move& b) { return a.dcost > b.dcost; });
  std::vector<std::pair<const Move*, const Move*>> suffix(downs.size() + 1, {nullptr, nullptr});
  for (size_t i = downs.size(); i-- > 0;) {
    auto [first, second] = suffix[i + 1];
    const Move* m = &downs[i];
    if (!first || m->dloss < first->dloss) {
      if (!first || first->unit != m->unit) second = first;
      first = m;
    } else if (m->unit != first->unit && (!second || m->dloss < second->dloss)) {
      second = m;
    }
    suffix[i] = {first, second};
  }
  const Move *best_up = nullptr, *best_down = nullptr;
  double best = -p.eps;
  for (const Move& up : ups) {
    int64_t need = up.dcost - slack;  // bits the downgrade must free
    auto at = std::partition_point(downs.begin(), downs.end(), [&](const Move& d) { return -d.dcost < need; });
    auto [first, second] = suffix[size_t(at - downs.begin())];
    const Move* down = first && first->unit == up.unit ? second : first;
    if (down && up.dloss + down->dloss < best) {
      best = up.dloss + down->dloss;
      best_up = &up;
      best_down = down;
    }
  }
  if (!best_up) return false;
  apply(p, s, best_up->unit, best_up->option);
  apply(p, s, best_down->unit, best_down->option);
  return true;
}

State improve(const Problem& p, State s) {
  repair(p, s);
  do fill(p, s);
  while (exchange(p, s));
  return s;
}

Problem make_problem(std::span<const QuantUnit> units, std::span<const std::vector<Candidate>> candidates,
                     double target_bits) {
  if (units.size() != candidates.size())
    fail("allocate_bits: {} candidate lists for {} units", candidates.size(), units.size());
  Problem p;
  int64_t total = 0, cheapest = 0, dearest = 1;
  double scale = 0;
  for (size_t u = 0; u < units.size(); ++u) {
    if (candidates[u].empty()) fail("allocate_bits: unit '{}' has no candidate", units[u].name);
    std::vector<int64_t> cost;
    std::vector<double> loss;
    for (const Candidate& c : candidates[u]) {
      if (!std::isfinite(c.loss)) fail("allocate_bits: unit '{}' has a non-finite loss", units[u].name);
      cost.push_back(int64_t(c.action.nominal_bits()) * units[u].numel());
      loss.push_back(c.loss);
      scale = std::max(scale, std::fabs(c.loss));
    }
    total += units[u].numel();
    cheapest += *std::min_element(cost.begin(), cost.end());
    dearest = std::max(dearest, *std::max_element(cost.begin(), cost.end()));
    p.cost.push_back(std::move(cost));
    p.loss.push_back(std::move(loss));
  }
  // The largest budget whose average, as a double, does not exceed the target.
  p.budget = int64_t(std::floor(target_bits * double(total)));
  while (p.budget > 0 && double(p.budget) / double(total) > target_bits) --p.budget;
  while (double(p.budget + 1) / double(total) <= target_bits) ++p.budget;
  if (cheapest > p.budget)
    fail("allocate_bits: target {} bits is below the cheapest candidates' average {:.4f}", target_bits,
         double(cheapest) / double(total));
  p.eps = 1e-12 * scale * double(units.size());
  p.lambda_guess = scale / double(dearest);
  return p;
}

// Bisection for the smallest λ whose hull solution fits; returns λ and the hull solutions just
// under and over the budget. The bracket starts where loss and λ·cost are of one size; the
// search is geometric because the breakpoints may span many orders of magnitude.
double bisect(const Problem& p, State& under, State& over) {
  under = hull(p, 0);
  if (under.used <= p.budget) {
    over = under;
    return 0;
  }
  const double tiny = std::numeric_limits<double>::min();
  double hi = std::max(p.lambda_guess, tiny), lo = hi / 2;
  if (hull(p, hi).used <= p.budget) {
    while (hi > tiny && hull(p, lo).used <= p.budget) hi = lo, lo /= 2;
  } else {
    while (hull(p, hi).used > p.budget) lo = hi, hi *= 2;
  }
  for (int i = 0; i < 200 && hi > lo * (1 + 1e-15); ++i) {
    double mid = std::sqrt(lo * hi);
    (hull(p, mid).used > p.budget ? lo : hi) = mid;
  }
  under = hull(p, hi);
  over = hull(p, lo);
  return hi;
}

// Exact: dynamic programming over the Pareto frontier of (bits, loss) of the first u units,
// pruned of dominated points and of points that cannot fit with the cheapest rest. Returns
// nullopt when the work (frontier points × options) would pass `max_work`.
std::optional<State> exact(const Problem& p, int64_t max_work) {
  struct Point {
    int64_t cost;
    double loss;
    uint32_t parent;  // index in the previous frontier
    uint32_t option;
  };
  const size_t n = p.cost.size();
  std::vector<int64_t> cheapest_rest(n + 1, 0);
  for (size_t u = n; u-- > 0;)
    cheapest_rest[u] = cheapest_rest[u + 1] + *std::min_element(p.cost[u].begin(), p.cost[u].end());
  std::vector<std::vector<Point>> frontiers{{{0, 0.0, 0, 0}}};
  int64_t work = 0;
  for (size_t u = 0; u < n; ++u) {
    const std::vector<Point>& prev = frontiers.back();
    work += int64_t(prev.size() * p.cost[u].size());
    if (work > max_work) return std::nullopt;
    // The frontier shifted by each option is sorted by cost already: merge, don't sort.
    auto by_cost = [](const Point& a, const Point& b) { return a.cost != b.cost ? a.cost < b.cost : a.loss < b.loss; };
    std::vector<Point> next;
    for (size_t c = 0; c < p.cost[u].size(); ++c) {
      size_t merged = next.size();
      for (size_t i = 0; i < prev.size(); ++i) {
        int64_t cost = prev[i].cost + p.cost[u][c];
        if (cost + cheapest_rest[u + 1] > p.budget) break;
        next.push_back({cost, prev[i].loss + p.loss[u][c], uint32_t(i), uint32_t(c)});
      }
      std::inplace_merge(next.begin(), next.begin() + std::ptrdiff_t(merged), next.end(), by_cost);
    }
    std::vector<Point> kept;  // costs rise, losses fall
    for (const Point& q : next)
      if (kept.empty() || q.loss < kept.back().loss) kept.push_back(q);
    frontiers.push_back(std::move(kept));
  }
  State s;
  s.x.resize(n);
  size_t at = frontiers.back().size() - 1;  // the lowest loss
  s.used = frontiers.back()[at].cost;
  s.loss = frontiers.back()[at].loss;
  for (size_t u = n; u-- > 0;) {
    const Point& q = frontiers[u + 1][at];
    s.x[u] = q.option;
    at = q.parent;
  }
  return s;
}

}  // namespace

Allocation allocate_bits(std::span<const QuantUnit> units, std::span<const std::vector<Candidate>> candidates,
                         const AllocateOptions& options) {
  Problem p = make_problem(units, candidates, options.target_bits);
  State under, over;
  Allocation out;
  out.lambda = bisect(p, under, over);
  std::optional<State> best = exact(p, options.max_exact_work);
  out.exact = best.has_value();
  if (!best) {
    State a = improve(p, under), b = improve(p, over);
    best = b.loss < a.loss ? b : a;
  }
  int64_t total = 0;
  for (const QuantUnit& u : units) total += u.numel();
  out.choice = best->x;
  for (size_t u = 0; u < units.size(); ++u) out.total_loss += p.loss[u][best->x[u]];
  out.average_bits = double(best->used) / double(total);
  return out;
}

Recipe allocation_recipe(std::span<const QuantUnit> units, std::span<const std::vector<Candidate>> candidates,
                         const Allocation& allocation, double target_bits) {
  std::vector<std::optional<QuantAction>> actions;
  for (size_t u = 0; u < units.size(); ++u) actions.push_back(candidates[u][allocation.choice[u]].action);
  Recipe recipe;
  recipe.description = fmt::format("target-bits allocation: {:.4f} average bits (target {}), expected loss {:.6g}",
                                   allocation.average_bits, target_bits, allocation.total_loss);
  recipe.rules = rules_for(units, actions);
  for (Rule& rule : recipe.rules) rule.note = "target-bits allocation";
  return recipe;
}

}  // namespace moeq::plan
