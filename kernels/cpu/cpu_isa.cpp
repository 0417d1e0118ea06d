#include "kernels/cpu/cpu_isa.h"

#include <cstdlib>
#include <string>

#include "engine/check.h"

namespace pneumo {

namespace {

CpuIsa detect_cpu_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f")) return CpuIsa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::Avx2;
#endif
  return CpuIsa::Scalar;
}

CpuIsa read_cpu_isa() {
  const CpuIsa hardware = detect_cpu_isa();
  const char* cap = std::getenv("PNEUMO_CPU_ISA");
  if (!cap || !*cap) return hardware;
  const std::string value = cap;
  CpuIsa wanted;
  if (value == "avx512")
    wanted = CpuIsa::Avx512;
  else if (value == "avx2")
    wanted = CpuIsa::Avx2;
  else if (value == "scalar")
    wanted = CpuIsa::Scalar;
  else
    throw Error("PNEUMO_CPU_ISA='" + value + "': expected avx512, avx2 or scalar");
  return static_cast<int>(wanted) < static_cast<int>(hardware) ? wanted : hardware;
}

}  // namespace

CpuIsa cpu_isa() {
  static const CpuIsa isa = read_cpu_isa();
  return isa;
}

const char* compiled_arithmetic_isa() {
#ifdef PNEUMO_AVX2_FMA_ARITHMETIC
  return "avx2 fma";
#else
  return "";
#endif
}

bool cpu_runs_compiled_arithmetic() {
#if defined(PNEUMO_AVX2_FMA_ARITHMETIC) && defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return true;
#endif
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512: return "avx512";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Scalar: break;
  }
  return "scalar";
}

}  // namespace pneumo
