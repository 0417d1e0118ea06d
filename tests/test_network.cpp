// The network graph and the training step: parameter count and names against PyTorch's count
// for the notebook network, shapes through the graph, finite-difference gradients through the
// shared checker, CPU-vs-CUDA parity of a training step, bit-exact resumption from a checkpoint,
// and the loss falling on a tiny synthetic task.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/context.h"
#include "layers/adam.h"
#include "layers/batch_norm.h"
#include "layers/checkpoint.h"
#include "layers/conv2d.h"
#include "layers/loss.h"
#include "layers/network.h"
#include "layers/training_step.h"
#include "tests/support/compare.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradient_check.h"

using pneumo::testing::check_gradient;
using pneumo::testing::max_abs;
using pneumo::testing::max_abs_difference;
using pneumo::testing::probe_objective;
using pneumo::testing::random_tensor;

using namespace pneumo;
using pneumo::testing::GradientCheckOptions;

namespace {

// Images with one bright square each, on noise; the masks mark the squares. (N,S,S,1) CPU.
void square_batch(int64_t N, int64_t S, uint64_t seed, Tensor& images, Tensor& masks) {
  std::mt19937_64 generator(seed);
  std::uniform_real_distribution<float> noise(0.0f, 0.3f);
  const int64_t side = S / 4;
  std::uniform_int_distribution<int64_t> corner(0, S - side);
  images = Tensor(Device::CPU, {N, S, S, 1});
  masks = Tensor(Device::CPU, {N, S, S, 1});
  for (int64_t i = 0; i < images.count(); ++i) images.data()[i] = noise(generator);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t y0 = corner(generator), x0 = corner(generator);
    for (int64_t y = y0; y < y0 + side; ++y)
      for (int64_t x = x0; x < x0 + side; ++x) {
        images.data()[(n * S + y) * S + x] += 0.6f;
        masks.data()[(n * S + y) * S + x] = 1.0f;
      }
  }
}

const NetworkConfig kTiny{16, 2, 1, 2, 0.0f};  // input 16, channels 2, 1 block, depth 2

}  // namespace

TEST_CASE("notebook network: 12,718,305 trainable parameters, as PyTorch counts them") {
  Network network(Device::CPU, NetworkConfig{}, 1);
  // PyTorch's sum(p.numel() for p in model.parameters()) for the same network
  // (benchmarks/pytorch_network.py); the BN running statistics are buffers, 2 * 4832 values.
  CHECK(network.trainable_parameter_count() == 12718305);
  CHECK(network.state_count() == 9664);
  const ParameterStore& store = network.parameters();
  CHECK(store.entry("conv0.weight").value.shape() == Shape{32, 3, 3, 1});
  CHECK(store.entry("down1.bn.gamma").value.shape() == Shape{32});
  CHECK(store.entry("down1.conv.weight").value.shape() == Shape{64, 1, 1, 32});
  CHECK(store.entry("block1_1.bn1.running_var").value.shape() == Shape{64});
  CHECK(!store.entry("block1_1.bn1.running_var").spec.trainable);
  CHECK(store.entry("block4_2.conv2.weight").value.shape() == Shape{512, 3, 3, 512});
  CHECK(store.entry("head.bn.beta").value.shape() == Shape{512});
  CHECK(store.entry("head.conv.weight").value.shape() == Shape{1, 1, 1, 512});
  CHECK(store.entry("head.conv.bias").value.shape() == Shape{1});
  CHECK(!store.contains("block4_3.bn1.gamma"));
  // 22 conv weights + 1 bias + 21 BN x 4 tensors.
  CHECK(store.entries().size() == 22 + 1 + 21 * 4);
}

