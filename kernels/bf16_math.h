// bfloat16 as pneumo rounds to it, shared by the CPU loops and the CUDA kernels: a float keeps its
// sign, its 8-bit exponent and the top 7 bits of its 23-bit fraction (layers/precision.md).
// Rounding is to nearest, ties to even (RNE), as `vcvtneps2bf16`, cuDNN and torch's
// `.to(torch.bfloat16)` do; a NaN stays a (quiet) NaN and a float beyond bfloat16's largest
// finite value, 3.3895e38, rounds to infinity like any RNE overflow.
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/host_device.h"

namespace pneumo {

PNEUMO_HD uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

PNEUMO_HD float float_from_bits(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

// The 16 bits of x's bfloat16 (RNE): add 0x7fff plus the lowest kept bit, then truncate, so a
// value exactly halfway between two bfloat16 numbers goes to the one whose last bit is 0.
PNEUMO_HD uint16_t bf16_bits_from_float(float x) {
  const uint32_t bits = float_bits(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // NaN: quiet
  const uint32_t lowest_kept = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7fffu + lowest_kept) >> 16);
}

PNEUMO_HD float float_from_bf16_bits(uint16_t bits) { return float_from_bits(static_cast<uint32_t>(bits) << 16); }

// x rounded to the nearest bfloat16, kept in a float (the low 16 bits zero): the emulation the
// portable bf16 path computes with (products of two such values are exact in float).
PNEUMO_HD float round_to_bf16(float x) { return float_from_bf16_bits(bf16_bits_from_float(x)); }

}  // namespace pneumo
