#include "quant/plan/bits.h"

#include <map>

namespace moeq::plan {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr int64_t kFp16 = 16, kFp32 = 32;
constexpr int64_t kNestedBlock = 256;  // bitsandbytes double quant: absmax blocks per fp32 scale

struct Tally {
  int64_t params = 0, nominal = 0, effective = 0;

  void add(const PlanEntry& entry) {
    const QuantUnit& u = entry.unit;
    params += u.numel();
    nominal += int64_t(entry.action.spec.bits) * u.numel();
    effective += storage_bits(entry.action.spec, u.rows, u.cols).total();
  }
  BitsSummary summary() const {
    if (params == 0) return {};
    return {params, double(nominal) / double(params), double(effective) / double(params)};
  }
};

}  // namespace

StorageBits storage_bits(const QuantSpec& spec, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  if (spec.format == QuantFormat::Int) {
    int64_t groups = spec.group_size == 0 ? 1 : ceil_div(cols, spec.group_size);
    return {n * spec.bits, rows * groups * (kFp16 + spec.bits)};
  }
  int64_t blocks = ceil_div(n, spec.group_size);
  int64_t metadata = spec.double_quant ? blocks * 8 + ceil_div(blocks, kNestedBlock) * kFp32 + kFp32
                                       : blocks * kFp32;
  return {n * 4, metadata};
}

int64_t storage_bytes(const QuantAction& action, int64_t rows, int64_t cols) {
  if (!action.quantizes()) return rows * cols * 2;
  return ceil_div(storage_bits(action.spec, rows, cols).total(), 8);
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
