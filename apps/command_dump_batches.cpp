// pneumo dump-batches: the training batches pneumo's loader produces (train mode, shuffled by the
// seed, no flips) and the initial weights of a network, as one safetensors file, so another
// framework can be fed exactly what pneumo trains on (benchmarks/peers/keras_steps.py).
#include <algorithm>
#include <cstdio>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "apps/run_files.h"
#include "apps/run_settings.h"
#include "data/input/dataset.h"
#include "data/input/labels.h"
#include "data/input/loader.h"
#include "data/input/progress.h"
#include "engine/check.h"
#include "engine/files.h"
#include "engine/safetensors.h"
#include "layers/network.h"

namespace pneumo::cli {

int run_dump_batches(const std::vector<std::string>& argv, const ConvPolicy&) {
  Arguments arguments("dump-batches",
                      "Writes the first --batches training batches of a dataset, as pneumo's loader builds them\n"
                      "(every labelled image, shuffled by --seed each epoch, no flips), and the initial weights of\n"
                      "the network --seed builds, to one safetensors file:\n"
                      "  images, masks (B*N,S,S,1)   batch b is rows b*N .. b*N+N-1\n"
                      "  initial.<parameter>         every parameter and running statistic, pneumo's layout\n"
                      "metadata: the network configuration (as a checkpoint's), batch_size, batches, seed.\n"
                      "With --all: every labelled image once, in sorted id order (batches of --batch, the last\n"
                      "one partial), metadata ids = the patient ids joined by ','.");
  arguments.option("data", "DIR", "", "dataset in the RSNA layout (e.g. from pneumo synth)");
  arguments.option("size", "S", "32", "input size");
  arguments.option("channels", "N", "4", "channels of the first convolution");
  arguments.option("blocks", "N", "1", "residual blocks per depth");
  arguments.option("depth", "N", "2", "downsampling stages");
  arguments.option("batch", "N", "4", "images per batch");
  arguments.option("batches", "N", "30", "how many batches");
  arguments.option("seed", "N", "1", "seed of the loader's shuffle and of the initial weights");
  arguments.option("workers", "N", "2", "loader threads (the batches do not depend on it)");
  arguments.option("out", "FILE", "batches.safetensors", "the file to write");
  arguments.flag("all", "every labelled image once, sorted by id (for training elsewhere on pneumo's inputs)");
  if (!arguments.parse(argv)) return 0;
  if (arguments.text("data").empty()) throw Error("--data is required");
  const NetworkConfig config{arguments.integer("size"), arguments.integer("channels"), arguments.integer("blocks"),
                             arguments.integer("depth"), 0.0f};
  validate_network_config(config);
  const int64_t batch_size = arguments.integer("batch");
  int64_t batches = arguments.integer("batches");
  if (batch_size < 1 || batches < 1) throw Error("--batch and --batches must be >= 1");
  const uint64_t seed = static_cast<uint64_t>(arguments.integer("seed"));

  const DatasetLayout layout = find_dataset(arguments.text("data"));
  require_outputs_distinct({{"--out", arguments.text("out")}}, {{"the label file", layout.train_labels}});
  require_not_an_image_of("--out", arguments.text("out"), layout.train_images);
  const LabelSet labels = read_labels(layout.train_labels);
  std::vector<std::string> ids = labels.patient_ids;
  std::sort(ids.begin(), ids.end());
  if (static_cast<int64_t>(ids.size()) < batch_size)
    throw Error(layout.train_labels + ": only " + std::to_string(ids.size()) + " images for batches of " +
                std::to_string(batch_size));
  LoaderConfig loader_config;
  loader_config.image_dir = layout.train_images;
  loader_config.image_size = static_cast<int>(config.input_size);
  loader_config.batch_size = static_cast<int>(batch_size);
  loader_config.workers = loader_workers(arguments.integer("workers"));
  loader_config.seed = seed;
  loader_config.flip = false;
  const bool all = arguments.has("all");
  BatchLoader loader(ids, &labels, all ? LoaderMode::Evaluate : LoaderMode::Train, loader_config);

  std::vector<float> images, masks;  // (B*N,S,S,1)
  Batch batch;
  std::string kept_ids;
  ProgressBar progress("dump-batches", all ? static_cast<int64_t>(ids.size()) : batches * batch_size);
  if (all) {
    loader.start_epoch(0);
    while (loader.next(batch)) {
      progress.advance(batch.size);
      images.insert(images.end(), batch.images.begin(), batch.images.end());
      masks.insert(masks.end(), batch.masks.begin(), batch.masks.end());
      for (const auto& id : batch.patient_ids) kept_ids += (kept_ids.empty() ? "" : ",") + id;
    }
    batches = 0;
  }
  for (int epoch = 0;
       !all && static_cast<int64_t>(images.size()) < batches * batch_size * config.input_size * config.input_size;
       ++epoch) {
    loader.start_epoch(epoch);
    while (static_cast<int64_t>(images.size()) < batches * batch_size * config.input_size * config.input_size &&
           loader.next(batch)) {
      if (batch.size != batch_size) continue;  // a batch short of an unreadable image is skipped
      progress.advance(batch.size);
      images.insert(images.end(), batch.images.begin(), batch.images.end());
      masks.insert(masks.end(), batch.masks.begin(), batch.masks.end());
    }
  }
  progress.finish();
  const int64_t rows = static_cast<int64_t>(images.size()) / (config.input_size * config.input_size);
  const Shape shape{rows, config.input_size, config.input_size, 1};
  SafetensorsContents contents;
  contents.tensors.push_back(SafetensorsTensor::from_floats("images", shape, images.data()));
  contents.tensors.push_back(SafetensorsTensor::from_floats("masks", shape, masks.data()));
  Network network(Device::CPU, config, seed);
  for (const auto& entry : network.parameters().entries()) {
    const std::vector<float> values = entry.value.to_vector();
    contents.tensors.push_back(
        SafetensorsTensor::from_floats("initial." + entry.spec.name, entry.spec.shape, values.data()));
  }
  add_network_metadata(contents.metadata, config);
  contents.metadata["batch_size"] = std::to_string(batch_size);
  contents.metadata["batches"] = std::to_string(batches);
  contents.metadata["seed"] = std::to_string(seed);
  if (all) contents.metadata["ids"] = kept_ids;
  write_safetensors(arguments.text("out"), contents);
  std::printf("wrote %s: %lld images %lldx%lld and %zu initial tensors\n", arguments.text("out").c_str(),
              static_cast<long long>(rows), static_cast<long long>(config.input_size),
              static_cast<long long>(config.input_size), network.parameters().entries().size());
  return 0;
}

}  // namespace pneumo::cli
