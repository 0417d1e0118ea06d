// Per-layer benchmark of Conv2d on the network's shapes (notebook config: 256x256 input,
// channels 32 -> 512, batch 8), every CPU algorithm side by side: for each shape, algorithm and
// direction (forward, input gradient, weight gradient) the median time, GFLOP/s counted as the
// direct convolution's FLOPs (2 N H W K R R C, whatever the algorithm really multiplies) and the
// fraction of this machine's FMA peak, measured first with a small FMA loop on the same threads.
// Writes a PNG chart of the same (--chart FILE, default conv_algorithms.png) when built with the
// data library. (`pneumo tune` writes auto's tuning file from the same kind of timings.)
// With --device cuda the cuDNN path is timed per layer instead.
// Usage: bench_conv2d [--device cpu|cuda|all] [--batch N] [--repeats N] [--tf32] [--layer TEXT]
//                     [--threads T] [--algorithms a,b,...] [--chart FILE]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/blas_setup.h"
#include "benchmarks/support/benchmark_main.h"
#include "engine/context.h"
#include "engine/cpu_threads.h"
#include "engine/device.h"
#include "engine/parameters.h"
#include "kernels/cpu/cpu_isa.h"
#include "layers/conv2d.h"

#ifdef PNEUMO_HAVE_DATA
#include "data/presentation/chart.h"
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
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
    {"stem 3x3 1->32 @256", 256, 1, 32, 3, false, false},   {"down 1x1 32->64 @256", 256, 32, 64, 1, false, true},
    {"res 3x3 64->64 @128", 128, 64, 64, 3, false, true},   {"down 1x1 64->128 @128", 128, 64, 128, 1, false, true},
    {"res 3x3 128->128 @64", 64, 128, 128, 3, false, true}, {"down 1x1 128->256 @64", 64, 128, 256, 1, false, true},
    {"res 3x3 256->256 @32", 32, 256, 256, 3, false, true}, {"down 1x1 256->512 @32", 32, 256, 512, 1, false, true},
    {"res 3x3 512->512 @16", 16, 512, 512, 3, false, true}, {"head 1x1 512->1 @16", 16, 512, 1, 1, true, true},
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <typename Function>
double median_seconds(Context& context, int repeats, Function&& function) {
  function();  // warm-up: scratch, cuDNN plans, workspace
  context.synchronize();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    function();
    context.synchronize();
    times.push_back(seconds_since(start));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

#if defined(__x86_64__) && defined(__GNUC__)
// 12 independent FMA chains per thread (enough to cover the FMA latency x ports).
__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t iterations) {
  __m512 sum[12];
  for (auto& s : sum) s = _mm512_set1_ps(1.0f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i)
    for (auto& s : sum) s = _mm512_fmadd_ps(s, a, b);
  float out[16];
  __m512 total = sum[0];
  for (int i = 1; i < 12; ++i) total = _mm512_add_ps(total, sum[i]);
  _mm512_storeu_ps(out, total);
  return out[0];  // the result keeps the loop alive
}
// The bf16 peak: 12 independent vdpbf16ps chains (each lane: two bf16 products added to fp32).
__attribute__((target("avx512f,avx512bf16"))) double dpbf16_loop_avx512(int64_t iterations) {
  __m512 sum[12];
  for (auto& s : sum) s = _mm512_setzero_ps();
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);  // 1, 6e-8
  for (int64_t i = 0; i < iterations; ++i)
    for (auto& s : sum) s = _mm512_dpbf16_ps(s, a, b);
  float out[16];
  __m512 total = sum[0];
  for (int i = 1; i < 12; ++i) total = _mm512_add_ps(total, sum[i]);
  _mm512_storeu_ps(out, total);
  return out[0];
}
__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iterations) {
  __m256 sum[12];
  for (auto& s : sum) s = _mm256_set1_ps(1.0f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i)
    for (auto& s : sum) s = _mm256_fmadd_ps(s, a, b);
  float out[8];
  __m256 total = sum[0];
  for (int i = 1; i < 12; ++i) total = _mm256_add_ps(total, sum[i]);
  _mm256_storeu_ps(out, total);
  return out[0];
}
#endif

// This machine's fp32 FMA peak in GFLOP/s on cpu_thread_count() threads (best of 5 runs of
// ~50 ms), with the vector width the kernels may use (PNEUMO_CPU_ISA caps it).
double measure_fma_peak() {
#if defined(__x86_64__) && defined(__GNUC__)
  const CpuIsa isa = cpu_isa();
  if (isa == CpuIsa::Scalar) return 0;
  const int threads = cpu_thread_count();
  const int lanes = isa == CpuIsa::Avx512 ? 16 : 8;
  const int64_t iterations = 2000000;
  double best = 0, sink = 0;
  for (int run = 0; run < 5; ++run) {
    const auto start = std::chrono::steady_clock::now();
    parallel_for(threads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t)
        sink += isa == CpuIsa::Avx512 ? fma_loop_avx512(iterations) : fma_loop_avx2(iterations);
    });
    const double flops = 2.0 * lanes * 12 * iterations * threads;
    best = std::max(best, flops / seconds_since(start) * 1e-9);
  }
  if (sink == 12345.0) std::printf(" ");
  return best;
