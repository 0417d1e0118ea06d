// What this binary is and what it runs on: version, git commit, compiler, the back ends compiled
// in (CUDA with its architectures and library versions, OpenBLAS and the kernels it selected,
// MPI and NCCL when built in) and what this machine offers (GPUs, CPU features). `pneumo
// --version` prints build_report(); a bug report needs only that block.
#pragma once
#include <string>
#include <vector>

namespace pneumo {

const char* version();     // the CMake project VERSION, e.g. "0.1.0"
const char* git_commit();  // the commit at configure time, "unknown" outside a git checkout

// CPU features this machine reports through CPUID and the OS enables (XSAVE state), in a fixed
// order: "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
// "amx_tile", "amx_bf16", "amx_int8" (the names /proc/cpuinfo uses).
std::vector<std::string> cpu_features();

// The report: one "key: value" line each, starting with "pneumo VERSION".
std::string build_report();

// The CUDA runtime, cuDNN and cuBLAS actually loaded (LD_LIBRARY_PATH may put other copies, e.g.
// Python wheels, first) against those this binary was built with: one line per library, each
// saying "ok" or what is incompatible. Compatible means: runtime of the same major version and a
// driver that supports it; cuDNN of the same major and at least the built minor; cuBLAS of the
// same major. Empty in a build without CUDA.
struct CudaLibraryCheck {
  std::vector<std::string> lines;
  bool compatible = true;
};
CudaLibraryCheck check_cuda_libraries();

}  // namespace pneumo
