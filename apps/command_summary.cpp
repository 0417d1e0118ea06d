// pneumo summary: the model table of any configuration.
#include <cstdio>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "apps/training.h"
#include "layers/checkpoint.h"
#include "layers/network.h"

namespace pneumo::cli {

int run_summary(const std::vector<std::string>& argv) {
  Arguments arguments("summary",
                      "Prints the network as a table: every layer's name, output shape, parameters and forward\n"
                      "FLOPs, then the totals, then the memory budget of one training step at --batch on the CPU.\n"
                      "Defaults to the notebook's create_network(256, 32, 2, 4).");
  arguments.option("size", "S", "256", "input size");
  arguments.option("channels", "N", "32", "channels of the first convolution");
  arguments.option("blocks", "N", "2", "residual blocks per depth");
  arguments.option("depth", "N", "4", "downsampling stages");
  arguments.option("dropout", "P", "0", "dropout rate before each block's second conv (0 = none)");
  arguments.option("batch", "N", "1", "batch size for the shapes and FLOPs");
  arguments.option("preset", "NAME", "", "take the network of a training preset (notebook or cpu)");
  arguments.option("checkpoint", "FILE", "", "take the network of a checkpoint");
  if (!arguments.parse(argv)) return 0;
  NetworkConfig config{arguments.integer("size"), arguments.integer("channels"), arguments.integer("blocks"),
                       arguments.integer("depth"), 0.0f,
                       static_cast<float>(arguments.number("dropout"))};
  if (!arguments.text("preset").empty()) config = preset_settings(arguments.text("preset")).network;
  if (!arguments.text("checkpoint").empty())
    config = network_config_from_metadata(read_checkpoint_info(arguments.text("checkpoint")).metadata,
                                          arguments.text("checkpoint"));
  validate_network_config(config);
  Network network(Device::CPU, config, 0);
  std::printf("create_network(input_size=%lld, channels=%lld, n_blocks=%lld, depth=%lld)\n",
              static_cast<long long>(config.input_size), static_cast<long long>(config.channels),
              static_cast<long long>(config.n_blocks), static_cast<long long>(config.depth));
  const int64_t batch = arguments.integer("batch");
  std::printf("%s", format_summary(summarize(network, batch)).c_str());
  std::printf("%s", format_memory_budget(training_memory_budget(network, batch), batch).c_str());
  return 0;
}

}  // namespace pneumo::cli