#else
  return 0;
#endif
}

// GFLOP/s of vdpbf16ps (4 FLOPs per fp32 lane) on every thread; 0 where the CPU lacks
// AVX512_BF16 or PNEUMO_CPU_ISA caps it below AVX-512.
double measure_bf16_peak() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_isa() != CpuIsa::Avx512 || !__builtin_cpu_supports("avx512bf16")) return 0;
  const int threads = cpu_thread_count();
  const int64_t iterations = 2000000;
  double best = 0, sink = 0;
  for (int run = 0; run < 5; ++run) {
    const auto start = std::chrono::steady_clock::now();
    parallel_for(threads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) sink += dpbf16_loop_avx512(iterations);
    });
    best = std::max(best, 4.0 * 16 * 12 * iterations * threads / seconds_since(start) * 1e-9);
  }
  if (sink == 12345.0) std::printf(" ");
  return best;
#else
  return 0;
#endif
}

struct Row {
  std::string layer;
  ConvDirection direction;
  ConvAlgorithm algorithm;
  Precision precision;
  double milliseconds, gflops;
};

void run_cuda(int64_t batch, int repeats, bool tf32, const std::string& only) {
  std::printf("\n%s, batch %lld, median of %d%s\n", describe_device(Device::CUDA).c_str(),
              static_cast<long long>(batch), repeats, tf32 ? ", TF32 allowed" : "");
  std::printf("%-24s %10s %10s %10s %10s\n", "layer", "fwd ms", "fwd GF/s", "bwd ms", "bwd GF/s");
  Context context(Device::CUDA);
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (const Case& c : kCases) {
    if (!only.empty() && std::string(c.name).find(only) == std::string::npos) continue;
    Conv2d layer(c.in_channels, c.out_channels, c.kernel_size, c.bias);
    layer.set_allow_tf32(tf32);
    std::vector<ParameterSpec> specs = layer.parameter_specs();
    for (auto& spec : specs) spec.name = "conv." + spec.name;
    ParameterStore store(Device::CUDA, specs, 1);
    layer.bind_parameters(store, "conv");
    const Shape input_shape = {batch, c.size, c.size, c.in_channels};
    const Shape output_shape = layer.output_shape({input_shape});
    Tensor input_host(Device::CPU, input_shape), gradient_host(Device::CPU, output_shape);
    for (int64_t i = 0; i < input_host.count(); ++i) input_host.data()[i] = uniform(generator);
    for (int64_t i = 0; i < gradient_host.count(); ++i) gradient_host.data()[i] = uniform(generator);
    const Tensor input = input_host.to(Device::CUDA), output_gradient = gradient_host.to(Device::CUDA);
    Tensor output(Device::CUDA, output_shape), input_gradient(Device::CUDA, input_shape);
    const double flops = static_cast<double>(layer.forward_flops({input_shape}));
    const double backward_flops = flops * (c.input_gradient ? 2.0 : 1.0);
    const double forward_time =
        median_seconds(context, repeats, [&] { layer.forward(context, {&input}, output, true); });
    const double backward_time = median_seconds(context, repeats, [&] {
      layer.backward(context, {&input}, output, output_gradient, {c.input_gradient ? &input_gradient : nullptr});
    });
    std::printf("%-24s %10.3f %10.1f %10.3f %10.1f\n", c.name, forward_time * 1e3, flops / forward_time * 1e-9,
                backward_time * 1e3, backward_flops / backward_time * 1e-9);
  }
}

