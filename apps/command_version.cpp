// pneumo version (and pneumo --version): the build and machine report of engine/build_info.h.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "engine/build_info.h"
#include "kernels/cpu/cpu_isa.h"

namespace pneumo::cli {

namespace {

// Which CPU code runs here: the vector kernels' instruction set (the best this CPU offers, capped
// by PNEUMO_CPU_ISA) and whether this CPU runs the arithmetic compiled for AVX2+FMA.
std::string cpu_paths_line() {
  std::string line = "cpu paths: vector kernels ";
  try {
    line += cpu_isa_name(cpu_isa());
    const char* cap = std::getenv("PNEUMO_CPU_ISA");
    if (cap && *cap) line += std::string(" (PNEUMO_CPU_ISA=") + cap + ")";
  } catch (const std::exception& error) {
    line += std::string("unavailable: ") + error.what();
  }
  const std::string arithmetic = compiled_arithmetic_isa();
  if (arithmetic.empty())
    line += "; arithmetic for the compiler's target (see compiler)";
  else if (cpu_runs_compiled_arithmetic())
    line += "; arithmetic compiled for " + arithmetic + ", which this CPU runs";
  else
    line += "; arithmetic compiled for " + arithmetic + ", which this CPU LACKS: every command but version refuses";
  return line + "\n";
}

}  // namespace

int run_version(const std::vector<std::string>& argv, const ConvPolicy&) {
  Arguments arguments("version",
                      "Prints the version, the git commit, the compiler, the back ends compiled in (CUDA\n"
                      "architectures and cuDNN/cuBLAS versions, OpenBLAS and its kernels, MPI, NCCL) and\n"
                      "what this machine offers (GPUs, CPU features), one 'key: value' line each.\n"
                      "Paste it into a bug report.");
  if (!arguments.parse(argv)) return 0;
  std::fputs(build_report().c_str(), stdout);
  std::fputs(cpu_paths_line().c_str(), stdout);
  return 0;
}

}  // namespace pneumo::cli
