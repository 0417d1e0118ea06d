// bench_network: times the notebook's network on one device: an inference forward, a training
// forward + backward, and a whole training step (forward, loss, backward, Adam), as medians in
// ms and images/s; with --layers also each node's forward and backward (synchronized on CUDA).
//
//   bench_network [--device auto|cpu|cuda] [--size 256] [--channels 32] [--blocks 2] [--depth 4]
//                 [--batch 8] [--repeats 3] [--threads T] [--layers] [--no-constant-weights]
//
// The inference forward runs with constant weights (Network::set_constant_weights), as
// `pneumo predict` does: the CPU convolutions prepare their filters once, not at every forward.
//
// The last line is machine-readable ("result: ... inference_images_per_s=X ...
// train_images_per_s=Y"); benchmarks/pytorch_network.py parses it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/support/benchmark_main.h"
#include "engine/blas_setup.h"
#include "engine/check.h"
#include "engine/context.h"
#include "engine/cpu_threads.h"
#include "engine/device.h"
#include "layers/network.h"
#include "layers/training_step.h"

using namespace pneumo;

namespace {

// OpenBLAS's kernel family ("none" without OpenBLAS). select_openblas_kernels in main avoids the
// generic "Prescott" kernels, which made the training step 4x slower on this machine.
std::string blas_kernels() { return openblas_kernel_name(); }

struct Options {
  std::string device = "auto";
  NetworkConfig config;
  int64_t batch = 8;
  int repeats = 3;
  int threads = 0;
  bool layers = false;
  bool constant_weights = true;           // inference: filters prepared once (Network::set_constant_weights)
  bool tf32 = false;                      // CUDA: let cuDNN use TF32 tensor cores
  Precision precision = Precision::Fp32;  // the convolutions' (layers/precision.h)
  CudnnSearch cudnn_search = CudnnSearch::Heuristic;  // CUDA: how cuDNN's algorithms are chosen
  ConvPolicy conv_policy;  // CPU: the environment's (PNEUMO_CONV_ALGO, ...), then --conv-algo/--conv-tuning
};

void declare_options(cli::Arguments& arguments) {
  arguments.option("device", "auto|cpu|cuda", "auto", "where to run (auto: the GPU when one is usable)");
  arguments.option("size", "S", "256", "input size");
  arguments.option("channels", "N", "32", "channels of the first convolution");
  arguments.option("blocks", "N", "2", "residual blocks per depth");
  arguments.option("depth", "N", "4", "downsampling stages");
  arguments.option("batch", "N", "8", "batch size");
  arguments.option("repeats", "N", "3", "timed runs (the median is shown)");
  arguments.option("threads", "T", "0", "CPU threads (0: all hardware threads)");
  arguments.flag("layers", "also time each node's forward and backward");
  arguments.flag("no-constant-weights",
                 "inference prepares (Winograd-transforms, packs) the filters at every forward, as "
                 "training does, instead of once");
  arguments.option("precision", "fp32|bf16", "fp32",
                   "convolutions in fp32, or bf16 operands with fp32 accumulation (layers/precision.md)");
  arguments.option("tf32", "on|off", "off",
                   "CUDA: TF32 tensor cores in cuDNN (PyTorch's cuDNN default is on, pneumo's off)");
  arguments.option("cudnn", "heuristic|find|deterministic", "heuristic",
                   "CUDA: cuDNN's algorithm per shape from its heuristic, timed (find, as PyTorch's "
                   "cudnn.benchmark=True), or deterministic ones only");
  arguments.option("conv-algo", "NAME[,NAME...]", "",
                   "CPU convolution algorithms, as pneumo's --conv-algo (default: PNEUMO_CONV_ALGO, else fast)");
  arguments.option("conv-tuning", "FILE", "",
                   "the tuning file auto reads (default: PNEUMO_CONV_TUNING, else none: auto times each shape)");
}

Options read_options(const cli::Arguments& arguments) {
  Options options;
  options.device = arguments.choice("device", {"auto", "cpu", "cuda"});
  options.config.input_size = arguments.integer("size", 1);
  options.config.channels = arguments.integer("channels", 1);
  options.config.n_blocks = arguments.integer("blocks", 1);
  options.config.depth = arguments.integer("depth", 1);
  options.batch = arguments.integer("batch", 1);
  options.repeats = static_cast<int>(arguments.integer("repeats", 1));
  options.threads = static_cast<int>(arguments.integer("threads", 0));
  options.layers = arguments.has("layers");
  options.constant_weights = !arguments.has("no-constant-weights");
  options.tf32 = arguments.choice("tf32", {"on", "off"}) == "on";
  options.precision = parse_precision(arguments.choice("precision", {"fp32", "bf16"}));
  options.cudnn_search = parse_cudnn_search(arguments.choice("cudnn", {"heuristic", "find", "deterministic"}));
  options.conv_policy = conv_policy_from_environment();
  if (!arguments.text("conv-algo").empty()) {
    options.conv_policy.algorithms = parse_conv_algorithms(arguments.text("conv-algo"));
    options.conv_policy.origin = "--conv-algo";
  }
  if (!arguments.text("conv-tuning").empty()) {
    options.conv_policy.tuning_file = arguments.text("conv-tuning");
    options.conv_policy.tuning_origin = "--conv-tuning";
  }
  return options;
}

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// Median wall time of `repeats` synchronized runs after one warm-up run.
double time_median_ms(Context& context, int repeats, const std::function<void()>& function) {
  function();
  context.synchronize();
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const double start = now_ms();
    function();
    context.synchronize();
    times.push_back(now_ms() - start);
  }
  return median(times);
}

