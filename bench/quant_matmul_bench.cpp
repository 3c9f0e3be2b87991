// GFLOP/s of QuantLinear (best ISA and AVX2) against dense fp32 cblas_sgemm and the scalar
// reference kernels, per format, for n = 1, 8, 512 tokens on the MoE expert shapes 256×448 and
// 448×256 ([out, in]); and each SIMD ISA's op behind per-token INT8 activations (act_bits = 8)
// against the same op without (`quant_<isa>_a8_vs_a16`). Prints JSON; the ratios are what count.
// One thread, timed in process CPU time: the 2-core machine is shared, and wall time of
// multithreaded runs there measures the neighbours, not the kernels.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <random>

#include <cblas.h>
#include <nlohmann/json.hpp>

#include "kernels/act_quant_linear.h"
#include "kernels/cpu/quant_linear.h"
#include "quant/algo/rtn.h"
#include "timing.h"

namespace {

using moeq::bench::cpu_seconds;

// Best of 5 batches, each repeating fn for at least 20 ms of CPU; CPU seconds per call.
double time_call(const std::function<void()>& fn) {
  fn();
  double best = 1e30;
  for (int batch = 0; batch < 5; ++batch) {
    int calls = 0;
    const double start = cpu_seconds();
    double elapsed = 0;
    do {
      fn();
      ++calls;
      elapsed = cpu_seconds() - start;
    } while (elapsed < 0.02);
    best = std::min(best, elapsed / calls);
  }
  return best;
}

}  // namespace

int main() {
  using moeq::Isa;
  omp_set_num_threads(1);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  nlohmann::json results = nlohmann::json::array();
  const char* specs[] = {"int2 g128 asym", "int3 g128 asym", "int4 g128 asym", "int4 g32 sym",
                         "int8 g0 sym", "nf4", "nf4 dq", "fp4"};
  for (const auto& [out, in] : {std::pair<int64_t, int64_t>{256, 448}, {448, 256}}) {
    std::vector<float> w(size_t(out * in));
    for (float& v : w) v = dist(rng);
    for (int64_t n : {1, 8, 512}) {
      std::vector<float> x(size_t(n * in)), y(size_t(n * out));
      for (float& v : x) v = dist(rng) * 50;
      const double flop = 2.0 * double(n * in * out);
      const double dense = flop / time_call([&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(out), int(in), 1.0f, x.data(), int(in),
                    w.data(), int(in), 0.0f, y.data(), int(out));
      }) * 1e-9;
      for (const char* spec : specs) {
        const moeq::QuantizedMatrix m = moeq::rtn_quantize(w.data(), out, in, moeq::parse_quant_spec(spec));
        nlohmann::json row = {{"shape", {out, in}}, {"n", n}, {"format", spec}, {"dense_sgemm_gflops", dense}};
        for (Isa isa : {moeq::best_isa(), Isa::Avx2, Isa::Scalar}) {
          if (!moeq::isa_supported(isa)) continue;
          const moeq::LinearPtr op = moeq::make_quant_linear(m, {.isa = isa});
          const double g = flop / time_call([&] { op->forward(x.data(), n, y.data()); }) * 1e-9;
          const std::string key = isa == Isa::Scalar ? "scalar_reference" : "quant_" + std::string(moeq::isa_name(isa));
          row[key + "_gflops"] = g;
          row[key + "_vs_dense"] = g / dense;
          if (isa == Isa::Scalar) continue;
          const moeq::LinearPtr a8 = moeq::with_act_bits(moeq::make_quant_linear(m, {.isa = isa}), 8);
          const double g8 = flop / time_call([&] { a8->forward(x.data(), n, y.data()); }) * 1e-9;
          row[key + "_a8_gflops"] = g8;
          row[key + "_a8_vs_a16"] = g8 / g;
        }
        results.push_back(row);
        std::fprintf(stderr, ".");
      }
    }
  }
  std::fprintf(stderr, "\n");
  std::printf("%s\n", nlohmann::json{{"isa", moeq::isa_name(moeq::best_isa())}, {"threads", 1}, {"timer", "process cpu"}, {"results", results}}.dump(1).c_str());
  return 0;
}
