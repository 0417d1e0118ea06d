// Which vector instruction set the CPU kernels may use: the best this CPU runs, capped by the
// environment variable PNEUMO_CPU_ISA (avx512, avx2 or scalar), so an AVX-512 machine can stand
// in for an AVX2-only one (PNEUMO_CPU_ISA=avx2) when benchmarking or testing.
#pragma once

namespace pneumo {

enum class CpuIsa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// Read once: min(what the CPU supports, PNEUMO_CPU_ISA). Throws pneumo::Error on an unknown
// PNEUMO_CPU_ISA value.
CpuIsa cpu_isa();
const char* cpu_isa_name(CpuIsa isa);  // "avx512", "avx2", "scalar"

}  // namespace pneumo