// Synthetic batch: noisy images with bright squares; the masks mark the squares. (N,S,S,1).
void synthetic_batch(int64_t N, int64_t S, std::vector<float>& images, std::vector<float>& masks) {
  std::mt19937 generator(17);
  std::uniform_real_distribution<float> noise(0.0f, 0.3f);
  std::uniform_int_distribution<int64_t> corner(0, S - S / 4);
  images.assign(static_cast<size_t>(N * S * S), 0.0f);
  masks.assign(images.size(), 0.0f);
  for (auto& value : images) value = noise(generator);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t y0 = corner(generator), x0 = corner(generator), side = S / 4;
    for (int64_t y = y0; y < y0 + side; ++y)
      for (int64_t x = x0; x < x0 + side; ++x) {
        const size_t index = static_cast<size_t>((n * S + y) * S + x);
        images[index] += 0.6f;
        masks[index] = 1.0f;
      }
  }
}

void time_layers(Context& context, Network& network, const Tensor& images, int repeats, bool constant_weights) {
  const int count = static_cast<int>(network.nodes().size());
  std::vector<std::vector<double>> inference_times(static_cast<size_t>(count)),
      forward_times(static_cast<size_t>(count)), backward_times(static_cast<size_t>(count));
  Tensor output_gradient(network.device(), network.input_shape(images.N()));
  std::vector<float> ones(static_cast<size_t>(output_gradient.count()), 1e-3f);
  output_gradient.set_values(ones);
  network.set_constant_weights(constant_weights);  // as the whole inference forward runs
  for (int r = 0; r <= repeats; ++r) {             // r == 0 is the warm-up
    network.begin_forward(images);
    for (int i = 0; i < count; ++i) {
      context.synchronize();
      const double start = now_ms();
      network.forward_node(context, i, false);
      context.synchronize();
      if (r > 0) inference_times[static_cast<size_t>(i)].push_back(now_ms() - start);
    }
  }
  network.set_constant_weights(false);
  for (int r = 0; r <= repeats; ++r) {  // r == 0 is the warm-up
    network.parameters().zero_gradients();
    network.begin_forward(images);
    for (int i = 0; i < count; ++i) {
      context.synchronize();
      const double start = now_ms();
      network.forward_node(context, i, true);
      context.synchronize();
      if (r > 0) forward_times[static_cast<size_t>(i)].push_back(now_ms() - start);
    }
    network.begin_backward(output_gradient, nullptr);
    for (int i = count - 1; i >= 0; --i) {
      context.synchronize();
      const double start = now_ms();
      network.backward_node(context, i);
      context.synchronize();
      if (r > 0) backward_times[static_cast<size_t>(i)].push_back(now_ms() - start);
    }
    network.end_backward();
  }
  double inference_total = 0, forward_total = 0, backward_total = 0;
  std::vector<double> inference_median(static_cast<size_t>(count)), forward_median(static_cast<size_t>(count)),
      backward_median(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    inference_median[static_cast<size_t>(i)] = median(inference_times[static_cast<size_t>(i)]);
    inference_total += inference_median[static_cast<size_t>(i)];
    forward_median[static_cast<size_t>(i)] = median(forward_times[static_cast<size_t>(i)]);
    backward_median[static_cast<size_t>(i)] = median(backward_times[static_cast<size_t>(i)]);
    forward_total += forward_median[static_cast<size_t>(i)];
    backward_total += backward_median[static_cast<size_t>(i)];
  }
  const double total = forward_total + backward_total;
  std::printf("\nper layer (median of %d, ms; share of training forward + backward):\n", repeats);
  std::printf("%-18s %-12s %-22s %10s %10s %10s %7s\n", "node", "kind", "output", "inference", "forward", "backward",
              "share");
  struct KindTimes {
    double inference = 0, forward = 0, backward = 0;
  };
  std::map<std::string, KindTimes> by_kind;
  for (int i = 0; i < count; ++i) {
    const NetworkNode& node = network.nodes()[static_cast<size_t>(i)];
    const double n = inference_median[static_cast<size_t>(i)], f = forward_median[static_cast<size_t>(i)],
                 b = backward_median[static_cast<size_t>(i)];
    std::printf("%-18s %-12s %-22s %10.2f %10.2f %10.2f %6.1f%%\n", node.name.c_str(), node.layer->kind().c_str(),
                shape_string(node.output.shape()).c_str(), n, f, b, 100.0 * (f + b) / total);
    KindTimes& times = by_kind[node.layer->kind()];
    times.inference += n;
    times.forward += f;
    times.backward += b;
  }
  std::printf("%-18s %-12s %-22s %10.2f %10.2f %10.2f\n", "total", "", "", inference_total, forward_total,
              backward_total);
  std::printf("\nper layer kind (ms, sum over nodes):\n");
  for (const auto& [kind, times] : by_kind)
    std::printf("  %-12s inference %9.2f  forward %9.2f  backward %9.2f  share %5.1f%%\n", kind.c_str(),
                times.inference, times.forward, times.backward, 100.0 * (times.forward + times.backward) / total);
}