TEST_CASE("shapes, node order and FLOPs through the notebook graph") {
  Network network(Device::CPU, NetworkConfig{}, 1);
  const ModelSummary summary = summarize(network, 8);
  REQUIRE(summary.rows.size() == 1 + 4 * (4 + 2 * 7) + 5);
  auto row = [&](const std::string& name) -> const SummaryRow& {
    for (const auto& r : summary.rows)
      if (r.name == name) return r;
    FAIL("no node " << name);
    return summary.rows[0];
  };
  CHECK(summary.rows.front().name == "conv0");
  CHECK(row("conv0").output_shape == Shape{8, 256, 256, 32});
  CHECK(row("down1.conv").output_shape == Shape{8, 256, 256, 64});
  CHECK(row("down1.pool").output_shape == Shape{8, 128, 128, 64});
  CHECK(row("block1_2.add").output_shape == Shape{8, 128, 128, 64});
  CHECK(row("down4.bn").output_shape == Shape{8, 32, 32, 256});
  CHECK(row("block4_2.add").output_shape == Shape{8, 16, 16, 512});
  CHECK(row("head.conv").output_shape == Shape{8, 16, 16, 1});
  CHECK(row("head.sigmoid").kind == "Sigmoid");
  CHECK(summary.rows.back().name == "head.upsample");
  CHECK(summary.rows.back().output_shape == Shape{8, 256, 256, 1});
  CHECK(row("block2_1.conv1").parameters == 128 * 9 * 128);
  CHECK(row("block2_1.bn1").parameters == 256);
  CHECK(row("block2_1.bn1").state == 256);
  CHECK(summary.trainable_parameters == 12718305);
  CHECK(summary.state_values == 9664);
  // Convolution FLOPs counted here independently: 2 * H * W * K * R * S * C per image.
  int64_t conv_flops = 2LL * 256 * 256 * 32 * 9 * 1;
  int64_t size = 256, channels = 32;
  for (int d = 0; d < 4; ++d) {
    conv_flops += 2LL * size * size * (channels * 2) * channels;  // 1x1 downsample conv
    channels *= 2;
    size /= 2;
    conv_flops += 2 * 2 * 2LL * size * size * channels * 9 * channels;  // 2 blocks x 2 convs
  }
  conv_flops += 2LL * size * size * 1 * channels + size * size;  // head 1x1 conv + bias
  int64_t summed = 0;
  for (const auto& r : summary.rows)
    if (r.kind == "Conv2d") summed += r.flops / 8;
  CHECK(summed == conv_flops);
  CHECK(summary.flops_per_image > conv_flops);
  const std::string table = format_summary(summary);
  CHECK(table.find("block4_2.conv2") != std::string::npos);
  CHECK(table.find("trainable parameters 12718305") != std::string::npos);
}

TEST_CASE("bad configurations and inputs are rejected with a message") {
  CHECK_THROWS_WITH_AS(Network(Device::CPU, NetworkConfig{100, 4, 1, 3, 0}, 1),
                       "network config: input_size must be a multiple of 2^depth = 8 in 8..16384, got 100", Error);
  CHECK_THROWS_AS(Network(Device::CPU, NetworkConfig{64, 0, 1, 3, 0}, 1), Error);
  Network network(Device::CPU, kTiny, 1);
  Context context(Device::CPU);
  Tensor wrong(Device::CPU, {2, 16, 16, 3});
  CHECK_THROWS_AS(network.forward(context, wrong, true), Error);
  Tensor gradient(Device::CPU, {2, 16, 16, 1});
  CHECK_THROWS_AS(network.backward(context, gradient), Error);  // before any forward
}

