// CUDA side of engine/build_info.h; compiled only with the CUDA back end. Every query here works
// without a GPU (runtime, driver, cuDNN and cuBLAS versions are library calls).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>
#include <vector>

#include "engine/build_info.h"
#include "pneumo_build_info.h"  // generated from engine/build_info.h.in

namespace pneumo {

namespace {

// CUDA encodes versions as major*1000 + minor*10.
std::string cuda_version_text(int code) { return std::to_string(code / 1000) + "." + std::to_string(code % 1000 / 10); }

std::string triple(long long major, long long minor, long long patch) {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

// "9.19.0 (built with the same)", or "9.10.1 (built with 9.19.0)": the library loaded at run time
// first, then the headers the build used.
std::string run_and_build(const std::string& runtime, const std::string& built) {
  return runtime == built ? runtime + " (built with the same)" : runtime + " (built with " + built + ")";
}

}  // namespace

std::vector<std::string> cuda_report_lines() {
  std::vector<std::string> lines;
  int runtime = 0, driver = 0;
  const bool runtime_known = cudaRuntimeGetVersion(&runtime) == cudaSuccess;
  const bool driver_known = cudaDriverGetVersion(&driver) == cudaSuccess;
  cudaGetLastError();
  std::string cuda =
      std::string("cuda: compiled in; architectures ") + PNEUMO_CUDA_ARCHITECTURES + "; " + PNEUMO_CUDA_COMPILER +
      "; runtime " +
      run_and_build(runtime_known ? cuda_version_text(runtime) : "unknown", cuda_version_text(CUDART_VERSION)) +
      "; driver " + (driver_known && driver > 0 ? "supports CUDA " + cuda_version_text(driver) : "none found");
  lines.push_back(cuda);

  // cuDNN 9 encodes its version as major*10000 + minor*100 + patch.
  const size_t cudnn = cudnnGetVersion();
  lines.push_back("cudnn: " + run_and_build(triple(cudnn / 10000, cudnn / 100 % 100, cudnn % 100),
                                            triple(CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL)));

  int major = 0, minor = 0, patch = 0;
  const bool cublas_known = cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
                            cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
                            cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS;
  lines.push_back("cublas: " + run_and_build(cublas_known ? triple(major, minor, patch) : "unknown",
                                             triple(CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH)));
  return lines;
}

CudaLibraryCheck cuda_library_check() {
  CudaLibraryCheck check;
  auto add = [&](const std::string& library, const std::string& loaded, const std::string& built,
                 const std::string& problem) {
    check.lines.push_back(library + ": loaded " + loaded + ", built with " + built + ": " +
                          (problem.empty() ? "ok" : "INCOMPATIBLE (" + problem + ")"));
    if (!problem.empty()) check.compatible = false;
  };
  int runtime = 0, driver = 0;
  const bool runtime_known = cudaRuntimeGetVersion(&runtime) == cudaSuccess;
  const bool driver_known = cudaDriverGetVersion(&driver) == cudaSuccess;
  cudaGetLastError();
  std::string problem;
  if (!runtime_known)
    problem = "the runtime does not answer";
  else if (runtime / 1000 != CUDART_VERSION / 1000)
    problem = "another major version";
  else if (!driver_known || driver < runtime)
    problem = "the driver supports only CUDA " + (driver_known ? cuda_version_text(driver) : std::string("(none)"));
  add("cuda runtime", runtime_known ? cuda_version_text(runtime) : "unknown", cuda_version_text(CUDART_VERSION),
      problem);

  const size_t cudnn = cudnnGetVersion();  // major*10000 + minor*100 + patch
  problem.clear();
  if (static_cast<long long>(cudnn / 10000) != CUDNN_MAJOR)
    problem = "another major version";
  else if (static_cast<long long>(cudnn / 100 % 100) < CUDNN_MINOR)
    problem = "older than the headers built against";
  add("cudnn", triple(cudnn / 10000, cudnn / 100 % 100, cudnn % 100),
      triple(CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL), problem);

  int major = 0, minor = 0, patch = 0;
  const bool cublas_known = cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
                            cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
                            cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS;
  problem.clear();
  if (!cublas_known)
    problem = "cublasGetProperty failed";
  else if (major != CUBLAS_VER_MAJOR)
    problem = "another major version";
  add("cublas", cublas_known ? triple(major, minor, patch) : "unknown",
      triple(CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH), problem);
  return check;
}

std::vector<std::string> cuda_gpu_lines() {
  std::vector<std::string> lines;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return lines;
  }
  const std::string architectures = std::string(";") + PNEUMO_CUDA_ARCHITECTURES + ";";
  for (int device = 0; device < count; ++device) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, device) != cudaSuccess) {
      cudaGetLastError();
      lines.push_back("gpu " + std::to_string(device) + ": properties unavailable");
      continue;
    }
    const std::string sm = std::to_string(properties.major) + std::to_string(properties.minor);
    // Machine code for this GPU when its architecture is listed ("90" or "90-real"); otherwise
    // the driver compiles the newest PTX (a "-virtual" or plain entry) on first use.
    const bool machine_code = architectures.find(";" + sm + ";") != std::string::npos ||
                              architectures.find(";" + sm + "-real;") != std::string::npos;
    lines.push_back("gpu " + std::to_string(device) + ": " + properties.name + ", sm_" + sm + ", " +
                    std::to_string(properties.totalGlobalMem >> 30) + " GiB, " +
                    (machine_code ? "machine code in this build" : "runs through PTX JIT"));
  }
  return lines;
}

}  // namespace pneumo
