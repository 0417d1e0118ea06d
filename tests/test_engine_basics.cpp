// Engine basics: tensors, memory, device choice, flat parameter store, GEMM.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "engine/blas_setup.h"
#include "engine/build_info.h"
#include "engine/context.h"
#include "engine/device.h"
#include "engine/parameters.h"
#include "engine/tensor.h"
#include "kernels/cpu/gemm.h"
#include "tests/support/fixtures.h"

using namespace pneumo;

TEST_CASE("tensor owns zeroed memory and round-trips values") {
  Tensor tensor(Device::CPU, {2, 3, 4, 5});
  CHECK(tensor.count() == 120);
  CHECK(tensor.bytes() == 480);
  for (float value : tensor.to_vector()) CHECK(value == 0.0f);
  std::vector<float> values(120);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f;
  tensor.set_values(values);
  CHECK(tensor.to_vector() == values);
  Tensor copy = tensor.to(Device::CPU);
  CHECK(copy.data() != tensor.data());
  CHECK(copy.to_vector() == values);
  CHECK_THROWS_AS(tensor.reshaped({7}), Error);
  CHECK(tensor.reshaped({120}).data() == tensor.data());
  CHECK(shape_string(tensor.shape()) == "(2,3,4,5)");
}

TEST_CASE("device choice never falls back silently") {
  CHECK(resolve_device("cpu") == Device::CPU);
  CHECK_THROWS_WITH_AS(resolve_device("gpu"), "--device: expected auto, cpu or cuda, got 'gpu'", Error);
  if (cuda_device_count() == 0) {
    CHECK(resolve_device("auto") == Device::CPU);
    CHECK_THROWS_AS(resolve_device("cuda"), Error);
    CHECK_THROWS_AS(Context{Device::CUDA}, Error);
    CHECK(!cuda_unavailable_reason().empty());
  } else {
    CHECK(resolve_device("auto") == Device::CUDA);
  }
}

TEST_CASE("parameter store: one flat buffer, views, deterministic Glorot init") {
  std::vector<ParameterSpec> specs = {
      {"conv.weight", {8, 3, 3, 4}, Initializer::GlorotUniform, true, 36, 72},
      {"bn.gamma", {8}, Initializer::Ones, true},
      {"bn.running_var", {8}, Initializer::Ones, false},
      {"bn.running_mean", {8}, Initializer::Zeros, false},
  };
  ParameterStore store(Device::CPU, specs, 42);
  CHECK(store.trainable_count() == 8 * 9 * 4 + 8);
  CHECK(store.state_count() == 16);
  const auto& weight = store.entry("conv.weight");
  CHECK(weight.value.data() == store.values().data());
  CHECK(store.entry("bn.gamma").value.data() == store.values().data() + 288);
  double limit = std::sqrt(6.0 / 108.0);
  double sum = 0;
  for (float value : weight.value.to_vector()) {
    CHECK(std::fabs(value) <= limit);
    sum += value;
  }
  CHECK(std::fabs(sum / 288) < 0.1);
  for (float value : store.entry("bn.gamma").value.to_vector()) CHECK(value == 1.0f);
  for (float value : store.entry("bn.running_var").value.to_vector()) CHECK(value == 1.0f);
  // Same seed and name -> same values, whatever else is in the store.
  ParameterStore other(Device::CPU, {specs[0]}, 42);
  CHECK(other.entry("conv.weight").value.to_vector() == weight.value.to_vector());
  ParameterStore reseeded(Device::CPU, {specs[0]}, 43);
  CHECK(reseeded.entry("conv.weight").value.to_vector() != weight.value.to_vector());
  CHECK_THROWS_AS(ParameterStore(Device::CPU, {specs[1], specs[1]}, 1), Error);
}

TEST_CASE("cpu_sgemm matches a naive triple loop in every transpose mode") {
  // cpu_sgemm splits C over the pool's threads: by rows when M >= N, else by columns, once a
  // side has more than 64. The shapes cover no split, a row split and a column split, run with
  // 3 threads so the blocks are uneven.
  std::mt19937 generator(7);
  std::uniform_real_distribution<float> uniform(-1, 1);
  const int saved_threads = cpu_thread_count();
  set_cpu_thread_count(3);
  for (const auto& shape : std::vector<std::array<int, 3>>{{37, 29, 53}, {203, 29, 53}, {29, 211, 17}}) {
    const int M = shape[0], N = shape[1], K = shape[2];  // (CAPTURE keeps a reference: no structured binding)
    CAPTURE(M);
    CAPTURE(N);
    std::vector<float> A(M * K), B(K * N);
    for (auto& v : A) v = uniform(generator);
    for (auto& v : B) v = uniform(generator);
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        // Lay A and B out as the mode expects.
        std::vector<float> a(M * K), b(K * N);
        for (int m = 0; m < M; ++m)
          for (int k = 0; k < K; ++k) a[ta ? k * M + m : m * K + k] = A[m * K + k];
        for (int k = 0; k < K; ++k)
          for (int n = 0; n < N; ++n) b[tb ? n * K + k : k * N + n] = B[k * N + n];
        std::vector<float> C(M * N, 1.0f);
        cpu_sgemm(ta, tb, M, N, K, 2.0f, a.data(), ta ? M : K, b.data(), tb ? K : N, 0.5f, C.data(), N);
        int wrong = 0;
        for (int m = 0; m < M; ++m)
          for (int n = 0; n < N; ++n) {
            double expected = 0.5;
            for (int k = 0; k < K; ++k) expected += 2.0 * A[m * K + k] * B[k * N + n];
            if (std::abs(C[m * N + n] - expected) > 1e-5 * (1 + std::abs(expected))) ++wrong;
          }
        CHECK_MESSAGE(wrong == 0, "transpose_a=", ta, " transpose_b=", tb);
      }
  }
  set_cpu_thread_count(saved_threads);
}