TEST_CASE("network gradients match finite differences (tiny config, shared checker)") {
  // Leaky slope 1 makes the activations linear: with ReLU kinks (slope 0 or 0.1) this tiny
  // network is so rough that central differences only approach the analytic gradient below
  // h = 3e-5, where float32 rounding takes over (measured). Every other layer, the residual
  // wiring and the batch statistics stay in the check; ReLU's own gradient is covered by its
  // layer test and by the PyTorch golden test (slope 0).
  NetworkConfig config = kTiny;
  config.leaky_slope = 1.0f;
  Network network(Device::CPU, config, 7);
  Context context(Device::CPU);
  std::mt19937_64 generator(11);
  Tensor images = random_tensor({2, 16, 16, 1}, generator, 0.0f, 1.0f);
  Tensor probe = random_tensor({2, 16, 16, 1}, generator, -1.0f, 1.0f);
  // Perturb BN gamma/beta and the head bias so that they matter.
  ParameterStore& store = network.parameters();
  for (const auto& entry : store.entries()) {
    if (!entry.spec.trainable) continue;
    const std::string& name = entry.spec.name;
    if (name.find(".gamma") != std::string::npos) {
      Tensor(entry.value).copy_from(random_tensor(entry.spec.shape, generator, 0.7f, 1.3f));
    } else if (name.find(".beta") != std::string::npos || name.find(".bias") != std::string::npos) {
      Tensor(entry.value).copy_from(random_tensor(entry.spec.shape, generator, -0.3f, 0.3f));
    }
  }
  auto objective = [&] { return probe_objective(network.forward(context, images, true), probe); };
  objective();
  store.zero_gradients();
  Tensor input_gradient(Device::CPU, images.shape());
  network.backward(context, probe, &input_gradient);

  // Max-pool switches remain: a step of 1e-3 keeps the central difference on one piece.
  GradientCheckOptions options;
  options.step = 1e-3;
  options.absolute_tolerance = 2e-3;
  options.relative_tolerance = 1e-2;
  options.max_elements = 60;
  for (const char* name : {"conv0.weight", "down1.bn.gamma", "down1.conv.weight", "block1_1.bn2.beta",
                           "block2_1.conv2.weight", "head.bn.gamma", "head.conv.weight", "head.conv.bias"}) {
    const ParameterEntry& entry = store.entry(name);
    Tensor values = entry.value;
    auto result = check_gradient(objective, values, entry.gradient, name, options);
    INFO(result.message);
    CHECK(result.ok);
  }
  auto result = check_gradient(objective, images, input_gradient, "input", options);
  INFO(result.message);
  CHECK(result.ok);
  // A second backward accumulates: parameter gradients double.
  std::vector<float> once = store.entry("down2.conv.weight").gradient.to_vector();
  objective();
  network.backward(context, probe);
  std::vector<float> twice = store.entry("down2.conv.weight").gradient.to_vector();
  for (size_t i = 0; i < once.size(); ++i) CHECK(twice[i] == doctest::Approx(2 * once[i]).epsilon(1e-4));
}

TEST_CASE("a checkpoint reproduces the next training step bit for bit (CPU)") {
  const NetworkConfig config{32, 4, 1, 2, 0.0f};
  Context context(Device::CPU);
  Tensor images, masks;
  square_batch(4, 32, 3, images, masks);
  const std::string path = "test_network_checkpoint.safetensors";

  Network first(Device::CPU, config, 5);
  Adam first_adam;
  train_step(context, first, first_adam, images, masks, 1e-3f);
  train_step(context, first, first_adam, images, masks, 1e-3f);
  save_checkpoint(path, first.parameters(), CheckpointInfo{first_adam.step_count(), 0, {}, {}});
  const StepResult a = train_step(context, first, first_adam, images, masks, 1e-3f);

  Network second(Device::CPU, config, 99);  // different initialization, overwritten by the load
  CHECK(second.parameters().values().to_vector() != first.parameters().values().to_vector());
  Adam second_adam;
  const CheckpointInfo info = load_checkpoint(path, second.parameters());
  CHECK(info.step == 2);
  second_adam.set_step_count(info.step);
  const StepResult b = train_step(context, second, second_adam, images, masks, 1e-3f);
  std::remove(path.c_str());

  CHECK(a.loss.loss == b.loss.loss);
  CHECK(a.metrics.mean_iou == b.metrics.mean_iou);
  CHECK(first.output().to_vector() == second.output().to_vector());
  CHECK(first.parameters().values().to_vector() == second.parameters().values().to_vector());
  CHECK(first.parameters().state().to_vector() == second.parameters().state().to_vector());
  CHECK(first.parameters().adam_m().to_vector() == second.parameters().adam_m().to_vector());
  CHECK(first.parameters().adam_v().to_vector() == second.parameters().adam_v().to_vector());
}

