#include "layers/conv2d.h"

#include <algorithm>
#include <random>

#include "engine/check.h"
#include "layers/conv_fast_rule.h"

namespace pneumo {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, bool bias)
    : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size), has_bias_(bias) {
  if (in_channels <= 0 || out_channels <= 0)
    throw Error("Conv2d: channel counts must be positive, got in_channels=" + std::to_string(in_channels) +
                " out_channels=" + std::to_string(out_channels));
  if (kernel_size != 1 && kernel_size != 3)
    throw Error("Conv2d: kernel_size must be 1 or 3, got " + std::to_string(kernel_size));
}

Conv2dGeometry Conv2d::geometry_for(const Shape& input) const {
  Conv2dGeometry geometry;
  geometry.N = input[0];
  geometry.H = input[1];
  geometry.W = input[2];
  geometry.C = input[3];
  geometry.K = out_channels_;
  geometry.kernel_size = kernel_size_;
  return geometry;
}

Shape Conv2d::output_shape(const std::vector<Shape>& inputs) const {
  require_input_count(*this, inputs);
  require_nhwc(inputs[0], "Conv2d input");
  if (inputs[0][3] != in_channels_)
    throw Error("Conv2d: input " + shape_string(inputs[0]) + " has " + std::to_string(inputs[0][3]) +
                " channels, expected " + std::to_string(in_channels_));
  return {inputs[0][0], inputs[0][1], inputs[0][2], out_channels_};
}

int64_t Conv2d::forward_flops(const std::vector<Shape>& inputs) const {
  const Shape output = output_shape(inputs);
  const int64_t output_count = shape_count(output);
  const int64_t taps = int64_t{kernel_size_} * kernel_size_ * in_channels_;
  return 2 * output_count * taps + (has_bias_ ? output_count : 0);
}

std::vector<ParameterSpec> Conv2d::parameter_specs() const {
  const int64_t R = kernel_size_;
  // Keras glorot_uniform on a (kh,kw,in,out) kernel: fan_in = kh*kw*in, fan_out = kh*kw*out.
  std::vector<ParameterSpec> specs = {{"weight",
                                       {out_channels_, R, R, in_channels_},
                                       Initializer::GlorotUniform,
                                       true,
                                       R * R * in_channels_,
                                       R * R * out_channels_}};
  if (has_bias_) specs.push_back({"bias", {out_channels_}, Initializer::Zeros, true});
  return specs;
}

void Conv2d::bind_parameters(const ParameterStore& store, const std::string& prefix) {
  name_ = prefix;
  const ParameterEntry& weight = store.entry(prefix + ".weight");
  require_shape(weight.value, {out_channels_, kernel_size_, kernel_size_, in_channels_}, "Conv2d weight");
  weight_ = weight.value;
  weight_gradient_ = weight.gradient;
  if (has_bias_) {
    const ParameterEntry& bias = store.entry(prefix + ".bias");
    require_shape(bias.value, {out_channels_}, "Conv2d bias");
    bias_ = bias.value;
    bias_gradient_ = bias.gradient;
  }
}

void Conv2d::set_allow_tf32(bool allow) { allow_tf32_ = allow; }

int64_t Conv2d::scratch_floats(const std::vector<Shape>& inputs, Device device, bool input_gradient) const {
  if (device != Device::CPU) return 0;
  const Conv2dGeometry geometry = geometry_for(inputs.at(0));
  int64_t floats = 0;
  for (ConvDirection direction : kConvDirections) {
    if (direction == ConvDirection::InputGradient && !input_gradient) continue;
    const ConvAlgorithm chosen = preferred_algorithm(direction, geometry);
    if (chosen == ConvAlgorithm::Fast) {
      floats =
          std::max(floats, conv2d_cpu_scratch_floats(geometry, direction,
                                                     fast_conv_algorithm(direction, geometry).algorithm, precision_));
      continue;
    }
    if (chosen != ConvAlgorithm::Auto) {
      floats = std::max(floats, conv2d_cpu_scratch_floats(geometry, direction, chosen, precision_));
      continue;
    }
    // auto picks by timing: budget for the hungriest candidate it may pick.
    for (ConvAlgorithm candidate : concrete_conv_algorithms())
      if (conv_algorithm_unsupported_reason(candidate, direction, geometry).empty())
        floats = std::max(floats, conv2d_cpu_scratch_floats(geometry, direction, candidate, precision_));
  }
  return floats;
}

std::vector<Layer::HeldTensor> Conv2d::held_tensors() const {
  std::vector<HeldTensor> held = {{&weight_, "weight"}, {&weight_gradient_, "weight gradient"}};
  if (has_bias_) {
    held.push_back({&bias_, "bias"});
    held.push_back({&bias_gradient_, "bias gradient"});
  }
  return held;
}

namespace {

// One grow-only scratch buffer for every CPU Conv2d of a thread (the layers of a network run one
// after another), instead of one per layer: its size is the largest single need, not the sum.
std::vector<float>& conv_scratch() {
  thread_local std::vector<float> scratch;
  return scratch;
}

}  // namespace

