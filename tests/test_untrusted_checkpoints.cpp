// Issue 10 regressions: crafted checkpoints (tests/fixtures/untrusted/, written by
// make_untrusted_fixtures.py) and untrusted text in messages. Each case failed before the fix:
// a NaN weight or Inf Adam moment was loaded silently, counters at INT64_MAX overflowed later,
// network fields asked for terabytes, raw control bytes reached the terminal.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "engine/check.h"
#include "engine/files.h"
#include "engine/safetensors.h"
#include "layers/checkpoint.h"
#include "layers/network.h"
#include "tests/support/fixtures.h"

using namespace pneumo;

namespace {

const NetworkConfig kTinyNetwork{2, 1, 0, 1, 0.0f};  // what the fixtures hold

std::string untrusted(const std::string& name) { return pneumo::testing::fixture_path("untrusted/" + name); }

std::string load_error(const std::string& name) {
  Network network(Device::CPU, kTinyNetwork, 1);
  try {
    load_checkpoint(untrusted(name), network.parameters());
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

// The configuration a checkpoint's metadata names (as apps/run_settings.cpp parses it).
NetworkConfig config_of(const CheckpointInfo& info) {
  NetworkConfig config;
  config.input_size = std::stoll(info.metadata.at("network.input_size"));
  config.channels = std::stoll(info.metadata.at("network.channels"));
  config.n_blocks = std::stoll(info.metadata.at("network.n_blocks"));
  config.depth = std::stoll(info.metadata.at("network.depth"));
  return config;
}

}  // namespace

TEST_CASE("the tiny fixture checkpoint loads, so the crafted ones fail for their one change") {
  CHECK(load_error("tiny.safetensors") == "");
  const CheckpointInfo info = read_checkpoint_info(untrusted("tiny.safetensors"));
  const NetworkParameterCounts counts = network_parameter_counts(config_of(info));
  CHECK_NOTHROW(check_checkpoint_size(untrusted("tiny.safetensors"), info, counts.trainable, counts.state));
}

TEST_CASE("non-finite weights and Adam moments are refused, naming the tensor and index") {
  const std::string nan = load_error("nan_weight.safetensors");
  CHECK_MESSAGE(nan.find("tensor 'conv0.weight' holds nan at flat index 4") != std::string::npos, nan);
  const std::string inf = load_error("inf_adam.safetensors");
  CHECK_MESSAGE(inf.find("tensor 'adam_v/head.conv.weight' holds inf at flat index 1") != std::string::npos, inf);
}

TEST_CASE("counters at INT64_MAX are refused on load") {
  CHECK_THROWS_WITH_AS(read_checkpoint_info(untrusted("step_int64_max.safetensors")),
                       doctest::Contains("'step' should be an integer in 0..281474976710656"), Error);
  for (const char* name : {"next_batch_int64_max.safetensors", "partial_batches_int64_max.safetensors"}) {
    const CheckpointInfo info = read_checkpoint_info(untrusted(name));
    const std::string key = std::string(name).find("next") == 0 ? "run.next_batch" : "run.partial_batches";
    CHECK_THROWS_WITH_AS(checkpoint_counter(info.metadata, key, name), doctest::Contains("should be an integer in 0.."),
                         Error);
  }
  CHECK(checkpoint_counter({{"k", "281474976710656"}}, "k", "x") == kMaxCheckpointCounter);
  CHECK_THROWS_AS(checkpoint_counter({{"k", "281474976710657"}}, "k", "x"), Error);
  CHECK_THROWS_AS(checkpoint_counter({{"k", "-1"}}, "k", "x"), Error);
}

TEST_CASE("network fields that would ask for terabytes are refused at once") {
  const auto start = std::chrono::steady_clock::now();
  for (const auto& [name, expected] :
       {std::pair<std::string, std::string>{"n_blocks_1e9.safetensors", "n_blocks must be in 0..64, got 1000000000"},
        {"n_blocks_100000.safetensors", "n_blocks must be in 0..64, got 100000"},
        {"channels_int64_max.safetensors", "channels must be in 1..4096, got 9223372036854775807"}}) {
    const NetworkConfig config = config_of(read_checkpoint_info(untrusted(name)));
    CHECK_THROWS_WITH_AS(validate_network_config(config), doctest::Contains(expected.c_str()), Error);
    CHECK_THROWS_AS(Network(Device::CPU, config, 1), Error);
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  // Within every per-field bound but over the parameter budget.
  CHECK_THROWS_WITH_AS(validate_network_config(NetworkConfig{1024, 4096, 64, 10, 0}),
                       doctest::Contains("parameters, more than the limit"), Error);
}

TEST_CASE("checkpoint tensors are checked against the configuration before the network is built") {
  const CheckpointInfo info = read_checkpoint_info(untrusted("n_blocks_1_tensors_of_0.safetensors"));
  const NetworkParameterCounts counts = network_parameter_counts(config_of(info));
  CHECK_THROWS_WITH_AS(check_checkpoint_size("c.safetensors", info, counts.trainable, counts.state),
                       doctest::Contains("but the network its metadata describes needs"), Error);
}

TEST_CASE("network_parameter_counts equals the built network's counts") {
  for (const NetworkConfig& config :
       {kTinyNetwork, NetworkConfig{64, 4, 1, 3, 0}, NetworkConfig{256, 32, 2, 4, 0}, NetworkConfig{32, 3, 0, 5, 0}}) {
    Network network(Device::CPU, config, 1);
    const NetworkParameterCounts counts = network_parameter_counts(config);
    CHECK(counts.trainable == network.trainable_parameter_count());
    CHECK(counts.state == network.state_count());
  }
  CHECK(network_parameter_counts(NetworkConfig{256, 32, 2, 4, 0}).trainable == 12718305);  // the notebook
}

TEST_CASE("untrusted text in messages is quoted, escaped and shortened") {
  CHECK(quoted("abc") == "'abc'");
  CHECK(quoted(std::string("a\x1b[2J\x07\n") + "b") == "'a\\x1b[2J\\x07\\x0ab'");
  const std::string long_id(10 * 1024 * 1024, 'x');
  const std::string shown = quoted(long_id);
  CHECK(shown == "'" + std::string(40, 'x') + "'... (10485760 bytes)");
}

TEST_CASE("a temporary file left by a killed checkpoint write is removed by the next write") {
  const std::string path = "test_untrusted_checkpoint.safetensors";
  const std::string stale = path + ".tmp-999999999-0";  // pids never get this large on Linux
  { std::ofstream(stale) << "half a checkpoint"; }
  SafetensorsContents contents;
  write_safetensors(path, contents);
  CHECK(!std::ifstream(stale).good());
  CHECK(remove_stale_temporary_files(path, ".tmp-") == 0);
  std::remove(path.c_str());
}
