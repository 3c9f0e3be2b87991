// Times GPTQ's two phases on Mixtral-sized linears with 65,536 calibration rows and prints JSON:
// the Hessian build (streamed in 2,048-row batches, as calibration produces them) and the solve
// (Cholesky inverse + column sweep), then composes them into the cost of quantizing the whole
// shared/models/mixtral (8 layers; attention q/k/v/o; 8 experts × gate/up/down; top-2 routing,
// so each expert sees 1/4 of the tokens on average). For comparison it also times AWQ's searches
// (scales + clipping) on the same layer shapes. Usage: gptq_bench [calibration_rows]
//
// Times are CPU seconds of the process (all threads together), not wall time: the machine's
// 2 cores are shared, and wall time there says more about the neighbours than about this code.
// Run with OMP_NUM_THREADS=1 to get the cost on one dedicated core.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "calib/hessian.h"
#include "quant/algo/awq.h"
#include "quant/algo/gptq.h"
#include "timing.h"

namespace {

using moeq::bench::cpu_seconds;

double seconds_since(double t0) { return cpu_seconds() - t0; }

moeq::Tensor random_tensor(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  moeq::Tensor t({rows, cols});
  for (float& v : t.data) v = normal(rng);
  return t;
}

constexpr int64_t kBatchRows = 2048;

// Seconds to accumulate `rows` calibration rows of width dim (one batch reused: the time is BLAS).
double time_hessian(int64_t dim, int64_t rows, moeq::Tensor* h_out) {
  const moeq::Tensor batch = random_tensor(kBatchRows, dim, 1);
  moeq::HessianAccumulator acc(dim);
  const double t0 = cpu_seconds();
  for (int64_t done = 0; done < rows; done += kBatchRows) acc.add(batch.data);
  const double t = seconds_since(t0);
  if (h_out) *h_out = acc.hessian();
  return t;
}

struct Timing {
  double hessian_s, solve_s, solve_act_order_s;
};

Timing time_linear(int64_t out, int64_t in, int64_t rows) {
  moeq::Tensor h;
  Timing t{};
  t.hessian_s = time_hessian(in, rows, &h);
  const moeq::Tensor w = random_tensor(out, in, 2);
  const moeq::QuantSpec spec{moeq::QuantFormat::Int, 4, 128, false};
  moeq::gptq_quantize(w, h, spec);  // warm-up: thread pools, page faults
  double t0 = cpu_seconds();
  moeq::gptq_quantize(w, h, spec);
  t.solve_s = seconds_since(t0);
  moeq::GptqOptions opt;
  opt.act_order = true;
  opt.static_groups = true;
  t0 = cpu_seconds();
  moeq::gptq_quantize(w, h, spec, opt);
  t.solve_act_order_s = seconds_since(t0);
  return t;
}

// Seconds for one AWQ search over `count` linears of out×in sharing one input (same Hessian).
double time_awq(int64_t out, int64_t in, int count, int64_t rows) {
  moeq::HessianAccumulator acc(in);
  const moeq::Tensor batch = random_tensor(std::min<int64_t>(rows, 8192), in, 3);
  acc.add(batch.data);
  const moeq::Tensor h = acc.hessian();
  std::vector<moeq::Tensor> ws;
  for (int i = 0; i < count; ++i) ws.push_back(random_tensor(out, in, 10 + uint32_t(i)));
  std::vector<moeq::AwqLinear> linears;
  for (const moeq::Tensor& w : ws) linears.push_back({&w, &h});
  const double t0 = cpu_seconds();
  moeq::awq_quantize(linears, acc.mean_abs(), {moeq::QuantFormat::Int, 4, 128, false});
  return seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 65536;
  struct Shape {
    const char* name;
    int64_t out, in;
  };
  const Shape shapes[] = {{"expert_gate_up_448x256", 448, 256}, {"expert_down_256x448", 256, 448},
                          {"dense_1024x256", 1024, 256}};
  std::string json = fmt::format("{{\n  \"calibration_rows\": {},\n  \"spec\": \"int4 g128 asym\",\n  \"linears\": [\n",
                                 rows);
  for (size_t i = 0; i < std::size(shapes); ++i) {
    const Timing t = time_linear(shapes[i].out, shapes[i].in, rows);
    json += fmt::format("    {{\"name\": \"{}\", \"hessian_s\": {:.4f}, \"solve_s\": {:.4f}, \"solve_act_order_s\": {:.4f}}}{}\n",
                        shapes[i].name, t.hessian_s, t.solve_s, t.solve_act_order_s,
                        i + 1 < std::size(shapes) ? "," : "");
  }
  // Whole-model composition (mixtral: hidden 256, ffn 448, 8 experts top-2, kv dim 128).
  const Timing attn_in = time_linear(256, 256, rows);          // q and o (256 out), input build once
  const Timing kv = time_linear(128, 256, rows / 4);           // k, v solves (hessian shared with q)
  const Timing gate_up = time_linear(448, 256, rows / 4);      // per expert, ~rows/4 tokens
  const Timing down = time_linear(256, 448, rows / 4);
  const double layer_hessians = 2 * attn_in.hessian_s + 8 * (gate_up.hessian_s + down.hessian_s);
  const double layer_solves = 2 * attn_in.solve_s + 2 * kv.solve_s + 8 * (2 * gate_up.solve_s + down.solve_s);
  json += fmt::format("  ],\n  \"mixtral_8_layers\": {{\"hessian_s\": {:.3f}, \"solve_s\": {:.3f}, \"total_s\": {:.3f}}},\n",
                      8 * layer_hessians, 8 * layer_solves, 8 * (layer_hessians + layer_solves));
  // AWQ per layer: q/k/v jointly (k, v timed as q-sized: an upper bound), o, all experts' gate/up
  // jointly (one s per layer, 16 linears), and each expert's down.
  const double awq_layer = time_awq(256, 256, 3, rows) + time_awq(256, 256, 1, rows) +
                           time_awq(448, 256, 16, rows) + 8 * time_awq(256, 448, 1, rows);
  json += fmt::format("  \"awq_mixtral_8_layers_search_s\": {:.3f}\n}}\n", 8 * awq_layer);
  std::fputs(json.c_str(), stdout);
  return 0;
}
