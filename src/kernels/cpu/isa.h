// Which SIMD instruction sets this CPU runs, asked once at run time: the binary is built for
// baseline x86-64 and its AVX2 / AVX-512 kernels are compiled with target pragmas.
#pragma once

#include <cstdint>
#include <string_view>

namespace moeq {

enum class Isa : uint8_t { Scalar, Avx2, Avx512 };

// Avx2 needs AVX2 + FMA + F16C; Avx512 needs AVX-512F. Scalar always runs.
bool isa_supported(Isa isa);
Isa best_isa();
std::string_view isa_name(Isa isa);

}  // namespace moeq
