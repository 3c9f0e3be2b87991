#include "quant/plan/bits.h"

#include <map>

#include "quant/formats/size.h"

namespace moeq::plan {
namespace {

struct Tally {
  int64_t params = 0, nominal = 0, effective = 0;

  void add(const PlanEntry& entry) {
    const QuantUnit& u = entry.unit;
    params += u.numel();
    nominal += int64_t(entry.action.spec.bits) * u.numel();
    effective += 8 * storage_bytes(entry.action, u.rows, u.cols);
  }
  BitsSummary summary() const {
    if (params == 0) return {};
    return {params, double(nominal) / double(params), double(effective) / double(params)};
  }
};

}  // namespace

int64_t storage_bytes(const QuantAction& action, int64_t rows, int64_t cols) {
  return action.quantizes() ? quant_size(action.spec, rows, cols).total() : rows * cols * 2;
}

BitsReport bits_report(const QuantPlan& plan, int64_t other_params) {
  BitsReport report;
  Tally all;
  std::map<TensorRole, std::pair<int64_t, Tally>> roles;  // role → (params, quantized tally)
  report.total_params = other_params;
  report.total_bytes = other_params * 2;
  for (const PlanEntry& entry : plan.entries) {
    const QuantUnit& u = entry.unit;
    auto& [role_params, role_tally] = roles[u.role];
    role_params += u.numel();
    report.total_params += u.numel();
    report.total_bytes += storage_bytes(entry.action, u.rows, u.cols);
    if (!entry.action.quantizes()) continue;
    all.add(entry);
    role_tally.add(entry);
  }
  report.quantized = all.summary();
  for (const auto& [role, value] : roles) report.by_role.push_back({role, value.first, value.second.summary()});
  report.bytes_per_param = report.total_params ? double(report.total_bytes) / double(report.total_params) : 0;
  return report;
}

}  // namespace moeq::plan
