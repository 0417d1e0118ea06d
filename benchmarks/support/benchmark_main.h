// The one main() wrapper every benchmark binary goes through, so that they all behave like the
// `pneumo` CLI: `--help` prints usage and exits 0, a bad argument is a one-line error with exit 2,
// a runtime failure (pneumo::Error or any other exception) a one-line error with exit 1; never
// an uncaught exception. Options are declared on apps/arguments.h's Arguments.
//
//   int main(int argc, char** argv) {
//     return pneumo::benchmark::run(argc, argv, "bench_x", "What it measures.",
//         [](pneumo::cli::Arguments& arguments) { arguments.option(...); },
//         [](const pneumo::cli::Arguments& arguments) { ...; return 0; });
//   }
#pragma once
#include <functional>

#include "apps/arguments.h"

namespace pneumo::benchmark {

using Declare = std::function<void(cli::Arguments& arguments)>;
using Body = std::function<int(const cli::Arguments& arguments)>;

// Selects the OpenBLAS kernels (engine/blas_setup.h; may re-execute the program), declares the
// options, parses argv (reading every value the body asks for is also checked: a malformed
// number still exits 2) and runs the body. Returns the process exit code.
int run(int argc, char** argv, const char* name, const char* summary, const Declare& declare, const Body& body);

}  // namespace pneumo::benchmark