TEST_CASE("the loss falls over 30 steps on bright squares -> masks (CPU)") {
  const NetworkConfig config{32, 4, 1, 2, 0.0f};
  Context context(Device::CPU);
  Network network(Device::CPU, config, 1);
  Adam adam;
  Tensor images, masks;
  square_batch(8, 32, 21, images, masks);
  std::vector<double> losses;
  for (int step = 0; step < 30; ++step)
    losses.push_back(train_step(context, network, adam, images, masks, 1e-2f).loss.loss);
  const StepResult evaluated = evaluate_batch(context, network, images, masks);
  INFO("first loss " << losses.front() << ", last " << losses.back() << ", evaluated " << evaluated.loss.loss
                     << " mean IoU " << evaluated.metrics.mean_iou);
  CHECK(losses.back() < 0.6 * losses.front());
  // Inference uses the running statistics, which trail the weights (momentum 0.9): lower than at
  // the start, not as low as the training loss.
  CHECK(evaluated.loss.loss < 0.9 * losses.front());
  CHECK(evaluated.metrics.accuracy > 0.8);
  CHECK(adam.step_count() == 30);
}

TEST_CASE("a smaller batch reuses the buffers (grow-only) and gives the same per-image result") {
  Network network(Device::CPU, kTiny, 3);
  Context context(Device::CPU);
  std::mt19937_64 generator(5);
  Tensor images = random_tensor({3, 16, 16, 1}, generator, 0.0f, 1.0f);
  const std::vector<float> three = network.forward(context, images, false).to_vector();
  const float* buffer = network.output().data();
  Tensor one = Tensor::view(images.data(), Device::CPU, {1, 16, 16, 1});
  const std::vector<float> single = network.forward(context, one, false).to_vector();
  CHECK(network.output().shape() == Shape{1, 16, 16, 1});
  CHECK(network.output().data() == buffer);  // a leading view, no new allocation
  for (size_t i = 0; i < single.size(); ++i) CHECK(single[i] == doctest::Approx(three[i]).epsilon(1e-6));
  // A backward at the smaller batch uses the pooled gradients sized for the larger one.
  Tensor probe = random_tensor({1, 16, 16, 1}, generator);
  Tensor input_gradient(Device::CPU, {1, 16, 16, 1});
  network.forward(context, one, false);  // inference: the running statistics stay as they are
  network.backward(context, probe, &input_gradient);
  // Back to the larger batch: same buffer, same values as the first time.
  const std::vector<float> again = network.forward(context, images, false).to_vector();
  CHECK(network.output().data() == buffer);
  CHECK(again == three);
}