int64_t conv2d_cpu_shared_scratch_capacity() { return static_cast<int64_t>(conv_scratch().size()); }

void conv2d_release_cpu_scratch() { std::vector<float>().swap(conv_scratch()); }

ConvSelector& Conv2d::selector() const {
  if (!selector_) selector_ = std::make_shared<ConvSelector>();  // used alone: the default policy
  return *selector_;
}

void Conv2d::configure(const LayerSettings& settings) {
  set_allow_tf32(settings.allow_tf32);
  set_cudnn_search(settings.cudnn_search);
  if (settings.conv_selector) selector_ = settings.conv_selector;
  set_precision(settings.precision);
}

void Conv2d::set_precision(Precision precision) {
  if (precision == precision_) return;
  precision_ = precision;
  set_constant_weights(constant_weights_);  // a prepared filter was made in the other precision
}

ConvAlgorithm Conv2d::preferred_algorithm(ConvDirection direction, const Conv2dGeometry& geometry) const {
  const std::optional<ConvAlgorithm>& own = algorithms_[static_cast<int>(direction)];
  try {
    return first_runnable_conv_algorithm(own ? std::vector<ConvAlgorithm>{*own} : selector().policy().algorithms,
                                         direction, geometry);
  } catch (const Error& error) {
    throw Error((name_.empty() ? std::string() : name_ + ": ") + error.what());
  }
}

ConvAlgorithm Conv2d::resolve_algorithm(ConvDirection direction, const Conv2dGeometry& geometry,
                                        const std::function<void(ConvAlgorithm)>& run_candidate,
                                        std::string* reason) const {
  const std::optional<ConvAlgorithm>& own = algorithms_[static_cast<int>(direction)];
  return selector().decide(name_, own ? &*own : nullptr, direction, geometry, run_candidate, reason);
}

std::function<void(ConvAlgorithm)> Conv2d::trial_runner(ConvDirection direction, const Conv2dGeometry& geometry,
                                                        const float* input, const float* output_gradient, float* output,
                                                        std::vector<float>& trial) const {
  const float* weight = weight_.data();  // (K,R,S,C)
  const Precision precision = precision_;
  switch (direction) {
    case ConvDirection::Forward: {
      const float* bias = has_bias_ ? bias_.data() : nullptr;  // (K)
      return [=](ConvAlgorithm candidate) {
        conv2d_forward_cpu(output, input, weight, bias, geometry, candidate, conv_scratch(), nullptr, precision);
      };
    }
    case ConvDirection::InputGradient:
      return [=, &trial](ConvAlgorithm candidate) {
        trial.assign(static_cast<size_t>(geometry.pixels() * geometry.C), 0.0f);  // (N,H,W,C)
        conv2d_input_gradient_cpu(trial.data(), output_gradient, weight, geometry, candidate, conv_scratch(),
                                  precision);
      };
    case ConvDirection::WeightGradient: {
      const int64_t weight_count = weight_.count();
      const bool bias = has_bias_;
      return [=, &trial](ConvAlgorithm candidate) {
        trial.assign(static_cast<size_t>(weight_count + geometry.K), 0.0f);  // (K,R,S,C) + (K)
        conv2d_weight_gradient_cpu(trial.data(), bias ? trial.data() + weight_count : nullptr, output_gradient, input,
                                   geometry, candidate, conv_scratch(), precision);
      };
    }
  }
  throw Error("Conv2d::trial_runner: unknown direction");
}

ConvAlgorithmDecision Conv2d::explain_algorithm(ConvDirection direction, const Shape& input) const {
  output_shape({input});  // checks (N,H,W,C) with this layer's C
  if (weight_.empty()) throw Error("Conv2d " + name_ + ": explain_algorithm before bind_parameters");
  require_device(weight_, Device::CPU, "Conv2d weight (explain_algorithm is about the CPU)");
  ConvAlgorithmDecision decision{geometry_for(input), ConvAlgorithm::Auto, ""};
  const Conv2dGeometry& g = decision.geometry;
  // Random operands of the real shape, made only when auto times a candidate.
  std::vector<float> images, output_gradient, output, trial;  // (N,H,W,C), (N,H,W,K) x2, trial
  std::function<void(ConvAlgorithm)> run;
  const auto run_candidate = [&](ConvAlgorithm candidate) {
    if (!run) {
      std::mt19937 generator(1);
      std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
      const auto random = [&](std::vector<float>& values, int64_t count) {
        values.resize(static_cast<size_t>(count));
        for (float& value : values) value = uniform(generator);
      };
      if (direction != ConvDirection::InputGradient) random(images, g.pixels() * g.C);
      if (direction != ConvDirection::Forward) random(output_gradient, g.pixels() * g.K);
      if (direction == ConvDirection::Forward) output.resize(static_cast<size_t>(g.pixels() * g.K));
      run = trial_runner(direction, g, images.data(), output_gradient.data(), output.data(), trial);
    }
    run(candidate);
  };
  decision.algorithm = resolve_algorithm(direction, g, run_candidate, &decision.reason);
  return decision;
}

