#include "core/dtype.h"

#include <limits>

#include "core/error.h"

namespace moeq {

std::optional<DType> dtype_from_name(std::string_view name) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::F8_E4M3, DType::I8, DType::U8, DType::I32, DType::I64})
    if (dtype_name(t) == name) return t;
  return std::nullopt;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    float v = float(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

float f8e4m3_to_f32(uint8_t b) {
  const uint32_t exp = (b >> 3) & 0xfu, mant = b & 0x7u;
  float magnitude;
  if (exp == 0xf && mant == 0x7) magnitude = std::numeric_limits<float>::quiet_NaN();
  else if (exp == 0) magnitude = float(mant) * 0x1p-9f;  // subnormal: mant · 2^-9
  else magnitude = std::bit_cast<float>(((exp + 120) << 23) | (mant << 20));
  return b & 0x80u ? -magnitude : magnitude;
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;        // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;       // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                              // below 2^-14: subnormal half
    // Scale into units of 2^-24 and round half to even through the float adder.
    const float scaled = std::bit_cast<float>(abs) * 0x1p24f;
    const float rounded = scaled + 0x1p23f - 0x1p23f;  // RNE to integer for |x| < 2^23
    return sign | uint16_t(rounded);
  }
  uint32_t mant = abs & 0x7fffffu;
  uint32_t exp = (abs >> 23) - 112;
  uint32_t half = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // may carry into exponent: fine
  return sign | uint16_t(half);
}

void convert_to_f32(DType t, const std::byte* src, float* dst, size_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      return;
    case DType::F8_E4M3:
      for (size_t i = 0; i < n; ++i) dst[i] = f8e4m3_to_f32(uint8_t(src[i]));
      return;
    default:
      fail("cannot convert dtype {} to F32", dtype_name(t));
  }
}

}  // namespace moeq
