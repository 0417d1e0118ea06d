#include "engine/build_info.h"

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#ifdef PNEUMO_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif
#ifdef PNEUMO_HAVE_NCCL
#include <nccl.h>
#endif

#include "engine/blas_setup.h"
#include "engine/cpu_threads.h"
#include "engine/device.h"
#include "pneumo_build_info.h"  // generated from engine/build_info.h.in

namespace pneumo {

#ifdef PNEUMO_HAVE_CUDA
std::vector<std::string> cuda_report_lines();  // engine/cuda_build_info.cpp: cuda, cudnn, cublas
std::vector<std::string> cuda_gpu_lines();     // one "gpu N: ..." line per GPU
CudaLibraryCheck cuda_library_check();         // engine/cuda_build_info.cpp
#endif

CudaLibraryCheck check_cuda_libraries() {
#ifdef PNEUMO_HAVE_CUDA
  return cuda_library_check();
#else
  return {};
#endif
}

namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t enabled_xsave_state() {  // XCR0: which register files the OS saves and so allows
  uint32_t low = 0, high = 0;
  __asm__("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
  return (static_cast<uint64_t>(high) << 32) | low;
}

std::string cpu_brand() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000004u) return "unknown x86-64 CPU";
  char brand[49] = {};
  for (unsigned leaf = 0; leaf < 3; ++leaf) {
    __get_cpuid(0x80000002u + leaf, &a, &b, &c, &d);
    std::memcpy(brand + 16 * leaf, &a, 4);
    std::memcpy(brand + 16 * leaf + 4, &b, 4);
    std::memcpy(brand + 16 * leaf + 8, &c, 4);
    std::memcpy(brand + 16 * leaf + 12, &d, 4);
  }
  std::string text = brand;
  text.erase(0, text.find_first_not_of(' '));
  return text;
}
#else
std::string cpu_brand() { return "non-x86 CPU"; }
#endif

// The instruction sets the compiler was allowed to use for pneumo's own CPU code.
std::string compiled_cpu_code() {
  std::string isa;
#if defined(__x86_64__)
  isa = "x86-64";
#elif defined(__aarch64__)
  isa = "aarch64";
#else
  isa = "generic";
#endif
#ifdef __AVX2__
  isa += " avx2";
#endif
#ifdef __FMA__
  isa += " fma";
#endif
#ifdef __AVX512F__
  isa += " avx512f";
#endif
#ifdef __AMX_TILE__
  isa += " amx_tile";
#endif
  return isa;
}

// The instruction set behind an OpenBLAS kernel family name.
const char* openblas_kernel_isa(const std::string& kernel) {
  std::string lower;
  for (char c : kernel) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "sapphirerapids") return "AVX-512 + AMX";
  if (lower == "skylakex" || lower == "cooperlake") return "AVX-512";
  if (lower == "haswell" || lower == "zen") return "AVX2";
  if (lower == "sandybridge") return "AVX";
  if (lower == "prescott" || lower == "core2" || lower == "nehalem" || lower == "katmai")
    return "SSE only: generic, slow";
  return "";
}

std::string openblas_line() {
  const std::string configuration = openblas_configuration();
  if (configuration.empty()) return "openblas: not built in (CPU GEMMs use the built-in kernel)";
  const std::string kernel = openblas_kernel_name();
  std::string line = "openblas: " + configuration + "; kernels " + kernel;
  const char* isa = openblas_kernel_isa(kernel);
  if (*isa) line += std::string(" (") + isa + ")";
  const char* ours = std::getenv("PNEUMO_OPENBLAS_SELECTED");
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  if (ours)
    line += std::string(", selected by pneumo (OPENBLAS_CORETYPE=") + ours + ")";
  else if (coretype)
    line += std::string(", from the environment (OPENBLAS_CORETYPE=") + coretype + ")";
  else
    line += ", chosen by OpenBLAS";
  return line;
}

