// The memory budget of a training step (training_memory_budget, printed by `pneumo summary`):
// each convolution's predicted scratch equals what it really keeps, and the whole budget adds up
// to the measured growth of the process's peak resident memory over two training steps.
// Its own binary, so the peak (VmHWM) is this step's and not an earlier test's.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "engine/context.h"
#include "layers/adam.h"
#include "layers/conv2d.h"
#include "layers/network.h"
#include "layers/training_step.h"
#include "tests/support/gradient_check.h"

using namespace pneumo;
using namespace pneumo::testing;

namespace {

// A line of /proc/self/status ("VmRSS", "VmHWM") in bytes; -1 when unavailable.
int64_t proc_status_bytes(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.compare(0, key.size() + 1, key + ":") == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;
  return -1;
}

void run_steps(Network& network, int64_t batch, int steps) {
  Context context(Device::CPU);
  Adam adam;
  std::mt19937_64 generator(1);
  Tensor images = random_tensor(network.input_shape(batch), generator, 0.0f, 1.0f);
  Tensor masks(Device::CPU, network.input_shape(batch));
  for (int64_t i = 0; i < masks.count(); i += 3) masks.data()[i] = 1.0f;
  for (int step = 0; step < steps; ++step) train_step(context, network, adam, images, masks, 1e-3f);
}

constexpr double kMiB = 1024.0 * 1024.0;

}  // namespace

// PNEUMO_TEST_PRECISION=bf16 (CTest's test_memory_budget_bf16) runs this binary's steps with bf16
// convolutions, whose budget adds the rounded operand copies (`pneumo summary --precision bf16`).
static Precision test_precision() {
  const char* name = std::getenv("PNEUMO_TEST_PRECISION");
  return name ? parse_precision(name) : Precision::Fp32;
}

TEST_CASE("the memory budget adds up to the measured peak of two training steps") {
  const int64_t rss_before = proc_status_bytes("VmRSS");
  if (rss_before < 0) {
    std::printf("SKIPPED %s: /proc/self/status is not readable here\n", __FILE__);
    return;
  }
  conv2d_release_cpu_scratch();
  const int64_t batch = 4;
  Network network(Device::CPU, NetworkConfig{256, 16, 1, 4, 0.0f}, 1);
  network.set_precision(test_precision());
  const MemoryBudget budget = training_memory_budget(network, batch);
  run_steps(network, batch, 2);
  const int64_t growth = proc_status_bytes("VmHWM") - rss_before;
  const double predicted = static_cast<double>(budget.total()) * 4.0;
  std::printf("%s: memory budget %.1f MiB, measured peak growth %.1f MiB (ratio %.3f)\n",
              precision_name(network.precision()), predicted / kMiB, static_cast<double>(growth) / kMiB,
              static_cast<double>(growth) / predicted);
  // The margin: 5% of the budget, plus 48 MiB for what the budget leaves out (the thread pool's
  // stacks, OpenBLAS's buffers, the allocator's slack, the loss's and batch norm's small partials).
  CHECK(static_cast<double>(growth) >= 0.95 * predicted);
  CHECK(static_cast<double>(growth) <= 1.05 * predicted + 48.0 * kMiB);
}

TEST_CASE("the convolutions' shared scratch is exactly the largest need the budget predicts") {
  conv2d_release_cpu_scratch();
  const int64_t batch = 2;
  // depth 4 from 32 channels: the stem, 1x1 and 3x3 at 64..256 channels (direct kernels where the
  // CPU has them) and at 512 channels; the default algorithms (direct, else gemm).
  Network network(Device::CPU, NetworkConfig{64, 32, 1, 4, 0.0f}, 2);
  network.set_precision(test_precision());
  run_steps(network, batch, 1);
  int64_t largest = 0;
  int checked = 0;
  for (const NetworkNode& node : network.nodes()) {
    const auto* conv = dynamic_cast<const Conv2d*>(node.layer.get());
    if (!conv) continue;
    const NetworkNode* input = node.inputs[0] < 0 ? nullptr : &network.nodes()[static_cast<size_t>(node.inputs[0])];
    Shape input_shape = input ? input->image_shape : network.input_shape(1);
    input_shape[0] = batch;
    largest = std::max(largest, conv->scratch_floats({input_shape}, Device::CPU, input != nullptr));
    ++checked;
  }
  CHECK(checked == 1 + 4 + 4 * 2 + 1);
  CHECK(largest > 0);
  CHECK(conv2d_cpu_shared_scratch_capacity() == largest);
  CHECK(training_memory_budget(network, batch).layer_scratch == largest);
}

TEST_CASE("the budget's parts: parameters, moments, activations and the gradient pool") {
  Network network(Device::CPU, NetworkConfig{64, 4, 2, 4, 0.0f}, 3);
  const MemoryBudget budget = training_memory_budget(network, 3);
  const int64_t P = network.trainable_parameter_count();
  CHECK(budget.parameters == P);
  CHECK(budget.gradients == P);
  CHECK(budget.adam_m == P);
  CHECK(budget.adam_v == P);
  CHECK(budget.state == network.state_count());
  // Every node's output but those that run in place: each LeakyReLU (over its batch norm) and
  // each residual Add (over its conv2) shares its input's buffer.
  const ModelSummary summary = summarize(network, 3);
  int64_t own_buffers = 0;
  for (const SummaryRow& row : summary.rows)
    if (row.kind != "LeakyReLU" && row.kind != "Add") own_buffers += shape_count(row.output_shape);
  CHECK(budget.activations == own_buffers);
  CHECK(budget.activations < summary.activation_values);
  CHECK(budget.batch_tensors == 2 * 3 * 64 * 64);
  // The pool holds far less than one buffer per node, and at least the largest gradient twice
  // (a residual block's input gradient is live while its branch runs backward).
  CHECK(budget.activation_gradients < budget.activations / 2);
  CHECK(budget.activation_gradients >= 2 * 3 * 64 * 64 * 4);
}
