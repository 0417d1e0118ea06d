// The Python module's parts, one binding file per topic (apps/python/python.md): module.cpp
// calls each bind_* once. NetworkHandle is what Python's pneumo.Network holds.
#pragma once
#include <pybind11/pybind11.h>

#include <map>
#include <memory>
#include <string>

#include "engine/context.h"
#include "layers/network.h"

namespace pneumo::python {

namespace py = pybind11;

// A Network on the CPU with its context, and the arrays its last passes read or kept: the images
// of the last forward (the network keeps a view of them for backward) and, after backward, a
// copy of every node's d loss / d output (the engine's own buffers are reused during the pass).
struct NetworkHandle {
  NetworkHandle(const NetworkConfig& config, uint64_t seed);
  Context context{Device::CPU};
  std::unique_ptr<Network> network;
  py::object images;                                 // (N,S,S,1) of the last forward or step
  std::map<std::string, py::object> node_gradients;  // node name -> (N,H,W,C), from the last backward
};

void bind_network(py::module_& module);   // bind_network.cpp: Network, nodes, parameters, checkpoints
void bind_layers(py::module_& module);    // bind_layers.cpp: pneumo.layers, each layer on its own
void bind_training(py::module_& module);  // bind_training.cpp: loss, metrics, Adam, train_step
void bind_data(py::module_& module);      // bind_data.cpp: DICOM, labels, split, loader, boxes, metric

}  // namespace pneumo::python
