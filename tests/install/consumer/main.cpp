// One training step of the notebook's network (layers/network.h) on random data, built against an
// installed pneumo: prints "loss <value>" (and what the build carried in).
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "engine/context.h"
#include "engine/tensor.h"
#include "layers/adam.h"
#include "layers/network.h"
#include "layers/training_step.h"
#ifdef PNEUMO_HAVE_DATA
#include "data/presentation/picture.h"
#endif

int main() {
  using namespace pneumo;
  NetworkConfig config;     // the notebook's network: 32 channels, 2 blocks per depth, depth 4
  config.input_size = 64;   // on 64 x 64 images, so that one CPU step is quick
  const int64_t batch = 2;  // images and masks: (2,64,64,1)
  Network network(Device::CPU, config, 1);
  Context context(Device::CPU);
  Adam adam;
  std::mt19937 generator(7);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> image_values(batch * config.input_size * config.input_size), mask_values(image_values.size());
  for (size_t i = 0; i < image_values.size(); ++i) {
    image_values[i] = uniform(generator);
    mask_values[i] = uniform(generator) < 0.2f ? 1.0f : 0.0f;
  }
  Tensor images(Device::CPU, {batch, config.input_size, config.input_size, 1});
  Tensor masks(Device::CPU, {batch, config.input_size, config.input_size, 1});
  images.set_values(image_values);
  masks.set_values(mask_values);
  const StepResult step = train_step(context, network, adam, images, masks, 1e-3f);
  std::printf("parameters %lld\n", static_cast<long long>(network.trainable_parameter_count()));
#ifdef PNEUMO_HAVE_CUDA
  std::printf("built with the CUDA back end\n");
#endif
#ifdef PNEUMO_HAVE_DATA
  const std::vector<uint8_t> grey = {0, 128, 255, 64};
  std::printf("png bytes %zu\n", encode_png(grey.data(), 2, 2, 1).size());
#endif
  std::printf("loss %.9g\n", step.loss.loss);
  return 0;
}
