// Per-element dropout math shared by the CPU loop and the CUDA kernel (layers/dropout.*): the
// random keep/drop decision of one element and the inverted-dropout scaling. The mask is a pure
// function of (stream key, element index), a counter-based generator: both back ends draw the
// same mask without storing it, and backward recomputes it instead of saving it.
#pragma once
#include <cstdint>

#include "kernels/host_device.h"

namespace pneumo {

// SplitMix64's finalizer (Steele, Lea, Flood 2014): a bijective 64-bit mix whose output bits
// each depend on every input bit. Consecutive inputs give statistically independent outputs.
PNEUMO_HD uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The key of one forward pass's mask: the layer's seed and the training step.
PNEUMO_HD uint64_t dropout_stream_key(uint64_t seed, uint64_t step) {
  return splitmix64_mix(seed ^ splitmix64_mix(step + 0x9E3779B97F4A7C15ull));
}

// True when element `index` is kept. The top 32 bits of the mix are a uniform integer u in
// [0, 2^32); the element is dropped when u < drop_threshold = round(rate * 2^32).
PNEUMO_HD bool dropout_keep(uint64_t key, uint64_t index, uint32_t drop_threshold) {
  const uint64_t bits = splitmix64_mix(key + index * 0x9E3779B97F4A7C15ull);
  return static_cast<uint32_t>(bits >> 32) >= drop_threshold;
}

// Forward of one element: x / (1 - rate) when kept, 0 when dropped (scale = 1 / (1 - rate)).
PNEUMO_HD float dropout_output(float x, bool keep, float scale) { return keep ? x * scale : 0.0f; }
// Backward of one element: the same mask and scale applied to dy.
PNEUMO_HD float dropout_gradient(float dy, bool keep, float scale) { return keep ? dy * scale : 0.0f; }

}  // namespace pneumo
