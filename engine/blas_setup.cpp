#include "engine/blas_setup.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#ifdef PNEUMO_HAVE_OPENBLAS
extern "C" char* openblas_get_corename(void);
extern "C" char* openblas_get_config(void);
#endif

namespace pneumo {

const char* openblas_kernel_name() {
#ifdef PNEUMO_HAVE_OPENBLAS
  return openblas_get_corename();
#else
  return "none";
#endif
}

std::string openblas_configuration() {
#ifdef PNEUMO_HAVE_OPENBLAS
  std::string text = openblas_get_config();
  text.erase(0, text.find_first_not_of(' '));
  text.erase(text.find_last_not_of(' ') + 1);
  return text;
#else
  return "";
#endif
}

void select_openblas_kernels(int argc, char** argv) {
#if defined(PNEUMO_HAVE_OPENBLAS) && (defined(__x86_64__) || defined(__i386__))
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || argc < 1) return;
  const char* wanted = nullptr;
  if (__builtin_cpu_supports("avx512f"))
    wanted = "SkylakeX";
  else if (__builtin_cpu_supports("avx2"))
    wanted = "Haswell";
  if (!wanted) return;
  const char* current = openblas_get_corename();
  for (const char* good : {"skylakex", "cooperlake", "sapphirerapids", "haswell", "zen"})
    if (current && strcasecmp(current, good) == 0) {
      if (strcasecmp(wanted, "SkylakeX") != 0 || strcasecmp(good, "haswell") != 0) return;
    }
  setenv("OPENBLAS_CORETYPE", wanted, 1);
  setenv("PNEUMO_OPENBLAS_SELECTED", wanted, 1);  // tells tests the choice was ours
  std::vector<char*> arguments(argv, argv + argc);
  arguments.push_back(nullptr);
  execv("/proc/self/exe", arguments.data());
  // exec failed: carry on with the kernels OpenBLAS chose.
#else
  (void)argc;
  (void)argv;
#endif
}

}  // namespace pneumo
