#include "layers/conv_algorithm.h"

#include <sstream>

#include "engine/check.h"

namespace pneumo {

const char* conv_algorithm_name(ConvAlgorithm algorithm) {
  switch (algorithm) {
    case ConvAlgorithm::Auto: return "auto";
    case ConvAlgorithm::Reference: return "reference";
    case ConvAlgorithm::Gemm: return "gemm";
    case ConvAlgorithm::Direct: return "direct";
    case ConvAlgorithm::Winograd2: return "winograd2";
    case ConvAlgorithm::Winograd4: return "winograd4";
    case ConvAlgorithm::Fast: return "fast";
  }
  return "?";
}

const char* conv_direction_name(ConvDirection direction) {
  switch (direction) {
    case ConvDirection::Forward: return "forward";
    case ConvDirection::InputGradient: return "input-gradient";
    case ConvDirection::WeightGradient: return "weight-gradient";
  }
  return "?";
}

std::vector<ConvAlgorithm> concrete_conv_algorithms() {
  return {ConvAlgorithm::Reference, ConvAlgorithm::Gemm, ConvAlgorithm::Direct, ConvAlgorithm::Winograd2,
          ConvAlgorithm::Winograd4};
}

ConvAlgorithm parse_conv_algorithm(const std::string& name) {
  std::string names = "fast, auto";
  if (name == "auto") return ConvAlgorithm::Auto;
  if (name == "fast") return ConvAlgorithm::Fast;
  for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
    if (name == conv_algorithm_name(algorithm)) return algorithm;
    names += std::string(", ") + conv_algorithm_name(algorithm);
  }
  throw Error("unknown convolution algorithm '" + name + "': expected one of " + names);
}

std::vector<ConvAlgorithm> parse_conv_algorithms(const std::string& names) {
  std::vector<ConvAlgorithm> algorithms;
  size_t begin = 0;
  while (true) {
    const size_t comma = names.find(',', begin);
    const std::string name = names.substr(begin, comma == std::string::npos ? comma : comma - begin);
    if (name.empty()) throw Error("convolution algorithms '" + names + "': empty name (expected NAME[,NAME...])");
    algorithms.push_back(parse_conv_algorithm(name));
    if (comma == std::string::npos) return algorithms;
    begin = comma + 1;
  }
}

std::string conv_algorithms_name(const std::vector<ConvAlgorithm>& algorithms) {
  std::string names;
  for (ConvAlgorithm algorithm : algorithms)
    names += (names.empty() ? "" : ",") + std::string(conv_algorithm_name(algorithm));
  return names;
}

std::string describe_geometry(const Conv2dGeometry& geometry) {
  std::ostringstream text;
  text << geometry.N << "x" << geometry.H << "x" << geometry.W << "x" << geometry.C << " -> " << geometry.K << ", "
       << geometry.kernel_size << "x" << geometry.kernel_size;
  return text.str();
}

}  // namespace pneumo
