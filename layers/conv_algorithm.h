// The names of the CPU convolution algorithms and directions, and the sizes of one call: plain
// values shared by the dispatch table (layers/conv2d_cpu_kernels.h), the selection
// (layers/conv_selection.h) and the layer (layers/conv2d.h). No state, no I/O.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pneumo {

// The sizes of one convolution call: input (N,H,W,C), weight (K,R,S,C) with R = S = kernel_size,
// output (N,H,W,K).
struct Conv2dGeometry {
  int64_t N = 0, H = 0, W = 0, C = 0, K = 0;
  int kernel_size = 1;
  int padding() const { return kernel_size / 2; }
  int64_t pixels() const { return N * H * W; }
};

// Auto: choose per shape and direction (timed once, or from a tuning file the policy names).
// Fast: choose per shape, direction and instruction set by a fixed rule (layers/conv_fast_rule.h).
// The others are the concrete algorithms; an algorithm that cannot run a shape on this CPU throws
// pneumo::Error.
enum class ConvAlgorithm { Auto, Reference, Gemm, Direct, Winograd2, Winograd4, Fast };
// The three computations of a convolution, each with its own algorithm.
enum class ConvDirection { Forward, InputGradient, WeightGradient };
constexpr ConvDirection kConvDirections[] = {ConvDirection::Forward, ConvDirection::InputGradient,
                                             ConvDirection::WeightGradient};

const char* conv_algorithm_name(ConvAlgorithm algorithm);  // "reference", "winograd4", ...
const char* conv_direction_name(ConvDirection direction);  // "forward", "input-gradient", ...
// Throws pneumo::Error listing the names when `name` is not one of them.
ConvAlgorithm parse_conv_algorithm(const std::string& name);
// Every concrete algorithm (not Auto or Fast), in a fixed order: reference, gemm, direct, winograd2,
// winograd4.
std::vector<ConvAlgorithm> concrete_conv_algorithms();
// "winograd4,direct" -> {Winograd4, Direct}; throws pneumo::Error on an unknown or empty name.
std::vector<ConvAlgorithm> parse_conv_algorithms(const std::string& names);
std::string conv_algorithms_name(const std::vector<ConvAlgorithm>& algorithms);  // "a,b"
std::string describe_geometry(const Conv2dGeometry& geometry);                   // "8x128x128x64 -> 64, 3x3"

}  // namespace pneumo
