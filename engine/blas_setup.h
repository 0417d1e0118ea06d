// OpenBLAS kernel selection. Debian's OpenBLAS 0.3.21 does not recognise recent Xeons
// (e.g. Sapphire Rapids) and falls back to its generic "Prescott" SSE3 kernels, 5-15x slower
// than its AVX-512 ones. OpenBLAS reads OPENBLAS_CORETYPE only when the library loads, so the
// fix has to happen before main's real work: call this first thing in main().
#pragma once
#include <string>

namespace pneumo {

// When OPENBLAS_CORETYPE is unset and OpenBLAS picked a generic kernel set although the CPU has
// AVX-512 (or AVX2), sets OPENBLAS_CORETYPE to SkylakeX (or Haswell) and re-executes the program
// with the same arguments (once; the variable set stops any loop). A user's own
// OPENBLAS_CORETYPE is always respected. No-op without OpenBLAS or when exec fails.
void select_openblas_kernels(int argc, char** argv);

// The kernel set OpenBLAS runs ("SkylakeX", "Prescott", ...), or "none" without OpenBLAS.
const char* openblas_kernel_name();

// OpenBLAS's own description of the library loaded ("OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY
// Haswell MAX_THREADS=64"), or "" without OpenBLAS.
std::string openblas_configuration();

}  // namespace pneumo
