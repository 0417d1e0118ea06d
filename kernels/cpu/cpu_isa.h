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

// The build compiles the files whose arithmetic must stay bit for bit what it was for AVX2+FMA
// (CMakeLists.txt: pneumo_avx2_fma_sources; PNEUMO_AVX2_FMA_ARITHMETIC), everything else for
// x86-64's baseline. compiled_arithmetic_isa(): "avx2 fma", or "" in a build without them.
// cpu_runs_compiled_arithmetic(): whether this CPU runs them (true when there are none); not
// capped by PNEUMO_CPU_ISA. Callers check it before any of that code runs (apps/main.cpp).
const char* compiled_arithmetic_isa();
bool cpu_runs_compiled_arithmetic();

}  // namespace pneumo
