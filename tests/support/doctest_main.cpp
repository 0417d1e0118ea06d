#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "engine/blas_setup.h"

int main(int argc, char** argv) {
  pneumo::select_openblas_kernels(argc, argv);
  return doctest::Context(argc, argv).run();
}
