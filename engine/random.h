// Platform-independent random numbers for everything that must be reproducible from a seed
// (initialization, splits, shuffles, flips, synthetic data): splitmix64 mixing and FNV-1a text
// hashing. Standard-library distributions differ between implementations, these do not.
#pragma once
#include <cstdint>
#include <string>

namespace pneumo {

// splitmix64's finalizer: a well-mixed 64-bit value from any 64-bit input.
inline uint64_t mix64(uint64_t value) {
  value += 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  return value ^ (value >> 31);
}

// FNV-1a over the bytes of `text`.
inline uint64_t hash_text(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

}  // namespace pneumo
