#include "layers/conv_fast_rule.h"

#include "kernels/cpu/cpu_isa.h"
#include "layers/conv2d_cpu_kernels.h"

namespace pneumo {

// The measurements behind the rule: `pneumo tune --batch 8 --threads 2` on the notebook network
// (256x256, 32 channels, 2 blocks, depth 4), auto's timings in ms of each candidate's second run.
// AMD EPYC with AVX2 (no AVX-512), 2 threads, 2026-12-06:
//
//   direction        shape (NxHxWxC -> K)       gemm    direct  winograd2 winograd4  rule
//   forward          8x256x256x1   -> 32, 3x3   24.6    13.5    85.5      59.1       direct
//   forward          8x128x128x64  -> 64, 3x3  173.4   142.7    66.2      43.1       winograd4
//   forward          8x64x64x128   -> 128, 3x3 129.1   131.7    58.2      39.5       winograd4
//   forward          8x32x32x256   -> 256, 3x3 116.5   133.0    54.0      38.5       winograd4
//   forward          8x16x16x512   -> 512, 3x3 111.3   140.0    65.3      45.9       winograd4
//   input-gradient   8x128x128x64  -> 64, 3x3  181.7   145.4    71.1      47.0       winograd4
//   input-gradient   8x16x16x512   -> 512, 3x3 117.3   138.7    62.2      44.1       winograd4
//   weight-gradient  8x256x256x1   -> 32, 3x3   24.8     -      61.9      51.7       gemm
//   weight-gradient  8x128x128x64  -> 64, 3x3  161.7   195.7   102.7      70.2       winograd4
//   weight-gradient  8x32x32x256   -> 256, 3x3 114.2   156.8   108.3      65.8       winograd4
//   weight-gradient  8x16x16x512   -> 512, 3x3 110.0   180.6   120.1     111.4       gemm (a tie)
//   forward          8x256x256x32  -> 64, 1x1   51.8    32.3                         direct
//   forward          8x128x128x64  -> 128, 1x1  35.5    33.2                         direct
//   forward          8x64x64x128   -> 256, 1x1  29.1    30.0                         gemm
//   forward          8x32x32x256   -> 512, 1x1  24.4    28.9                         gemm
//   input-gradient   8x256x256x32  -> 64, 1x1   36.7    31.9                         direct
//   input-gradient   8x64x64x128   -> 256, 1x1  27.1    32.9                         gemm
//   weight-gradient  8x256x256x32  -> 64, 1x1   46.3    54.4                         gemm
//   weight-gradient  8x128x128x64  -> 128, 1x1  37.7    44.5                         gemm
//   weight-gradient  8x16x16x512   -> 1, 1x1     0.40    0.16                        direct
//
// The `cpu` preset's network (128x128, 8 channels, 1 block, depth 4), batch 16, the same machine
// and day, auto's timings in ms:
//
//   forward          16x128x128x1  -> 8, 3x3    11.09     -      14.99      7.43       winograd4
//   forward          16x64x64x16   -> 16, 3x3    9.08     -       3.53      2.19       winograd4
//   forward          16x32x32x32   -> 32, 3x3   12.78    3.70     2.48      ~2.5       winograd4
//   input-gradient   16x64x64x16   -> 16, 3x3    7.81     -       3.66      2.37       winograd4
//   weight-gradient  16x128x128x1  -> 8, 3x3     7.01     -      11.15      9.03       gemm
//   weight-gradient  16x64x64x16   -> 16, 3x3    7.20     -       4.01      2.24       winograd4
//   weight-gradient  16x32x32x32   -> 32, 3x3   10.28   10.89     2.86      (chosen)   winograd4
//
// So: Winograd F(4x4) on every 3x3 layer with more than one input channel, in all three
// directions but the weight gradient of the 512-channel layers, where gemm ties with it and sums
// exactly (its
// rounding error is bounded in layers/conv2d.md, "Winograd's accuracy", and training reaches
// the same mAP: benchmarks/README.md, "Do the algorithms train alike"); the stem (one input
// channel) with the direct kernel forward where it runs (32 outputs; else Winograd F(4x4)) and gemm
// for its weight gradient; 1x1 layers with the direct kernels
// while the image is large (64 or fewer channels on the reduced side) and gemm (OpenBLAS) when the
// channels grow; the head's 512 -> 1 weight gradient (one output channel) with direct. On AVX-512
// the same rule applies (the 2026-12-02 auto runs on an AVX-512 EPYC chose winograd4 for the 3x3
// layers as well: benchmarks/README.md); without the SIMD kernels (PNEUMO_CPU_ISA=scalar) gemm runs
// everything, as OpenBLAS keeps its own vector kernels. Re-measure with `pneumo tune` and compare
// with `pneumo summary --conv-algos` (each row says the rule's why) on a new machine kind.
ConvRuleChoice fast_conv_algorithm(ConvDirection direction, const Conv2dGeometry& g) {
  const auto runs = [&](ConvAlgorithm algorithm) {
    return conv_algorithm_unsupported_reason(algorithm, direction, g).empty();
  };
  const auto pick = [&](ConvAlgorithm algorithm, const std::string& why) -> ConvRuleChoice {
    if (runs(algorithm)) return {algorithm, why};
    return {ConvAlgorithm::Gemm, why + "; " + conv_algorithm_name(algorithm) + " cannot run it here, so gemm"};
  };
  if (cpu_isa() == CpuIsa::Scalar) return {ConvAlgorithm::Gemm, "no SIMD kernels on this CPU: gemm (OpenBLAS)"};
  if (g.kernel_size == 3) {
    if (direction == ConvDirection::WeightGradient && g.C >= 512)
      return {ConvAlgorithm::Gemm, "3x3 weight gradient with 512+ channels: gemm (ties Winograd F(4x4), sums exactly)"};
    if (g.C > 1) return pick(ConvAlgorithm::Winograd4, "3x3 with several input channels: Winograd F(4x4)");
    // The stem, on the one-channel image.
    if (direction == ConvDirection::WeightGradient)
      return {ConvAlgorithm::Gemm, "3x3 on one channel, weight gradient: gemm"};
    if (runs(ConvAlgorithm::Direct)) return {ConvAlgorithm::Direct, "3x3 on one channel: the direct kernel"};
    return pick(ConvAlgorithm::Winograd4, "3x3 on one channel, the direct kernel cannot run it: Winograd F(4x4)");
  }
  // 1x1: a GEMM of (pixels, C) x (C, K); the direct kernels win while the pixels are many and the
  // channels few, OpenBLAS once the channels grow.
  switch (direction) {
    case ConvDirection::Forward:
      if (g.C <= 64) return pick(ConvAlgorithm::Direct, "1x1 with 64 or fewer input channels: the direct kernel");
      return {ConvAlgorithm::Gemm, "1x1 with more than 64 input channels: gemm"};
    case ConvDirection::InputGradient:
      if (g.C <= 64) return pick(ConvAlgorithm::Direct, "1x1 gradient onto 64 or fewer channels: the direct kernel");
      return {ConvAlgorithm::Gemm, "1x1 gradient onto more than 64 channels: gemm"};
    case ConvDirection::WeightGradient:
      if (g.K == 1) return pick(ConvAlgorithm::Direct, "1x1 weight gradient of one output channel: the direct kernel");
      return {ConvAlgorithm::Gemm, "1x1 weight gradient: gemm"};
  }
  return {ConvAlgorithm::Gemm, "gemm"};
}

}  // namespace pneumo
