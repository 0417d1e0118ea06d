// Layer: one node type of the network graph, with a hand-written forward and backward on each
// back end. There is no autograd: whatever backward needs is either an input/output tensor the
// graph passes back in, or saved explicitly by forward in the layer's own members.
//
// Conventions every layer follows:
//  - activations are NHWC (N,H,W,C) float32 tensors on context.device();
//  - forward OVERWRITES `output` (already allocated by the caller with output_shape());
//  - backward ACCUMULATES (+=) into every non-null input gradient and into its parameter
//    gradients: the graph zeroes activation gradients before a backward pass and the
//    ParameterStore zeroes parameter gradients once per step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/parameters.h"
#include "engine/tensor.h"

namespace pneumo {

class Layer {
 public:
  virtual ~Layer() = default;

  virtual std::string kind() const = 0;  // e.g. "Conv2d"
  virtual int input_count() const { return 1; }
  // Output shape for the given input shapes; throws pneumo::Error on incompatible inputs.
  virtual Shape output_shape(const std::vector<Shape>& inputs) const = 0;
  // Forward floating-point operations (multiply and add count as 2) for the given inputs.
  virtual int64_t forward_flops(const std::vector<Shape>& inputs) const = 0;

  // Parameters with names relative to the layer ("weight", "bias", "running_mean", ...).
  virtual std::vector<ParameterSpec> parameter_specs() const { return {}; }
  // Called once the ParameterStore exists: the layer keeps views of its entries, whose full
  // names are prefix + "." + relative name.
  virtual void bind_parameters(const ParameterStore& store, const std::string& prefix) {
    (void)store;
    (void)prefix;
  }

  // training=true uses batch statistics and updates running statistics (batch norm).
  virtual void forward(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output,
                       bool training) = 0;
  // output and output_gradient: the forward output and d loss / d output. input_gradients[i]
  // may be null when that input needs no gradient (e.g. the network's image input).
  virtual void backward(Context& context, const std::vector<const Tensor*>& inputs,
                        const Tensor& output, const Tensor& output_gradient,
                        const std::vector<Tensor*>& input_gradients) = 0;
};

// Helpers for layer implementations.
void require_input_count(const Layer& layer, const std::vector<Shape>& inputs);
void require_nhwc(const Shape& shape, const std::string& what);  // rank 4, all dims > 0
// Throws pneumo::Error naming the layer kind when the CUDA back end is not compiled in; used by
// the dispatch code of every layer so a missing GPU path fails loudly.
[[noreturn]] void throw_no_cuda_backend(const std::string& layer_kind);

}  // namespace pneumo