// The GPU machine puts the Python wheels' libraries first on LD_LIBRARY_PATH: what is loaded may
// not be what the build linked. Printed (the GPU check's report quotes it) and required to fit.
PNEUMO_GPU_TEST_CASE("the CUDA runtime, cuDNN and cuBLAS loaded are compatible with the build (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  const CudaLibraryCheck check = check_cuda_libraries();
  REQUIRE(check.lines.size() == 3);
  for (const std::string& line : check.lines) {
    std::printf("loaded library: %s\n", line.c_str());
    CHECK_MESSAGE(line.find(": ok") != std::string::npos, line);
  }
  CHECK(check.compatible);
}

PNEUMO_GPU_TEST_CASE("cuda memory round trip (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  Tensor host(Device::CPU, {1000});
  std::vector<float> values(1000);
  for (int i = 0; i < 1000; ++i) values[i] = i * 0.25f;
  host.set_values(values);
  Tensor device = host.to(Device::CUDA);
  CHECK(device.device() == Device::CUDA);
  CHECK(device.to_vector() == values);
  device.zero();
  for (float value : device.to_vector()) CHECK(value == 0.0f);
}

TEST_CASE("parallel_for covers every index exactly once and propagates exceptions") {
  for (int64_t count : {1, 7, 1000, 100003}) {
    std::vector<int> hits(static_cast<size_t>(count), 0);
    parallel_for(count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)] += 1;
      // A nested call runs inline and must not deadlock.
      parallel_for(4, 1, [](int64_t, int64_t) {});
    });
    for (int hit : hits) CHECK(hit == 1);
  }
  CHECK_THROWS_WITH_AS(parallel_for(100, 1,
                                    [](int64_t begin, int64_t) {
                                      if (begin > 0) throw Error("chunk failed");
                                    }),
                       "chunk failed", Error);
}

TEST_CASE("OpenBLAS runs a kernel set that matches the CPU") {
  std::string kernels = openblas_kernel_name();
  MESSAGE("OpenBLAS kernels: " << kernels);
#if defined(PNEUMO_HAVE_OPENBLAS) && defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") &&
      (std::getenv("OPENBLAS_CORETYPE") == nullptr || std::getenv("PNEUMO_OPENBLAS_SELECTED") != nullptr))
    CHECK(kernels != "Prescott");
#endif
}

TEST_CASE("parallel_for takes a named lambda too") {
  std::vector<int> hits(100, 0);
  auto body = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)] = 1;
  };
  parallel_for(100, 1, body);
  const auto& const_body = body;
  parallel_for(100, 1, const_body);
  for (int hit : hits) CHECK(hit == 1);
}

TEST_CASE("zeroing a large host tensor clears every byte, including a ragged tail") {
  const int64_t count = (int64_t(5) << 20) / 4 + 3;  // a little over 5 MiB: several chunks + tail
  Tensor tensor(Device::CPU, {count});
  std::vector<float> ones(static_cast<size_t>(count), 1.0f);
  tensor.set_values(ones);
  tensor.zero();
  const std::vector<float> values = tensor.to_vector();
  int64_t nonzero = 0;
  for (float value : values) nonzero += value != 0.0f;
  CHECK(nonzero == 0);
}

TEST_CASE("reuse_storage grows only; leading views share the buffer and check capacity") {
  Tensor storage;
  Tensor first = reuse_storage(storage, Device::CPU, {4, 2, 2, 1});
  CHECK(first.shape() == Shape{4, 2, 2, 1});
  CHECK(storage.capacity() == 16);
  first.set_values(std::vector<float>(16, 3.0f));
  Tensor smaller = reuse_storage(storage, Device::CPU, {2, 2, 2, 1});
  CHECK(smaller.data() == first.data());  // no reallocation for a smaller batch
  CHECK(smaller.count() == 8);
  CHECK(smaller.capacity() == 16);
  CHECK(smaller.to_vector() == std::vector<float>(8, 3.0f));
  Tensor larger = reuse_storage(storage, Device::CPU, {5, 2, 2, 1});
  CHECK(larger.count() == 20);
  CHECK(storage.capacity() == 20);
  CHECK(larger.to_vector() == std::vector<float>(20, 0.0f));  // a new, zeroed buffer
  CHECK_THROWS_AS(smaller.leading({17}), Error);
  CHECK(smaller.leading({16}).count() == 16);  // the old buffer is kept alive by the view
  float raw[6] = {};
  CHECK(Tensor::view(raw, Device::CPU, {2, 3}).capacity() == 6);
}
