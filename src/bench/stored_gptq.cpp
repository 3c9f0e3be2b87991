#include "bench/stored_gptq.h"

#include "core/error.h"
#include "kernels/act_quant_linear.h"
#include "kernels/cpu/quant_linear.h"
#include "kernels/dense_linear.h"
#include "quant/algo/gptq.h"
#include "quant/algo/rtn.h"

namespace moeq::bench {

void quantize_from_store(Model& model, const plan::QuantPlan& plan, const analysis::ModelStats& stats,
                         const analysis::HessianStore& hessians, IndivisibleGroups indivisible) {
  std::vector<LinearSlot> slots = model.linears();
  if (slots.size() != plan.entries.size() || slots.size() != stats.units.size())
    fail("bench: the plan has {} entries for {} linears", plan.entries.size(), slots.size());
  if (plan.settings.calibration.routing_weighted)
    fail("bench: [calibration] routing_weighted needs the sequential pipeline (--sequential); the stored Hessians "
         "are unweighted");
  for (size_t i = 0; i < slots.size(); ++i) {
    const plan::PlanEntry& e = plan.entries[i];
    if (!e.action.quantizes()) continue;
    check_not_tied(model, e, plan.source);
    if (slots[i].name != e.unit.name) fail("bench: linear {} is '{}', the plan's is '{}'", i, slots[i].name, e.unit.name);
    const auto* dense = dynamic_cast<const DenseLinear*>(slots[i].op->get());
    if (!dense) fail("bench: '{}' is not a dense weight", e.unit.name);
    const Tensor w = dense->weight_f32();
    const QuantSpec spec = effective_spec(e, indivisible);
    const ScaleDivision division = plan.settings.int_scales.division;
    QuantizedMatrix q;
    switch (e.action.method) {
      case plan::QuantMethod::Rtn: q = rtn_quantize(w.ptr(), w.rows(), w.cols(), spec, division); break;
      case plan::QuantMethod::Gptq: {
        const bool few = e.unit.role == TensorRole::RoutedExpert && stats.per_unit[i].tokens < analysis::kMinExpertTokens;
        const std::string key = analysis::HessianStore::key(
            e.unit, few ? analysis::HessianStore::Tokens::AllOfLayer : analysis::HessianStore::Tokens::Routed);
        q = gptq_quantize(w, hessians.get(key), spec, gptq_options(plan.settings.gptq, e.unit.role, division)).q;
        break;
      }
      default: fail("bench: '{}': {} needs the sequential pipeline (--sequential)", e.unit.name, describe(e.action));
    }
    *slots[i].op = with_act_bits(make_quant_linear(q), e.action.act_bits);
  }
}

}  // namespace moeq::bench
