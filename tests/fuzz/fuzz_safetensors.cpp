// libFuzzer target: read_safetensors, then the checkpoint checks on what it read.
#include "engine/check.h"
#include "engine/safetensors.h"
#include "layers/checkpoint.h"
#include "layers/network.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = pneumo_fuzz::input_path(".safetensors");
  pneumo_fuzz::write_input(path, data, size);
  try {
    const pneumo::CheckpointInfo info = pneumo::read_checkpoint_info(path);
    pneumo::NetworkConfig tiny{2, 1, 0, 1, 0.0f};
    const pneumo::NetworkParameterCounts counts = pneumo::network_parameter_counts(tiny);
    pneumo::check_checkpoint_size(path, info, counts.trainable, counts.state);
    pneumo::Network network(pneumo::Device::CPU, tiny, 1);
    pneumo::load_checkpoint(path, network.parameters());
  } catch (const pneumo::Error&) {
  }
  return 0;
}
