#include "benchmarks/support/benchmark_main.h"

#include <cstdio>
#include <exception>
#include <string>

#include "engine/blas_setup.h"
#include "engine/check.h"
#include "kernels/cpu/cpu_isa.h"

namespace pneumo::benchmark {

namespace {

// The message without a leading "name: " (Arguments already names the program).
const char* without_prefix(const char* message, const char* name) {
  const std::string prefix = std::string(name) + ": ";
  return std::string(message).rfind(prefix, 0) == 0 ? message + prefix.size() : message;
}

}  // namespace

int run(int argc, char** argv, const char* name, const char* summary, const Declare& declare, const Body& body) {
  select_openblas_kernels(argc, argv);
  try {
    cli::Arguments arguments(name, summary, "");
    declare(arguments);
    if (!arguments.parse(argc, argv)) return 0;
    // As apps/main.cpp: nothing compiled for AVX2+FMA runs on a CPU without them.
    if (!cpu_runs_compiled_arithmetic()) {
      std::fprintf(stderr,
                   "%s: error: this CPU lacks AVX2 or FMA, which this build's CPU arithmetic is compiled for (%s)\n",
                   name, compiled_arithmetic_isa());
      return 1;
    }
    return body(arguments);
  } catch (const cli::UsageError& error) {
    std::fprintf(stderr, "%s: error: %s\n", name, without_prefix(error.what(), name));
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: error: %s\n", name, error.what());
    return 1;
  } catch (...) {
    std::fprintf(stderr, "%s: error: unknown exception\n", name);
    return 1;
  }
}

}  // namespace pneumo::benchmark