std::vector<Row> run_cpu(int64_t batch, int repeats, const std::string& only,
                         const std::vector<ConvAlgorithm>& algorithms, const std::vector<Precision>& precisions,
                         double peak, double bf16_peak) {
  std::printf("\nCPU, %d threads, %s kernels, OpenBLAS kernels %s, batch %lld, median of %d\n", cpu_thread_count(),
              cpu_isa_name(cpu_isa()), openblas_kernel_name(), static_cast<long long>(batch), repeats);
  std::printf(
      "FMA peak (measured): %.1f GFLOP/s. GF/s counts direct-convolution FLOPs "
      "(2 N H W K R R C per direction).\n",
      peak);
  if (std::find(precisions.begin(), precisions.end(), Precision::Bf16) != precisions.end()) {
    if (bf16_peak > 0)
      std::printf("bf16 peak (measured, vdpbf16ps): %.1f GFLOP/s; bf16 rows' %% peak is of it.\n", bf16_peak);
    else
      std::printf(
          "bf16 peak: none measured (no AVX512_BF16 on this CPU, or PNEUMO_CPU_ISA below avx512); bf16 "
          "rows' %% peak is of the FMA peak.\n");
    std::printf(
        "bf16 rows run the portable path (operands rounded to bfloat16, then the fp32 kernel; layers/precision.md): "
        "this build has no bf16-instruction kernels.\n");
  }
  std::printf("%-24s %-15s %-10s %-5s %10s %10s %7s\n", "layer", "direction", "algorithm", "prec", "ms", "GF/s",
              "% peak");
  std::vector<Row> rows;
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::vector<float> scratch;
  for (const Case& c : kCases) {
    if (!only.empty() && std::string(c.name).find(only) == std::string::npos) continue;
    const Conv2dGeometry g{batch, c.size, c.size, c.in_channels, c.out_channels, c.kernel_size};
    std::vector<float> input(static_cast<size_t>(g.pixels() * g.C));
    std::vector<float> output_gradient(static_cast<size_t>(g.pixels() * g.K));
    std::vector<float> weight(static_cast<size_t>(g.K * g.kernel_size * g.kernel_size * g.C));
    for (float& v : input) v = uniform(generator);
    for (float& v : output_gradient) v = uniform(generator);
    for (float& v : weight) v = 0.05f * uniform(generator);
    std::vector<float> output(output_gradient.size()), input_gradient(input.size());
    std::vector<float> weight_gradient(weight.size()), bias(static_cast<size_t>(g.K)),
        bias_gradient(static_cast<size_t>(g.K));
    const double flops = 2.0 * g.pixels() * g.K * g.kernel_size * g.kernel_size * g.C;
    const std::vector<ConvDirection> directions =
        c.input_gradient ? std::vector<ConvDirection>{ConvDirection::Forward, ConvDirection::InputGradient,
                                                      ConvDirection::WeightGradient}
                         : std::vector<ConvDirection>{ConvDirection::Forward, ConvDirection::WeightGradient};
    Context context(Device::CPU);
    for (ConvDirection direction : directions)
      for (ConvAlgorithm algorithm : algorithms)
        for (Precision precision : precisions) {
          const std::string reason = conv_algorithm_unsupported_reason(algorithm, direction, g);
          if (!reason.empty()) {
            std::printf("%-24s %-15s %-10s %-5s %10s   (%s)\n", c.name, conv_direction_name(direction),
                        conv_algorithm_name(algorithm), precision_name(precision), "-", reason.c_str());
            continue;
          }
          // reference is slow by design: one run only.
          const int runs = algorithm == ConvAlgorithm::Reference ? 1 : repeats;
          const double seconds = median_seconds(context, runs, [&] {
            if (direction == ConvDirection::Forward)
              conv2d_forward_cpu(output.data(), input.data(), weight.data(), c.bias ? bias.data() : nullptr, g,
                                 algorithm, scratch, nullptr, precision);
            else if (direction == ConvDirection::InputGradient)
              conv2d_input_gradient_cpu(input_gradient.data(), output_gradient.data(), weight.data(), g, algorithm,
                                        scratch, precision);
            else
              conv2d_weight_gradient_cpu(weight_gradient.data(), c.bias ? bias_gradient.data() : nullptr,
                                         output_gradient.data(), input.data(), g, algorithm, scratch, precision);
          });
          const double gflops = flops / seconds * 1e-9;
          rows.push_back({c.name, direction, algorithm, precision, seconds * 1e3, gflops});
          const double row_peak = precision == Precision::Bf16 && bf16_peak > 0 ? bf16_peak : peak;
          std::printf("%-24s %-15s %-10s %-5s %10.3f %10.1f %6.0f%%\n", c.name, conv_direction_name(direction),
                      conv_algorithm_name(algorithm), precision_name(precision), seconds * 1e3, gflops,
                      row_peak > 0 ? 100.0 * gflops / row_peak : 0.0);
          std::fflush(stdout);
        }
  }
  return rows;
}

