#include "layers/dropout.h"

#include <cmath>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "kernels/dropout_math.h"

namespace pneumo {

namespace {
constexpr int64_t kElementsPerChunk = 1 << 16;  // smallest parallel_for chunk of elements
}

Dropout::Dropout(float rate, uint64_t seed) : rate_(rate), seed_(seed) {
  if (!(rate >= 0.0f && rate < 1.0f)) throw Error("Dropout: rate must be in [0, 1), got " + std::to_string(rate));
}

Shape Dropout::output_shape(const std::vector<Shape>& inputs) const {
  require_input_count(*this, inputs);
  require_nhwc(inputs[0], "Dropout input");
  return inputs[0];
}

int64_t Dropout::forward_flops(const std::vector<Shape>& inputs) const { return shape_count(output_shape(inputs)); }

uint32_t Dropout::drop_threshold() const {
  // rate < 1, so rate * 2^32 < 2^32 fits (the largest float below 1 gives 2^32 - 256).
  return static_cast<uint32_t>(std::llround(static_cast<double>(rate_) * 4294967296.0));
}

void Dropout::forward_cpu(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool training) {
  saved_training_ = training;
  saved_key_ = dropout_stream_key(seed_, step_);
  saved_first_index_ = static_cast<uint64_t>(first_image_) * static_cast<uint64_t>(output.count() / output.N());
  // Inference, or rate 0: threshold 0 keeps everything with scale 1, i.e. a copy.
  const bool active = training && rate_ > 0.0f;
  dropout_forward_cpu(output.data(), inputs[0]->data(), saved_key_, saved_first_index_, active ? drop_threshold() : 0u,
                      active ? 1.0f / (1.0f - rate_) : 1.0f, output.count());
}

void Dropout::backward_cpu(Context&, const std::vector<const Tensor*>&, const Tensor&, const Tensor& output_gradient,
                           const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  const bool active = saved_training_ && rate_ > 0.0f;
  dropout_backward_cpu(input_gradients[0]->data(), output_gradient.data(), saved_key_, saved_first_index_,
                       active ? drop_threshold() : 0u, active ? 1.0f / (1.0f - rate_) : 1.0f, output_gradient.count());
}

void dropout_forward_cpu(float* output, const float* input, uint64_t key, uint64_t first_index, uint32_t drop_threshold,
                         float scale, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      output[i] =
          dropout_output(input[i], dropout_keep(key, first_index + static_cast<uint64_t>(i), drop_threshold), scale);
  });
}

void dropout_backward_cpu(float* input_gradient, const float* output_gradient, uint64_t key, uint64_t first_index,
                          uint32_t drop_threshold, float scale, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      input_gradient[i] += dropout_gradient(
          output_gradient[i], dropout_keep(key, first_index + static_cast<uint64_t>(i), drop_threshold), scale);
  });
}

LayerFunctions Dropout::functions(Device device, const std::vector<Shape>&, bool) const {
  const std::string b = device == Device::CPU ? "_cpu" : "_cuda";
  return {"Dropout::forward" + b + " -> dropout_forward" + b + " (identity at inference)",
          "Dropout::backward" + b + " -> dropout_backward" + b, "layers/dropout.md"};
}

}  // namespace pneumo