int time_network(const cli::Arguments& arguments) {
  const Options options = read_options(arguments);
  validate_network_config(options.config);
  if (options.threads > 0) set_cpu_thread_count(options.threads);
  const Device device = resolve_device(options.device);
  Context context(device);
  Network network(device, options.config, 1);
  network.set_conv_policy(options.conv_policy);
  network.set_allow_tf32(options.tf32);
  network.set_precision(options.precision);
  network.set_cudnn_search(options.cudnn_search);
  Adam adam(AdamConfig{});
  const NetworkConfig& config = network.config();
  const int64_t N = options.batch, S = config.input_size;

  std::vector<float> host_images, host_masks;
  synthetic_batch(N, S, host_images, host_masks);
  Tensor images(device, network.input_shape(N)), masks(device, network.input_shape(N));  // (N,S,S,1)
  images.set_values(host_images);                                                        // host -> device copies, once
  masks.set_values(host_masks);
  const ModelSummary summary = summarize(network, N);
  std::printf(
      "bench_network: %s; size %lld channels %lld blocks %lld depth %lld batch %lld; "
      "%lld parameters, %.2f GFLOPs forward per image; %s convolutions; median of %d\n",
      describe_device(device).c_str(), static_cast<long long>(S), static_cast<long long>(config.channels),
      static_cast<long long>(config.n_blocks), static_cast<long long>(config.depth), static_cast<long long>(N),
      static_cast<long long>(network.trainable_parameter_count()), summary.flops_per_image * 1e-9,
      precision_name(options.precision), options.repeats);
  if (device == Device::CPU) {
    const std::string kernels = blas_kernels();
    std::printf("  OpenBLAS kernels: %s%s\n", kernels.c_str(),
                kernels == "Prescott" || kernels == "prescott"
                    ? "  WARNING: generic SSE3 kernels; set OPENBLAS_CORETYPE=SkylakeX (or Haswell)"
                    : "");
    std::printf("  CPU convolutions: %s\n", options.conv_policy.describe().c_str());
  }
  std::fflush(stdout);

  // Inference as `pneumo predict` runs it: constant weights, so the CPU convolutions transform
  // their filters once (--no-constant-weights: at every forward, as a training step does).
  network.set_constant_weights(options.constant_weights);
  const double inference_ms =
      time_median_ms(context, options.repeats, [&] { network.forward(context, images, false); });
  network.set_constant_weights(false);
  std::printf("  inference forward        %10.1f ms  %9.2f images/s   (%s)\n", inference_ms, N * 1e3 / inference_ms,
              options.constant_weights ? "constant weights: filters prepared once"
                                       : "--no-constant-weights: filters prepared every forward");
  std::fflush(stdout);

  Tensor output_gradient(device, network.input_shape(N));  // (N,S,S,1) fixed d loss / d output
  std::vector<float> small(static_cast<size_t>(output_gradient.count()), 1e-3f);
  output_gradient.set_values(small);
  const double forward_backward_ms = time_median_ms(context, options.repeats, [&] {
    network.parameters().zero_gradients();
    network.forward(context, images, true);
    network.backward(context, output_gradient);
  });
  std::printf("  training forward+backward%10.1f ms  %9.2f images/s\n", forward_backward_ms,
              N * 1e3 / forward_backward_ms);
  std::fflush(stdout);

  StepResult last;
  const double train_ms = time_median_ms(context, options.repeats,
                                         [&] { last = train_step(context, network, adam, images, masks, 1e-3f); });
  std::printf("  training step (+loss,Adam)%9.1f ms  %9.2f images/s   (last loss %.4f)\n", train_ms, N * 1e3 / train_ms,
              static_cast<double>(last.loss.loss));
  const double training_flops = 3.0 * static_cast<double>(summary.flops_per_image) * N;
  std::printf("  training throughput ~%.1f GFLOP/s (3x forward FLOPs)\n", training_flops / (train_ms * 1e6));
  std::fflush(stdout);

  if (options.layers) time_layers(context, network, images, options.repeats, options.constant_weights);

  std::printf(
      "result: device=%s blas=%s batch=%lld inference_ms=%.3f inference_images_per_s=%.4f "
      "forward_backward_ms=%.3f train_ms=%.3f train_images_per_s=%.4f\n",
      device_name(device), device == Device::CPU ? blas_kernels().c_str() : "-", static_cast<long long>(N),
      inference_ms, N * 1e3 / inference_ms, forward_backward_ms, train_ms, N * 1e3 / train_ms);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return benchmark::run(argc, argv, "bench_network",
                        "Times the notebook's network on one device: an inference forward, a training forward +\n"
                        "backward and a whole training step, as medians in ms and images/s. The last line is\n"
                        "machine-readable (benchmarks/pytorch_network.py parses it).",
                        declare_options, time_network);
}