std::string mpi_line() {
#ifdef PNEUMO_HAVE_MPI
  char library[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(library, &length);  // allowed before MPI_Init
  std::string text(library, static_cast<size_t>(length));
  if (auto end = text.find_first_of("\n,"); end != std::string::npos) text.resize(end);
  return "mpi: " + text + " (MPI " + std::to_string(MPI_VERSION) + "." + std::to_string(MPI_SUBVERSION) + ")";
#else
  return "mpi: not built in";
#endif
}

std::string nccl_line() {
#ifdef PNEUMO_HAVE_NCCL
  int runtime = 0;
  ncclGetVersion(&runtime);
  auto format = [](int code) {  // NCCL 2.x: major*10000 + minor*100 + patch
    return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." + std::to_string(code % 100);
  };
  return "nccl: " + format(runtime) + " (built with " + format(NCCL_VERSION_CODE) + ")";
#else
  return "nccl: not built in";
#endif
}

}  // namespace

const char* version() { return PNEUMO_VERSION; }
const char* git_commit() { return PNEUMO_GIT_COMMIT; }

std::vector<std::string> cpu_features() {
  std::vector<std::string> features;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return features;
  const bool osxsave = c & (1u << 27);
  const uint64_t xcr0 = osxsave ? enabled_xsave_state() : 0;
  const bool avx_state = (xcr0 & 0x6) == 0x6;                    // SSE + AVX registers
  const bool avx512_state = avx_state && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM 0-15 high, ZMM 16-31
  const bool amx_state = (xcr0 & 0x60000) == 0x60000;            // XTILECFG + XTILEDATA
  const bool fma = c & (1u << 12), avx = c & (1u << 28);
  unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0, unused = 0;
  __get_cpuid_count(7, 0, &unused, &b7, &c7, &d7);
  __get_cpuid_count(7, 1, &a71, &unused, &unused, &unused);
  auto add = [&](bool present, const char* name) {
    if (present) features.push_back(name);
  };
  add(avx && avx_state, "avx");
  add(avx_state && (b7 & (1u << 5)), "avx2");
  add(avx_state && fma, "fma");
  add(avx512_state && (b7 & (1u << 16)), "avx512f");
  add(avx512_state && (b7 & (1u << 30)), "avx512bw");
  add(avx512_state && (b7 & (1u << 31)), "avx512vl");
  add(avx512_state && (c7 & (1u << 11)), "avx512_vnni");
  add(avx512_state && (a71 & (1u << 5)), "avx512_bf16");
  add(amx_state && (d7 & (1u << 24)), "amx_tile");
  add(amx_state && (d7 & (1u << 22)), "amx_bf16");
  add(amx_state && (d7 & (1u << 25)), "amx_int8");
#endif
  return features;
}

std::string build_report() {
  std::ostringstream out;
  out << "pneumo " << PNEUMO_VERSION << "\n";
  out << "commit: " << PNEUMO_GIT_COMMIT << " (at configure time)\n";
  out << "compiler: " << PNEUMO_CXX_COMPILER << ", C++" << (__cplusplus / 100 % 100) << ", " << PNEUMO_BUILD_TYPE
      << ", CPU code for " << compiled_cpu_code() << "\n";
#ifdef PNEUMO_HAVE_CUDA
  for (const std::string& line : cuda_report_lines()) out << line << "\n";
#else
  out << "cuda: not built in (nvcc, cuDNN or cuBLAS not found at configure time)\n";
#endif
  out << openblas_line() << "\n";
  out << mpi_line() << "\n";
  out << nccl_line() << "\n";
  out << "data pipeline: " << PNEUMO_DATA_PIPELINE << "\n";
  const int gpus = cuda_device_count();
  if (gpus == 0) {
    out << "gpus: no GPU: " << cuda_unavailable_reason() << "\n";
  } else {
    out << "gpus: " << gpus << "\n";
#ifdef PNEUMO_HAVE_CUDA
    for (const std::string& line : cuda_gpu_lines()) out << line << "\n";
#endif
  }
  out << "cpu: " << cpu_brand() << ", " << std::thread::hardware_concurrency() << " hardware threads, "
      << cpu_thread_count() << " used\n";
  std::string features;
  for (const std::string& feature : cpu_features()) features += (features.empty() ? "" : " ") + feature;
  out << "cpu features: " << (features.empty() ? "none of avx/avx2/avx-512/amx" : features) << "\n";
  return out.str();
}

}  // namespace pneumo
