// The arithmetic precision of a network's convolutions (layers/precision.md): fp32, or bf16
// (inputs, filters and output gradients rounded to bfloat16, products accumulated in fp32).
// Everything else (master weights, Adam state, batch-norm statistics, the loss, post-processing)
// is fp32 in both.
#pragma once
#include <string>

namespace pneumo {

enum class Precision { Fp32, Bf16 };

const char* precision_name(Precision precision);  // "fp32", "bf16"
// "fp32" or "bf16"; throws pneumo::Error naming the expected values otherwise.
Precision parse_precision(const std::string& name);

}  // namespace pneumo
