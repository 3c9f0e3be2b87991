#include "kernels/cpu/quant_kernels.h"

#include "core/error.h"

namespace moeq {

const QuantKernels& quant_kernels(Isa isa) {
  if (!isa_supported(isa)) fail("quant kernels: this CPU cannot run {}", isa_name(isa));
  switch (isa) {
    case Isa::Avx512: return avx512_quant_kernels();
    case Isa::Avx2: return avx2_quant_kernels();
    case Isa::Scalar: break;
  }
  return scalar_quant_kernels();
}

}  // namespace moeq