TEST_CASE("constant weights: the same inference bit for bit, with filters kept; what would change the weights throws") {
  const NetworkConfig config{32, 16, 1, 2, 0.0f};  // 16..64 channels: the SIMD Winograd panels
  Context context(Device::CPU);
  Tensor images, masks;
  square_batch(3, 32, 12, images, masks);
  for (ConvAlgorithm algorithm :
       {ConvAlgorithm::Winograd4, ConvAlgorithm::Winograd2, ConvAlgorithm::Direct, ConvAlgorithm::Gemm}) {
    const std::string algorithm_name = conv_algorithm_name(algorithm);
    CAPTURE(algorithm_name);
    // The algorithm wherever it runs the shape, gemm elsewhere (the 1x1 convolutions: Winograd).
    ConvPolicy policy;
    policy.algorithms = {algorithm, ConvAlgorithm::Gemm};
    Network network(Device::CPU, config, 3);
    network.set_conv_policy(policy);
    Adam adam;
    train_step(context, network, adam, images, masks, 1e-2f);  // running statistics, not init
    const std::vector<float> plain = network.forward(context, images, false).to_vector();
    network.set_constant_weights(true);
    CHECK(network.constant_weights());
    for (int call = 0; call < 2; ++call) CHECK(network.forward(context, images, false).to_vector() == plain);
    // Each convolution keeps exactly the filter its algorithm prepares: Winograd's U or the
    // direct packing where that algorithm runs the shape (on this CPU), nothing for gemm.
    int64_t kept = 0, expected = 0;
    for (const NetworkNode& node : network.nodes())
      if (const auto* conv = dynamic_cast<const Conv2d*>(node.layer.get())) {
        kept += conv->prepared_filter_floats();
        const Shape in = network.input_shapes(node, 3)[0];  // (N,H,W,C)
        const Conv2dGeometry g{in[0], in[1], in[2], in[3], conv->out_channels(), conv->kernel_size()};
        const bool runs = conv_algorithm_unsupported_reason(algorithm, ConvDirection::Forward, g).empty();
        expected += conv2d_prepared_filter_floats(g, runs ? algorithm : ConvAlgorithm::Gemm);
      }
    CHECK(kept == expected);
    if (algorithm == ConvAlgorithm::Winograd4) CHECK(expected > 0);  // runs on every CPU
    // While constant, whatever would change the weights refuses, naming what and why.
    CHECK_THROWS_WITH_AS(adam.step(context, network.parameters(), 1e-2f),
                         doctest::Contains("Adam::step: the weights are declared constant"), Error);
    CHECK_THROWS_WITH_AS(network.forward(context, images, true),
                         doctest::Contains("Network::forward (training): the weights are declared constant"), Error);
    CHECK_THROWS_WITH_AS(load_checkpoint("any.safetensors", network.parameters()),
                         doctest::Contains("load_checkpoint any.safetensors: the weights are declared constant"),
                         Error);
    CHECK_THROWS_WITH_AS(network.parameters().copy_from(network.parameters()),
                         doctest::Contains("copy_from: the weights are declared constant"), Error);
    CHECK(network.forward(context, images, false).to_vector() == plain);
    // Off: the filters are dropped and training goes on; the next inference sees the new weights.
    network.set_constant_weights(false);
    for (const NetworkNode& node : network.nodes())
      if (const auto* conv = dynamic_cast<const Conv2d*>(node.layer.get())) CHECK(conv->prepared_filter_floats() == 0);
    train_step(context, network, adam, images, masks, 1e-2f);
    const std::vector<float> after = network.forward(context, images, false).to_vector();
    CHECK(after != plain);
    network.set_constant_weights(true);
    CHECK(network.forward(context, images, false).to_vector() == after);
  }
}

