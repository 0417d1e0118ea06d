// `fast`: the CPU convolution algorithm per shape, direction and instruction set from a fixed rule
// calibrated on measurements (kept beside the rule in layers/conv_fast_rule.cpp), like cuDNN's
// heuristics: as fast as auto after `pneumo tune` on the measured machines, and deterministic (the
// same command on the same machine computes the same bits in every process, whatever files exist).
// It is the default of `pneumo` and the benchmarks (apps/main.cpp); the library's own default
// policy stays direct,gemm, the exact-summation path the tests compare against.
#pragma once
#include <string>

#include "layers/conv_algorithm.h"

namespace pneumo {

struct ConvRuleChoice {
  ConvAlgorithm algorithm;  // concrete, and runnable for the shape on this CPU
  std::string why;          // "3x3 with 32+ channels: Winograd F(4x4) (measured 2.9-3.3x direct, AVX2)"
};

// The rule's choice for `direction` of `geometry` under this CPU's instruction set (cpu_isa(),
// capped by PNEUMO_CPU_ISA).
ConvRuleChoice fast_conv_algorithm(ConvDirection direction, const Conv2dGeometry& geometry);

}  // namespace pneumo
