// ONNX export: the notebook's network (configuration + inference weights of a ParameterStore)
// -> one standard ONNX model file, built with the ONNX protobuf classes of Debian's libonnx-dev
// and validated by ONNX's own checker before it is written (apps/onnx_export.md).
// Compiled only when CMake finds libonnx (PNEUMO_HAVE_ONNX).
#pragma once
#include <string>

#include "engine/parameters.h"
#include "layers/network.h"

namespace pneumo::cli {

// Writes `path` (atomically: a failure leaves an existing file untouched). The graph takes
// "images" (N,1,S,S) float and returns "probabilities" (N,1,S,S), N symbolic; with one channel
// NCHW and pneumo's NHWC are the same bytes. Batch norm is KEPT as BatchNormalization nodes
// (inference mode, running statistics, epsilon 1e-3), not folded into the convolutions, so the
// file carries the same numbers as the checkpoint. Throws pneumo::Error naming the file, or the
// checker's message, on failure.
void export_onnx(const NetworkConfig& config, const ParameterStore& store, const std::string& path);

}  // namespace pneumo::cli
