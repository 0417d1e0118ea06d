// pneumo summary: the model table of any configuration, and (--conv-algos) the CPU convolution
// algorithm every Conv2d would run in each direction of a training step, and why.
#include <algorithm>
#include <cstdio>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "apps/run_settings.h"
#include "engine/cpu_threads.h"
#include "kernels/cpu/cpu_isa.h"
#include "engine/check.h"
#include "engine/files.h"
#include "data/presentation/network_diagram.h"
#include "layers/checkpoint.h"
#include "layers/conv2d.h"
#include "layers/network.h"

namespace pneumo::cli {

namespace {

// One line per Conv2d x direction of a training step at `batch`: forward, input gradient (not
// for a conv reading the images, which Network::backward_node gives no gradient slot) and weight
// gradient, each decided as the layer decides it at run time (Conv2d::explain_algorithm).
void print_conv_algorithms(const Network& network, int64_t batch) {
  const ConvPolicy& policy = network.conv_selector().policy();
  if (policy.uses_auto()) {
    std::printf(
        "\nauto: timing every shape not in %s (each candidate twice on random data;\n"
        "tens of seconds at batch 8 on 2 cores)...\n",
        policy.tuning_file.empty() ? "a tuning file (none named: --conv-tuning FILE or PNEUMO_CONV_TUNING)"
                                   : quoted(policy.tuning_file, 200).c_str());
    std::fflush(stdout);
  }
  std::printf(
      "\nCPU convolution algorithms of one training step, batch %lld, %d threads, %s kernels, "
      "%s\n",
      static_cast<long long>(batch), cpu_thread_count(), cpu_isa_name(cpu_isa()), policy.describe().c_str());
  std::string table;
  char line[160];
  for (const NetworkNode& node : network.nodes()) {
    const auto* conv = dynamic_cast<const Conv2d*>(node.layer.get());
    if (!conv) continue;
    const Shape input = network.input_shapes(node, batch).at(0);  // (N,H,W,C)
    for (ConvDirection direction : kConvDirections) {
      if (direction == ConvDirection::InputGradient && node.inputs.at(0) < 0) continue;
      const ConvAlgorithmDecision decision = conv->explain_algorithm(direction, input);
      std::snprintf(line, sizeof line, "%-18s %-15s %-28s %-10s ", node.name.c_str(), conv_direction_name(direction),
                    describe_geometry(decision.geometry).c_str(), conv_algorithm_name(decision.algorithm));
      table += line + decision.reason + "\n";
    }
  }
  std::printf("%-18s %-15s %-28s %-10s %s\n%s", "layer", "direction", "shape (NxHxWxC -> K)", "algorithm", "why",
              table.c_str());
}

}  // namespace

int run_summary(const std::vector<std::string>& argv, const ConvPolicy& conv_policy) {
  Arguments arguments("summary",
                      "Prints the network as a table: every layer's name, output shape, parameters and forward\n"
                      "FLOPs, then the totals, then the memory budget of one training step at --batch on the CPU.\n"
                      "With --conv-algos, then the CPU convolution algorithm of every Conv2d in each\n"
                      "direction of a training step under --conv-algo, and why (auto: timed or from the\n"
                      "tuning file, as at run time). With --svg / --block-svg, also writes SVG pictures of the\n"
                      "graph and of one residual block (the figures of layers/training_step.md). Defaults to the\n"
                      "notebook's create_network(256, 32, 2, 4).");
  arguments.option("size", "S", "256", "input size");
  arguments.option("channels", "N", "32", "channels of the first convolution");
  arguments.option("blocks", "N", "2", "residual blocks per depth");
  arguments.option("depth", "N", "4", "downsampling stages");
  arguments.option("dropout", "P", "0", "dropout rate before each block's second conv (0 = none)");
  arguments.option("batch", "N", "1", "batch size for the shapes and FLOPs");
  arguments.option("preset", "NAME", "", "take the network of a training preset (notebook or cpu)");
  arguments.option("checkpoint", "FILE", "", "take the network of a checkpoint");
  arguments.flag("conv-algos", "print every convolution's CPU algorithm per direction, and why");
  arguments.option("threads", "N", "0", "CPU threads (0: all; part of auto's key, as in pneumo tune)");
  arguments.option("precision", "fp32|bf16", "fp32", "budget the step in this precision (layers/precision.md)");
  arguments.option("svg", "FILE", "", "write the network's graph as an SVG picture");
  arguments.option("block-svg", "FILE", "", "write one residual block (--block) as an SVG picture");
  arguments.option("block", "NAME", "block1_1", "the residual block --block-svg draws");
  if (!arguments.parse(argv)) return 0;
  if (arguments.integer("threads", 0) > 0) set_cpu_thread_count(static_cast<int>(arguments.integer("threads")));
  NetworkConfig config{arguments.integer("size"),
                       arguments.integer("channels"),
                       arguments.integer("blocks"),
                       arguments.integer("depth"),
                       0.0f,
                       static_cast<float>(arguments.number("dropout"))};
  if (!arguments.text("preset").empty()) config = preset_settings(arguments.text("preset")).network;
  if (!arguments.text("checkpoint").empty())
    config = network_config_from_metadata(read_checkpoint_info(arguments.text("checkpoint")).metadata,
                                          arguments.text("checkpoint"));
  validate_network_config(config);
  const std::string svg_path = arguments.text("svg"), block_svg_path = arguments.text("block-svg");
  require_outputs_distinct({{"--svg", svg_path}, {"--block-svg", block_svg_path}},
                           {{"--checkpoint", arguments.text("checkpoint")}});
  Network network(Device::CPU, config, 0);
  network.set_conv_policy(conv_policy);
  network.set_precision(parse_precision(arguments.choice("precision", {"fp32", "bf16"})));
  // The pictures are drawn first, so a bad --block fails before anything is printed.
  const std::string network_svg = svg_path.empty() ? "" : draw_network_svg(network);
  const std::string block_svg = block_svg_path.empty() ? "" : draw_residual_block_svg(network, arguments.text("block"));
  std::printf("create_network(input_size=%lld, channels=%lld, n_blocks=%lld, depth=%lld)\n",
              static_cast<long long>(config.input_size), static_cast<long long>(config.channels),
              static_cast<long long>(config.n_blocks), static_cast<long long>(config.depth));
  const int64_t batch = arguments.integer("batch");
  std::printf("%s", format_summary(summarize(network, batch)).c_str());
  std::printf("%s", format_memory_budget(training_memory_budget(network, batch), batch).c_str());
  if (arguments.has("conv-algos")) print_conv_algorithms(network, batch);
  // Each picture is written whole or not at all (an existing file is replaced only once the new
  // one is complete).
  if (!svg_path.empty()) {
    write_file_atomic(svg_path, network_svg);
    std::printf("wrote %s\n", svg_path.c_str());
  }
  if (!block_svg_path.empty()) {
    write_file_atomic(block_svg_path, block_svg);
    std::printf("wrote %s\n", block_svg_path.c_str());
  }
  return 0;
}

}  // namespace pneumo::cli