TEST_CASE(
    "in place: each ReLU over (and fused into) its batch norm, each Add over its conv2; the same step bit for bit") {
  const NetworkConfig config{32, 4, 2, 2, 0.0f};
  Context context(Device::CPU);
  Tensor images, masks;
  square_batch(4, 32, 9, images, masks);
  Network shared(Device::CPU, config, 4), separate(Device::CPU, config, 4);
  separate.set_in_place(false);
  CHECK(shared.in_place());
  Adam shared_adam, separate_adam;
  for (int step = 0; step < 2; ++step) {
    const StepResult a = train_step(context, shared, shared_adam, images, masks, 1e-2f);
    const StepResult b = train_step(context, separate, separate_adam, images, masks, 1e-2f);
    CHECK(a.loss.loss == b.loss.loss);
  }
  CHECK(shared.output().to_vector() == separate.output().to_vector());
  CHECK(shared.parameters().values().to_vector() == separate.parameters().values().to_vector());
  CHECK(shared.parameters().gradients().to_vector() == separate.parameters().gradients().to_vector());
  CHECK(shared.parameters().state().to_vector() == separate.parameters().state().to_vector());
  // The plan, from the graph's own wiring: which node writes over which.
  int relus = 0, adds = 0;
  for (size_t j = 0; j < shared.nodes().size(); ++j) {
    const NetworkNode& node = shared.nodes()[j];
    const std::string kind = node.layer->kind();
    INFO(node.name);
    CHECK(separate.nodes()[j].overwrites == -1);
    CHECK(!separate.nodes()[j].fused);
    CHECK(node.fused == (kind == "LeakyReLU"));  // CPU: applied by its batch norm's pass
    if (kind == "LeakyReLU") {
      ++relus;
      REQUIRE(node.overwrites == node.inputs[0]);
      const auto* batch_norm =
          dynamic_cast<const BatchNorm2d*>(shared.nodes()[static_cast<size_t>(node.inputs[0])].layer.get());
      REQUIRE(batch_norm != nullptr);
      CHECK(batch_norm->fused_leaky_relu() == std::optional<float>(0.0f));
    } else if (kind == "Add") {
      ++adds;
      REQUIRE(node.overwrites == node.inputs[0]);
      CHECK(shared.nodes()[static_cast<size_t>(node.inputs[0])].name ==
            node.name.substr(0, node.name.size() - 3) + "conv2");
    } else {
      CHECK(node.overwrites == -1);
    }
    if (node.overwrites >= 0)
      CHECK(node.output.data() == shared.nodes()[static_cast<size_t>(node.overwrites)].output.data());
    for (size_t i = 0; i < j; ++i) CHECK(separate.nodes()[i].output.data() != separate.nodes()[j].output.data());
  }
  CHECK(relus == 2 * 1 + 2 * 2 * 2 + 1);  // down1..2, two per block, head
  CHECK(adds == 2 * 2);
  // The budget counts each shared buffer once: the ReLU and Add outputs are saved.
  int64_t saved = 0;
  for (const NetworkNode& node : shared.nodes())
    if (node.overwrites >= 0) saved += shape_count(node.output.shape());
  CHECK(training_memory_budget(separate, 4).activations - training_memory_budget(shared, 4).activations == saved);
  // A negative slope changes the sign: that ReLU keeps its own buffer (the Adds still share).
  NetworkConfig negative = config;
  negative.leaky_slope = -0.1f;
  Network flipped(Device::CPU, negative, 4);
  for (const NetworkNode& node : flipped.nodes()) {
    CHECK(node.overwrites == (node.layer->kind() == "Add" ? node.inputs[0] : -1));
    CHECK(!node.fused);
  }
  // Turning in place off undoes the fusion too.
  shared.set_in_place(false);
  for (const NetworkNode& node : shared.nodes()) {
    CHECK(!node.fused);
    if (const auto* batch_norm = dynamic_cast<const BatchNorm2d*>(node.layer.get()))
      CHECK(!batch_norm->fused_leaky_relu());
  }
}

PNEUMO_GPU_TEST_CASE("CPU and CUDA agree on a whole training step (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  const NetworkConfig config{64, 8, 2, 3, 0.0f};
  Tensor images, masks;
  square_batch(4, 64, 8, images, masks);
  Context cpu(Device::CPU), cuda(Device::CUDA);
  Network on_cpu(Device::CPU, config, 13), on_cuda(Device::CUDA, config, 13);
  CHECK(on_cpu.parameters().values().to_vector() == on_cuda.parameters().values().to_vector());
  Adam cpu_adam, cuda_adam;
  Tensor cuda_images = images.to(Device::CUDA), cuda_masks = masks.to(Device::CUDA);
  const StepResult a = train_step(cpu, on_cpu, cpu_adam, images, masks, 1e-3f);
  const StepResult b = train_step(cuda, on_cuda, cuda_adam, cuda_images, cuda_masks, 1e-3f);
  CHECK(b.loss.loss == doctest::Approx(a.loss.loss).epsilon(1e-4));
  CHECK(b.metrics.accuracy == doctest::Approx(a.metrics.accuracy).epsilon(1e-3));
  CHECK(max_abs_difference(on_cpu.output().to_vector(), on_cuda.output().to_vector()) < 1e-4);
  // Gradients per parameter, relative to the tensor's largest gradient (cuDNN sums in another order).
  for (const auto& entry : on_cpu.parameters().entries()) {
    if (!entry.spec.trainable) continue;
    const std::vector<float> expected = entry.gradient.to_vector();
    const std::vector<float> actual = on_cuda.parameters().entry(entry.spec.name).gradient.to_vector();
    INFO(entry.spec.name);
    CHECK(max_abs_difference(expected, actual) <= 1e-3 * max_abs(expected) + 1e-7);
  }
  // After Adam: each weight moves by about lr; a near-zero gradient may flip sign between back
  // ends, so the bound is one full step (1e-3) for single elements, much tighter on average.
  const std::vector<float> values_cpu = on_cpu.parameters().values().to_vector();
  const std::vector<float> values_cuda = on_cuda.parameters().values().to_vector();
  CHECK(max_abs_difference(values_cpu, values_cuda) <= 2.1e-3);
  double sum = 0;
  for (size_t i = 0; i < values_cpu.size(); ++i) sum += std::fabs(double(values_cpu[i]) - values_cuda[i]);
  CHECK(sum / values_cpu.size() < 2e-5);
  CHECK(max_abs_difference(on_cpu.parameters().state().to_vector(), on_cuda.parameters().state().to_vector()) < 1e-4);
}

