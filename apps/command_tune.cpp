// pneumo tune: times every CPU convolution algorithm on the real shapes of a network (one
// training step's forward, input gradient and weight gradient of every Conv2d) and writes the
// winners to the per-machine tuning file that `auto` reads (layers/conv2d.md, "Algorithms").
#include <chrono>
#include <cstdio>
#include <random>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "engine/check.h"
#include "engine/context.h"
#include "engine/cpu_threads.h"
#include "kernels/cpu/cpu_isa.h"
#include "layers/conv2d.h"
#include "layers/network.h"

namespace pneumo::cli {

int run_tune(const std::vector<std::string>& argv, const ConvPolicy& conv_policy) {
  Arguments arguments("tune",
                      "Times the CPU convolution algorithms (gemm, direct, winograd2, winograd4) on every\n"
                      "convolution shape of the network, for one training step at the given batch and\n"
                      "threads, prints the table and writes it to a tuning file (--output, else\n"
                      "PNEUMO_CONV_TUNING, else ~/.cache/pneumo/conv-tuning.txt). Nothing reads it unless\n"
                      "a command names it: --conv-algo auto --conv-tuning FILE (or PNEUMO_CONV_TUNING).");
  arguments.option("size", "S", "256", "input size");
  arguments.option("channels", "N", "32", "channels of the first convolution");
  arguments.option("blocks", "N", "2", "residual blocks per depth");
  arguments.option("depth", "N", "4", "downsampling stages");
  arguments.option("batch", "N", "8", "batch size");
  arguments.option("threads", "N", "0", "CPU threads (0: all)");
  arguments.option("output", "FILE", "",
                   "tuning file to write (default: PNEUMO_CONV_TUNING, else ~/.cache/pneumo/conv-tuning.txt)");
  if (!arguments.parse(argv)) return 0;
  if (arguments.integer("threads") > 0) set_cpu_thread_count(static_cast<int>(arguments.integer("threads")));
  const NetworkConfig config{arguments.integer("size"), arguments.integer("channels"), arguments.integer("blocks"),
                             arguments.integer("depth"), 0.0f};
  validate_network_config(config);
  const std::string output = arguments.text("output").empty() ? default_conv_tuning_path() : arguments.text("output");

  // auto everywhere, no tuning file: everything is timed afresh.
  ConvPolicy policy;
  policy.algorithms = {ConvAlgorithm::Auto};
  policy.origin = "pneumo tune:";
  policy.report = conv_policy.report;
  Network network(Device::CPU, config, 1);
  network.set_conv_policy(policy);
  Context context(Device::CPU);
  const int64_t batch = arguments.integer("batch");
  Tensor images(Device::CPU, network.input_shape(batch));
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (int64_t i = 0; i < images.count(); ++i) images.data()[i] = uniform(generator);
  const auto start = std::chrono::steady_clock::now();
  network.forward(context, images, true);
  Tensor& gradient = network.output_gradient_buffer();
  for (int64_t i = 0; i < gradient.count(); ++i) gradient.data()[i] = uniform(generator) - 0.5f;
  network.parameters().zero_gradients();
  network.backward(context, gradient);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::printf("CPU convolution algorithms, %d threads, %s kernels, batch %lld (tuned in %.1f s)\n", cpu_thread_count(),
              cpu_isa_name(cpu_isa()), static_cast<long long>(batch), seconds);
  std::printf("%-15s %-26s %-10s %s\n", "direction", "shape (NxHxWxC -> K)", "chosen", "candidates");
  for (const ConvTuningRecord& record : network.conv_selector().records())
    std::printf("%-15s %-26s %-10s %s\n", conv_direction_name(record.direction),
                describe_geometry(record.geometry).c_str(), conv_algorithm_name(record.algorithm),
                record.candidates.c_str());
  network.conv_selector().write(output);
  std::printf("wrote %s\nuse it with: --conv-algo auto --conv-tuning %s\n", output.c_str(),
              quoted(output, 200).c_str());
  return 0;
}

}  // namespace pneumo::cli
