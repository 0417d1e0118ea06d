#include "layers/precision.h"

#include "engine/check.h"

namespace pneumo {

const char* precision_name(Precision precision) { return precision == Precision::Bf16 ? "bf16" : "fp32"; }

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::Fp32;
  if (name == "bf16") return Precision::Bf16;
  throw Error("unknown precision '" + name + "', expected fp32 or bf16");
}

}  // namespace pneumo
