// pneumo export: a checkpoint -> a standard ONNX model (apps/onnx_export.md); optionally also the
// probabilities pneumo itself computes for a few DICOMs, so another runtime can be checked
// against them (benchmarks/peers/onnx_check.py). Present only when built with libonnx.
#include <algorithm>
#include <cstdio>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "apps/onnx_export.h"
#include "apps/run_files.h"
#include "apps/run_settings.h"
#include "data/input/cache.h"
#include "data/input/dataset.h"
#include "data/input/progress.h"
#include "engine/check.h"
#include "engine/files.h"
#include "engine/context.h"
#include "engine/safetensors.h"
#include "layers/checkpoint.h"
#include "layers/network.h"

namespace pneumo::cli {

int run_export(const std::vector<std::string>& argv, const ConvPolicy&) {
  Arguments arguments("export",
                      "Writes a checkpoint's network in inference form as an ONNX model (opset 13): input\n"
                      "'images' (N,1,S,S), output 'probabilities' (N,1,S,S); batch norm kept as\n"
                      "BatchNormalization nodes with the running statistics. With --reference-images, also\n"
                      "writes pneumo's own input and probabilities for the first N DICOMs of a folder (sorted\n"
                      "by name) as safetensors {images, probabilities, patient_index} for comparing runtimes (metadata "
                      "patient.<i> = the ids).");
  arguments.option("checkpoint", "FILE", "", "a checkpoint written by pneumo train");
  arguments.option("onnx", "FILE", "", "the ONNX model to write");
  arguments.option("reference-images", "DIR", "", "folder of <patientId>.dcm files to compute reference outputs for");
  arguments.option("reference-count", "N", "8", "how many of them (sorted by name)");
  arguments.option("reference-out", "FILE", "",
                   "where the reference safetensors go (default: <onnx>.reference.safetensors)");
  if (!arguments.parse(argv)) return 0;
  const std::string checkpoint = arguments.text("checkpoint"), onnx_path = arguments.text("onnx");
  if (checkpoint.empty()) throw Error("--checkpoint is required");
  if (onnx_path.empty()) throw Error("--onnx is required");
  const std::string reference_out =
      arguments.text("reference-out").empty() ? onnx_path + ".reference.safetensors" : arguments.text("reference-out");
  // Checked before any work: no output may replace an input or another output.
  NamedPaths outputs = {{"--onnx", onnx_path}};
  if (!arguments.text("reference-images").empty())
    outputs.push_back(
        {arguments.text("reference-out").empty() ? "the reference file" : "--reference-out", reference_out});
  require_outputs_distinct(outputs, {{"--checkpoint", checkpoint}});
  if (!arguments.text("reference-images").empty())
    for (const auto& [option, path] : outputs)
      require_not_an_image_of(option, path, arguments.text("reference-images"));
  const CheckpointInfo info = read_checkpoint_info(checkpoint);
  const NetworkConfig config = network_config_from_metadata(info.metadata, checkpoint);
  Network network(Device::CPU, config, 0);
  load_checkpoint(checkpoint, network.parameters());
  export_onnx(config, network.parameters(), onnx_path);
  std::printf("wrote %s (opset 13, input images (N,1,%lld,%lld), output probabilities)\n", onnx_path.c_str(),
              static_cast<long long>(config.input_size), static_cast<long long>(config.input_size));

  const std::string image_dir = arguments.text("reference-images");
  if (image_dir.empty()) return 0;
  const int64_t wanted = arguments.integer("reference-count");
  if (wanted < 1) throw Error("--reference-count must be >= 1");
  std::vector<std::string> ids = list_dicom_ids(image_dir);
  std::sort(ids.begin(), ids.end());
  if (ids.empty()) throw Error(image_dir + ": no .dcm files");
  const int64_t count = std::min<int64_t>(wanted, static_cast<int64_t>(ids.size()));
  const int64_t S = config.input_size;
  std::vector<float> pixels;  // (N,S,S,1)
  ProgressBar progress("reference images", count);
  for (int64_t i = 0; i < count; ++i) {
    const ResizedImage image =
        load_resized_image(dicom_path(image_dir, ids[static_cast<size_t>(i)]), static_cast<int>(S));
    pixels.insert(pixels.end(), image.pixels.begin(), image.pixels.end());
    progress.advance();
  }
  progress.finish();
  Context context(Device::CPU);
  Tensor images(Device::CPU, Shape{count, S, S, 1});  // (N,S,S,1)
  images.set_values(pixels);
  const std::vector<float> probabilities = network.forward(context, images, false).to_vector();  // (N,S,S,1)
  SafetensorsContents reference;
  reference.tensors.push_back(SafetensorsTensor::from_floats("images", Shape{count, S, S, 1}, pixels.data()));
  reference.tensors.push_back(
      SafetensorsTensor::from_floats("probabilities", Shape{count, S, S, 1}, probabilities.data()));
  for (int64_t i = 0; i < count; ++i) reference.metadata["patient." + std::to_string(i)] = ids[static_cast<size_t>(i)];
  reference.metadata["checkpoint"] = checkpoint;
  const std::string& out = reference_out;
  write_safetensors(out, reference);
  std::printf("wrote %s (%lld images from %s and pneumo's probabilities)\n", out.c_str(), static_cast<long long>(count),
              image_dir.c_str());
  return 0;
}

}  // namespace pneumo::cli
