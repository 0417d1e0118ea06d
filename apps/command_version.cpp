// pneumo version (and pneumo --version): the build and machine report of engine/build_info.h.
#include <cstdio>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "engine/build_info.h"

namespace pneumo::cli {

int run_version(const std::vector<std::string>& argv, const ConvPolicy&) {
  Arguments arguments("version",
                      "Prints the version, the git commit, the compiler, the back ends compiled in (CUDA\n"
                      "architectures and cuDNN/cuBLAS versions, OpenBLAS and its kernels, MPI, NCCL) and\n"
                      "what this machine offers (GPUs, CPU features), one 'key: value' line each.\n"
                      "Paste it into a bug report.");
  if (!arguments.parse(argv)) return 0;
  std::fputs(build_report().c_str(), stdout);
  return 0;
}

}  // namespace pneumo::cli