TEST_CASE("--dropout: one node per block, the same parameter names, masks per step, exact resume") {
  NetworkConfig plain_config{32, 4, 2, 2, 0.0f};
  NetworkConfig dropout_config = plain_config;
  dropout_config.dropout = 0.3f;
  Network plain(Device::CPU, plain_config, 5);
  Network with_dropout(Device::CPU, dropout_config, 5);
  CHECK(with_dropout.nodes().size() == plain.nodes().size() + 2 * 2);
  CHECK(with_dropout.nodes()[10].name == "block1_1.dropout");  // after relu2, before conv2
  CHECK(with_dropout.nodes()[11].name == "block1_1.conv2");
  std::vector<std::string> plain_names, dropout_names;
  for (const ParameterEntry& entry : plain.parameters().entries()) plain_names.push_back(entry.spec.name);
  for (const ParameterEntry& entry : with_dropout.parameters().entries()) dropout_names.push_back(entry.spec.name);
  CHECK(plain_names == dropout_names);
  CHECK(plain.parameters().values().to_vector() == with_dropout.parameters().values().to_vector());
  NetworkConfig bad = plain_config;
  bad.dropout = 1.0f;
  CHECK_THROWS_AS(validate_network_config(bad), Error);

  Context context(Device::CPU);
  Tensor images, masks;
  square_batch(2, 32, 3, images, masks);
  // Inference ignores dropout; training draws a new mask each step.
  CHECK(with_dropout.forward(context, images, false).to_vector() == plain.forward(context, images, false).to_vector());
  with_dropout.set_dropout_step(0);
  const std::vector<float> step0 = with_dropout.forward(context, images, true).to_vector();
  with_dropout.set_dropout_step(1);
  CHECK(with_dropout.forward(context, images, true).to_vector() != step0);
  with_dropout.set_dropout_step(0);
  CHECK(with_dropout.forward(context, images, true).to_vector() == step0);

  // Two steps, a checkpoint, a third step == a fresh network (same seed) loaded + the third step.
  const std::string path = "test_network_dropout.safetensors";
  Network first(Device::CPU, dropout_config, 7);
  Adam first_adam;
  train_step(context, first, first_adam, images, masks, 1e-3f);
  train_step(context, first, first_adam, images, masks, 1e-3f);
  save_checkpoint(path, first.parameters(), CheckpointInfo{first_adam.step_count(), 0, {}, {}});
  const StepResult a = train_step(context, first, first_adam, images, masks, 1e-3f);
  Network second(Device::CPU, dropout_config, 7);
  Adam second_adam;
  second_adam.set_step_count(load_checkpoint(path, second.parameters()).step);
  const StepResult b = train_step(context, second, second_adam, images, masks, 1e-3f);
  std::remove(path.c_str());
  CHECK(a.loss.loss == b.loss.loss);
  CHECK(first.parameters().values().to_vector() == second.parameters().values().to_vector());
}