void write_chart(const std::vector<Row>& rows, double peak, const std::string& path) {
#ifdef PNEUMO_HAVE_DATA
  // One panel per direction: x = the network's conv shapes in order, one line per algorithm,
  // y = GFLOP/s, with the FMA peak as a flat line.
  std::vector<std::string> layers;
  for (const Row& row : rows)
    if (std::find(layers.begin(), layers.end(), row.layer) == layers.end()) layers.push_back(row.layer);
  const Color colors[] = {{150, 150, 150}, {66, 114, 196}, {221, 132, 82}, {85, 168, 104}, {196, 78, 82}};
  std::vector<LinePanel> panels;
  for (ConvDirection direction :
       {ConvDirection::Forward, ConvDirection::InputGradient, ConvDirection::WeightGradient}) {
    LinePanel panel;
    panel.title = conv_direction_name(direction);
    panel.x_label = "network conv shape (1 = stem ... 10 = head)";
    panel.y_label = "GFLOP/s (direct-equivalent)";
    int color = 0;
    for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
      LineSeries series;
      series.name = conv_algorithm_name(algorithm);
      series.color = colors[color++ % 5];
      for (const Row& row : rows)
        if (row.direction == direction && row.algorithm == algorithm && row.precision == Precision::Fp32) {
          const auto at = std::find(layers.begin(), layers.end(), row.layer) - layers.begin();
          series.x.push_back(double(at + 1));
          series.y.push_back(row.gflops);
        }
      if (!series.x.empty()) panel.series.push_back(series);
    }
    if (peak > 0 && !layers.empty())
      panel.series.push_back({"FMA peak", {1.0, double(layers.size())}, {peak, peak}, {0, 0, 0}});
    panels.push_back(panel);
  }
  draw_line_panels(panels, 620, 460).save_png(path);
  std::printf("\nchart: %s (x = ", path.c_str());
  for (size_t i = 0; i < layers.size(); ++i) std::printf("%s%zu %s", i ? ", " : "", i + 1, layers[i].c_str());
  std::printf(")\n");
#else
  (void)rows, (void)peak;
  std::printf("\nchart %s not written: bench_conv2d was built without the data library\n", path.c_str());
#endif
}

void declare_options(cli::Arguments& arguments) {
  arguments.option("device", "cpu|cuda|all", "cpu", "where to run (all: the CPU, and the GPU when present)");
  arguments.option("batch", "N", "8", "batch size");
  arguments.option("repeats", "N", "5", "timed runs per layer (the median is shown)");
  arguments.flag("tf32", "allow TF32 tensor-core math on the GPU");
  arguments.option("layer", "TEXT", "", "only the layers whose name contains TEXT");
  arguments.option("threads", "T", "0", "CPU threads (0: all hardware threads)");
  arguments.option("algorithms", "a,b,...", "", "CPU algorithms to time (default: every one)");
  arguments.option("precision", "fp32|bf16|all", "fp32",
                   "CPU precision of the timed convolutions (all: each algorithm in fp32 and bf16 side by side; "
                   "the chart draws fp32)");
  arguments.option("chart", "FILE", "conv_algorithms.png", "PNG chart of the CPU timings (\"\" for none)");
}

int time_convolutions(const cli::Arguments& arguments) {
  const std::string device_choice = arguments.choice("device", {"cpu", "cuda", "all"});
  const int64_t batch = arguments.integer("batch", 1);
  const int repeats = static_cast<int>(arguments.integer("repeats", 1));
  const bool tf32 = arguments.has("tf32");
  const std::string only = arguments.text("layer");
  const int threads = static_cast<int>(arguments.integer("threads", 0));
  const std::string chart = arguments.text("chart");
  if (threads > 0) set_cpu_thread_count(threads);
  std::vector<ConvAlgorithm> algorithms = concrete_conv_algorithms();
  if (!arguments.text("algorithms").empty()) algorithms = parse_conv_algorithms(arguments.text("algorithms"));
  if (device_choice == "cuda") resolve_device("cuda");  // throws with the reason when no GPU is usable
  if (device_choice == "cpu" || device_choice == "all") {
    const double peak = measure_fma_peak();
    const std::string precision = arguments.choice("precision", {"fp32", "bf16", "all"});
    const std::vector<Precision> precisions = precision == "all"
                                                  ? std::vector<Precision>{Precision::Fp32, Precision::Bf16}
                                                  : std::vector<Precision>{parse_precision(precision)};
    const double bf16_peak = precision == "fp32" ? 0.0 : measure_bf16_peak();
    const std::vector<Row> rows = run_cpu(batch, repeats, only, algorithms, precisions, peak, bf16_peak);
    if (!chart.empty()) write_chart(rows, peak, chart);
  }
  if (device_choice == "cuda" || (device_choice == "all" && cuda_device_count() > 0))
    run_cuda(batch, repeats, tf32, only);
  else if (device_choice == "all")
    std::printf("\nGPU skipped: %s\n", cuda_unavailable_reason().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return benchmark::run(argc, argv, "bench_conv2d",
                        "Every convolution shape of the notebook network (256x256 input, channels 32 -> 512) x\n"
                        "every CPU algorithm x direction: median ms, GFLOP/s, share of the measured FMA peak,\n"
                        "and a PNG chart; --device cuda times cuDNN per layer.",
                        declare_options, time_convolutions);
}