LayerFunctions Conv2d::functions(Device device, const std::vector<Shape>& inputs, bool input_gradient) const {
  if (device != Device::CPU && precision_ == Precision::Bf16)
    return {
        "Conv2d::forward_cuda -> conv2d_forward_cuda -> round_to_bf16_cuda (input, weight), "
        "cudnnConvolutionForward (bf16 data, fp32 compute), bf16_to_float_add_bias_cuda",
        "Conv2d::backward_cuda -> conv2d_backward_cuda -> round_to_bf16_cuda (operands), "
        "cudnnConvolutionBackwardData + accumulate_bf16_cuda, cudnnConvolutionBackwardFilter + "
        "accumulate_bf16_cuda",
        "layers/precision.md"};
  if (device != Device::CPU)
    return {"Conv2d::forward_cuda -> conv2d_forward_cuda -> cudnnConvolutionForward (+ cudnnAddTensor for the bias)",
            "Conv2d::backward_cuda -> conv2d_backward_cuda -> cudnnConvolutionBackwardData, "
            "cudnnConvolutionBackwardFilter",
            "layers/conv2d.md"};
  const auto row = [&](ConvDirection direction) {
    try {
      const ConvAlgorithmDecision decision = explain_algorithm(direction, inputs.at(0));
      return std::string(conv_algorithm_name(decision.algorithm)) + " [" + decision.reason +
             "]: " + (precision_ == Precision::Bf16 ? "round_to_bf16_cpu (the operands), " : "") +
             conv_cpu_kernel(decision.algorithm, direction).calls;
    } catch (const Error& error) {  // a strict --conv-algo that cannot run it: what the run would say
      return std::string("(none runs it: ") + error.what() + ")";
    }
  };
  const std::string input_part =
      input_gradient ? "conv2d_input_gradient_cpu -> " + row(ConvDirection::InputGradient) + "; " : "";
  return {
      "Conv2d::forward_cpu -> conv2d_forward_cpu -> " + row(ConvDirection::Forward),
      "Conv2d::backward_cpu -> " + input_part + "conv2d_weight_gradient_cpu -> " + row(ConvDirection::WeightGradient),
      "layers/conv2d.md"};
}

void Conv2d::forward_cpu(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  const Tensor& input = *inputs[0];
  const Conv2dGeometry geometry = geometry_for(input.shape());
  std::vector<float> unused;  // the forward's candidates write into output, which the run overwrites
  const auto run = trial_runner(ConvDirection::Forward, geometry, input.data(), nullptr, output.data(), unused);
  const ConvAlgorithm algorithm = resolve_algorithm(ConvDirection::Forward, geometry, run);
  const int64_t prepared_floats = conv2d_prepared_filter_floats(geometry, algorithm);
  if (!constant_weights_ || prepared_floats == 0) {
    run(algorithm);
    return;
  }
  // Constant weights: the filter is prepared at the first forward (per algorithm) and kept.
  if (prepared_algorithm_ != algorithm) {
    prepared_.assign(static_cast<size_t>(prepared_floats), 0.0f);
    conv2d_prepare_filter_cpu(prepared_.data(), weight_.data(), geometry, algorithm, precision_);
    prepared_algorithm_ = algorithm;
  }
  conv2d_forward_cpu(output.data(), input.data(), weight_.data(), has_bias_ ? bias_.data() : nullptr, geometry,
                     algorithm, conv_scratch(), prepared_.data(), precision_);
}

void Conv2d::set_constant_weights(bool constant) {
  constant_weights_ = constant;
  std::vector<float>().swap(prepared_);
  prepared_algorithm_ = ConvAlgorithm::Auto;
}

void Conv2d::backward_cpu(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                          const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  const Tensor& input = *inputs[0];
  const Conv2dGeometry geometry = geometry_for(input.shape());
  std::vector<float>& scratch = conv_scratch();
  // auto times its candidates into throw-away buffers (the real gradients accumulate).
  std::vector<float> trial;
  if (input_gradients[0]) {
    const ConvAlgorithm algorithm = resolve_algorithm(
        ConvDirection::InputGradient, geometry,
        trial_runner(ConvDirection::InputGradient, geometry, input.data(), output_gradient.data(), nullptr, trial));
    conv2d_input_gradient_cpu(input_gradients[0]->data(), output_gradient.data(), weight_.data(), geometry, algorithm,
                              scratch, precision_);
  }
  const ConvAlgorithm algorithm = resolve_algorithm(
      ConvDirection::WeightGradient, geometry,
      trial_runner(ConvDirection::WeightGradient, geometry, input.data(), output_gradient.data(), nullptr, trial));
  std::vector<float>().swap(trial);
  conv2d_weight_gradient_cpu(weight_gradient_.data(), has_bias_ ? bias_gradient_.data() : nullptr,
                             output_gradient.data(), input.data(), geometry, algorithm, scratch, precision_);
}

}  // namespace pneumo
