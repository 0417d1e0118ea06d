// NCCL on one GPU without MPI (make_nccl_single_process_communicator): every NCCL call of the
// data-parallel step (ncclAllReduce, buckets started on NCCL's stream and waited for, the
// synchronized batch-norm totals) runs on a machine with one GPU and no Open MPI. With one rank
// a sum over the ranks is the values themselves, so the checks compare with the plain step.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/context.h"
#include "engine/device.h"
#include "engine/distributed.h"
#include "engine/tensor.h"
#include "layers/adam.h"
#include "layers/network.h"
#include "layers/training_step.h"
#include "tests/support/fixtures.h"

using namespace pneumo;

namespace {

// |a - b| / |b| over every entry (L2 norms).
double relative_difference(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  double difference = 0, size = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    difference += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    size += double(y[i]) * y[i];
  }
  return std::sqrt(difference) / std::max(std::sqrt(size), 1e-30);
}

}  // namespace

TEST_CASE("without NCCL in the build, or without a GPU, the NCCL communicator is a one-line error") {
  if (!nccl_compiled()) {
    CHECK_THROWS_WITH_AS(make_nccl_single_process_communicator(), doctest::Contains("built without NCCL"), Error);
  } else if (cuda_device_count() == 0) {
    CHECK_THROWS_AS(make_nccl_single_process_communicator(), Error);
  } else {
    MESSAGE("NCCL and a GPU are here: the GPU entry test_nccl_gpu runs the communicator");
  }
}

PNEUMO_GPU_TEST_CASE("NCCL with one rank: allreduce of known buffers, buckets on NCCL's stream (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  REQUIRE_MESSAGE(nccl_compiled(), "this build has no NCCL (nccl.h / libnccl not found at configure time)");
  std::unique_ptr<Communicator> communicator = make_nccl_single_process_communicator();
  CHECK(communicator->name() == "NCCL (one process)");
  std::vector<float> values(1000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.5f * static_cast<float>(i) - 100.0f;
  Tensor tensor(Device::CUDA, {1000});  // (1000)
  tensor.set_values(values);
  communicator->allreduce_sum(tensor);
  CHECK(tensor.to_vector() == values);
  // Two buckets of one buffer, started on NCCL's stream, waited for together.
  communicator->start_sum(tensor, 0, 400);
  communicator->progress();
  communicator->start_sum(tensor, 400, 600);
  communicator->wait_started_sums();
  CHECK(tensor.to_vector() == values);
  // Host buffers: one rank's sum is the values.
  double host[3] = {1.5, -2.0, 3.25};
  communicator->allreduce_sum(host, 3);
  CHECK(host[0] == 1.5);
  CHECK(host[2] == 3.25);
}

PNEUMO_GPU_TEST_CASE(
    "NCCL with one rank: the data-parallel step with buckets and synchronized batch norm equals the plain step (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  REQUIRE_MESSAGE(nccl_compiled(), "this build has no NCCL (nccl.h / libnccl not found at configure time)");
  for (const int64_t bucket_floats : {int64_t{0}, int64_t{1000}}) {
    CAPTURE(bucket_floats);
    std::unique_ptr<Communicator> communicator = make_nccl_single_process_communicator();
    communicator->set_gradient_bucket_floats(bucket_floats);
    NetworkConfig config;
    config.input_size = 32;
    config.channels = 4;
    config.n_blocks = 1;
    config.depth = 2;
    config.leaky_slope = 0.1f;
    config.dropout = 0.2f;
    Context context(Device::CUDA);
    Network plain(Device::CUDA, config, 7), parallel(Device::CUDA, config, 7);
    parallel.set_batch_norm_communicator(communicator.get());
    Adam plain_adam, parallel_adam;
    const int64_t batch = 4, size = config.input_size;
    Tensor images(Device::CUDA, {batch, size, size, 1}), masks(Device::CUDA, images.shape());  // (4,32,32,1) each
    std::mt19937 generator(3);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    for (int step = 0; step < 3; ++step) {
      std::vector<float> image_values(static_cast<size_t>(images.count())), mask_values(image_values.size());
      for (size_t i = 0; i < image_values.size(); ++i) {
        image_values[i] = uniform(generator);
        mask_values[i] = image_values[i] > 0.7f ? 1.0f : 0.0f;
      }
      images.set_values(image_values);
      masks.set_values(mask_values);
      StepTimes times;  // a StepTimes makes one rank take the data-parallel path (NCCL) too
      const StepResult one = train_step(context, plain, plain_adam, images, masks, 1e-3f);
      const StepResult many = train_step(context, parallel, parallel_adam, images, masks, 1e-3f, *communicator, &times);
      CHECK(many.loss.loss == doctest::Approx(one.loss.loss).epsilon(1e-5));
      CHECK(times.communication_seconds > 0);
    }
    // The sums are over one rank: only the order of float additions in the loss differs.
    CHECK(relative_difference(parallel.parameters().values(), plain.parameters().values()) < 1e-4);
    CHECK(relative_difference(parallel.parameters().state(), plain.parameters().state()) < 1e-4);
  }
}
