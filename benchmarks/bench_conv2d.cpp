// Per-layer benchmark of Conv2d on the network's shapes (notebook config: 256x256 input,
// channels 32 -> 512, batch 8): median forward and backward time and GFLOP/s on the CPU, and on
// the GPU when one is usable. Usage: bench_conv2d [--device cpu|cuda|all] [--batch N]
// [--repeats N] [--tf32] [--layer TEXT] [--threads T]  (--help lists them)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/support/benchmark_main.h"
#include "engine/context.h"
#include "engine/cpu_threads.h"
#include "engine/device.h"
#include "engine/parameters.h"
#include "layers/conv2d.h"

#ifdef PNEUMO_HAVE_OPENBLAS
extern "C" char* openblas_get_corename(void);
#endif

using namespace pneumo;

namespace {

struct Case {
  const char* name;
  int64_t size, in_channels, out_channels;
  int kernel_size;
  bool bias, input_gradient;
};

// Every distinct conv shape of create_network(256, 32, n_blocks=2, depth=4).
const Case kCases[] = {
    {"stem 3x3 1->32 @256", 256, 1, 32, 3, false, false},
    {"down 1x1 32->64 @256", 256, 32, 64, 1, false, true},
    {"res 3x3 64->64 @128", 128, 64, 64, 3, false, true},
    {"down 1x1 64->128 @128", 128, 64, 128, 1, false, true},
    {"res 3x3 128->128 @64", 64, 128, 128, 3, false, true},
    {"down 1x1 128->256 @64", 64, 128, 256, 1, false, true},
    {"res 3x3 256->256 @32", 32, 256, 256, 3, false, true},
    {"down 1x1 256->512 @32", 32, 256, 512, 1, false, true},
    {"res 3x3 512->512 @16", 16, 512, 512, 3, false, true},
    {"head 1x1 512->1 @16", 16, 512, 1, 1, true, true},
};

template <typename Function>
double median_seconds(Context& context, int repeats, Function&& function) {
  function();  // warm-up: scratch, cuDNN plans, workspace
  context.synchronize();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    function();
    context.synchronize();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void run(Device device, int64_t batch, int repeats, bool tf32, const std::string& only) {
  std::printf("\n%s, batch %lld, median of %d%s\n", describe_device(device).c_str(),
              static_cast<long long>(batch), repeats, tf32 ? ", TF32 allowed" : "");
#ifdef PNEUMO_HAVE_OPENBLAS
  // OpenBLAS 0.3.21 takes CPUs it does not know (e.g. Sapphire Rapids) for "Prescott" (SSE3
  // kernels, ~15x slower); OPENBLAS_CORETYPE=Cooperlake (or SkylakeX, Haswell) overrides it.
  if (device == Device::CPU) std::printf("OpenBLAS kernels: %s\n", openblas_get_corename());
#endif
  std::printf("%-24s %10s %10s %10s %10s\n", "layer", "fwd ms", "fwd GF/s", "bwd ms", "bwd GF/s");
  Context context(device);
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (const Case& c : kCases) {
    if (!only.empty() && std::string(c.name).find(only) == std::string::npos) continue;
    Conv2d layer(c.in_channels, c.out_channels, c.kernel_size, c.bias);
    layer.set_allow_tf32(tf32);
    std::vector<ParameterSpec> specs = layer.parameter_specs();
    for (auto& spec : specs) spec.name = "conv." + spec.name;
    ParameterStore store(device, specs, 1);
    layer.bind_parameters(store, "conv");
    const Shape input_shape = {batch, c.size, c.size, c.in_channels};
    const Shape output_shape = layer.output_shape({input_shape});
    Tensor input_host(Device::CPU, input_shape), gradient_host(Device::CPU, output_shape);
    for (int64_t i = 0; i < input_host.count(); ++i) input_host.data()[i] = uniform(generator);
    for (int64_t i = 0; i < gradient_host.count(); ++i) gradient_host.data()[i] = uniform(generator);
    const Tensor input = input_host.to(device), output_gradient = gradient_host.to(device);
    Tensor output(device, output_shape), input_gradient(device, input_shape);
    const double flops = static_cast<double>(layer.forward_flops({input_shape}));
    // Backward: the filter GEMM, plus the data GEMM when the input needs a gradient.
    const double backward_flops = flops * (c.input_gradient ? 2.0 : 1.0);
    const double forward_time = median_seconds(context, repeats, [&] {
      layer.forward(context, {&input}, output, true);
    });
    const double backward_time = median_seconds(context, repeats, [&] {
      layer.backward(context, {&input}, output, output_gradient,
                     {c.input_gradient ? &input_gradient : nullptr});
    });
    std::printf("%-24s %10.3f %10.1f %10.3f %10.1f\n", c.name, forward_time * 1e3,
                flops / forward_time * 1e-9, backward_time * 1e3,
                backward_flops / backward_time * 1e-9);
  }
}

void declare_options(cli::Arguments& arguments) {
  arguments.option("device", "cpu|cuda|all", "all", "where to run (all: the CPU, and the GPU when present)");
  arguments.option("batch", "N", "8", "batch size");
  arguments.option("repeats", "N", "5", "timed runs per layer (the median is shown)");
  arguments.flag("tf32", "allow TF32 tensor-core math on the GPU");
  arguments.option("layer", "TEXT", "", "only the layers whose name contains TEXT");
  arguments.option("threads", "T", "0", "CPU threads (0: all hardware threads)");
}

int time_convolutions(const cli::Arguments& arguments) {
  const std::string device_choice = arguments.choice("device", {"cpu", "cuda", "all"});
  const int64_t batch = arguments.integer("batch", 1);
  const int repeats = static_cast<int>(arguments.integer("repeats", 1));
  const bool tf32 = arguments.has("tf32");
  const std::string only = arguments.text("layer");
  const int threads = static_cast<int>(arguments.integer("threads", 0));
  if (threads > 0) set_cpu_thread_count(threads);
  if (device_choice == "cuda") resolve_device("cuda");  // throws with the reason when no GPU is usable
  if (device_choice == "cpu" || device_choice == "all") run(Device::CPU, batch, repeats, tf32, only);
  if (device_choice == "cuda" || (device_choice == "all" && cuda_device_count() > 0))
    run(Device::CUDA, batch, repeats, tf32, only);
  else if (device_choice == "all")
    std::printf("\nGPU skipped: %s\n", cuda_unavailable_reason().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return benchmark::run(argc, argv, "bench_conv2d",
                        "Median forward and backward time and GFLOP/s of every convolution shape of the notebook\n"
                        "network (256x256 input, channels 32 -> 512), on the CPU and on the GPU when one is usable.",
                        declare_options, time_convolutions);
}
