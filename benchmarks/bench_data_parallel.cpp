// Data-parallel step time on this machine: run alone (1 rank) or under mpirun (N ranks); each
// rank trains its slice of a global batch with --threads threads. Prints the median step time
// split into compute and communication (the collectives of train_step: gradient allreduce, loss
// and metric sums; batch-norm sums are inside compute), and the time of one allreduce of a
// gradient buffer the size of the notebook network's (12,718,305 floats, ~51 MB).
//   build/bench_data_parallel --threads 2                       # 1 rank x 2 threads
//   mpirun -np 2 build/bench_data_parallel --threads 1          # 2 ranks x 1 thread
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/support/benchmark_main.h"
#include "engine/check.h"
#include "engine/context.h"
#include "engine/cpu_threads.h"
#include "engine/distributed.h"
#include "layers/adam.h"
#include "layers/network.h"
#include "layers/training_step.h"

using namespace pneumo;

namespace {
double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void declare_options(cli::Arguments& arguments) {
  arguments.option("threads", "T", "1", "CPU threads of each rank");
  arguments.option("steps", "N", "7", "timed training steps (after one warm-up)");
  arguments.option("size", "S", "128", "input size");
  arguments.option("channels", "N", "16", "channels of the first convolution");
  arguments.option("blocks", "N", "1", "residual blocks per depth");
  arguments.option("batch", "N", "8", "global batch (divided over the ranks)");
  arguments.option("sync-bn", "0|1", "1", "1: batch-norm statistics over the global batch; 0: per rank");
  arguments.option("buckets", "MB", "0", "gradient buckets overlapped with the backward pass (0: one sum after it)");
}

int time_data_parallel(const cli::Arguments& arguments) {
  const int threads = static_cast<int>(arguments.integer("threads", 1));
  const int steps = static_cast<int>(arguments.integer("steps", 1));
  NetworkConfig config;
  config.input_size = arguments.integer("size", 1);
  config.channels = arguments.integer("channels", 1);
  config.n_blocks = arguments.integer("blocks", 0);
  config.depth = 4;
  const int64_t batch = arguments.integer("batch", 1);
  const bool synchronized = arguments.choice("sync-bn", {"0", "1"}) == "1";
  const double bucket_mb = arguments.number("buckets");
  {
    std::unique_ptr<Communicator> communicator = make_communicator(Device::CPU);
    const int rank = communicator->rank(), ranks = communicator->size();
    set_cpu_thread_count(threads);
    communicator->set_gradient_bucket_floats(static_cast<int64_t>(bucket_mb * 1e6 / sizeof(float)));
    if (batch % ranks != 0) throw Error("--batch must divide over the ranks");
    Context context(Device::CPU);
    Network network(Device::CPU, config, 1);
    if (synchronized) network.set_batch_norm_communicator(communicator.get());
    Adam adam;
    const int64_t slice = batch / ranks, size = config.input_size;
    std::mt19937 generator(5);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    std::vector<float> image_values(static_cast<size_t>(slice * size * size)), mask_values(image_values.size());
    for (size_t i = 0; i < image_values.size(); ++i) {
      image_values[i] = uniform(generator);
      mask_values[i] = uniform(generator) < 0.1f ? 1.0f : 0.0f;
    }
    Tensor images(Device::CPU, {slice, size, size, 1}), masks(Device::CPU, images.shape());
    images.set_values(image_values);
    masks.set_values(mask_values);
    std::vector<double> totals, communications;
    for (int step = 0; step < steps + 1; ++step) {
      communicator->barrier();
      StepTimes times;
      train_step(context, network, adam, images, masks, 1e-4f, *communicator, &times);
      if (step == 0) continue;  // warm-up
      totals.push_back(times.total_seconds);
      communications.push_back(times.communication_seconds);
    }
    // One allreduce of the notebook network's gradient buffer.
    std::vector<float> gradient(12718305, 1.0f);
    std::vector<double> allreduce_times;
    for (int repeat = 0; repeat < 5; ++repeat) {
      communicator->barrier();
      const auto start = std::chrono::steady_clock::now();
      communicator->allreduce_sum(gradient.data(), static_cast<int64_t>(gradient.size()));
      allreduce_times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (rank == 0) {
      const double total = median(totals), communication = median(communications);
      std::printf(
          "%d rank(s) x %d thread(s), network %lldx%lld ch %lld blocks %lld depth %lld (%lld parameters, "
          "%.2f MB of gradients), global batch %lld (%lld per rank), batch norm %s, gradient buckets %s\n",
          ranks, threads, static_cast<long long>(size), static_cast<long long>(size),
          static_cast<long long>(config.channels), static_cast<long long>(config.n_blocks),
          static_cast<long long>(config.depth), static_cast<long long>(network.trainable_parameter_count()),
          network.trainable_parameter_count() * 4e-6, static_cast<long long>(batch), static_cast<long long>(slice),
          synchronized ? "synchronized" : "per rank",
          bucket_mb > 0 ? (std::to_string(bucket_mb) + " MB, overlapped").c_str() : "off (one sum after backward)");
      std::printf("step median %.1f ms = compute %.1f ms + communication %.1f ms (%.1f%%); %.1f images/s\n",
                  total * 1e3, (total - communication) * 1e3, communication * 1e3, 100 * communication / total,
                  batch / total);
      std::printf(
          "allreduce of 12,718,305 floats (50.9 MB, the notebook network's gradients): median %.1f ms "
          "(%.2f GB/s algorithm bandwidth)\n",
          median(allreduce_times) * 1e3, 50.873e-3 / median(allreduce_times));
    }
    return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  return benchmark::run(argc, argv, "bench_data_parallel",
                        "Data-parallel training step time: alone (1 rank) or under mpirun (N ranks), split into\n"
                        "compute and communication, and one allreduce of the notebook network's gradients.",
                        declare_options, time_data_parallel);
}
