#include "apps/prediction.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "apps/run_files.h"
#include "apps/run_settings.h"
#include "apps/validation.h"
#include "data/input/cache.h"
#include "data/input/dataset.h"
#include "data/input/labels.h"
#include "data/input/loader.h"
#include "data/input/progress.h"
#include "data/presentation/render.h"
#include "data/evaluation/submission.h"
#include "engine/check.h"
#include "engine/context.h"
#include "layers/checkpoint.h"
#include "layers/network.h"

namespace pneumo::cli {

namespace {
std::string parent_directory(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  size_t slash = trimmed.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : trimmed.substr(0, slash);
}
}  // namespace

PredictOutcome run_prediction(const PredictSettings& settings) {
  if (settings.checkpoint.empty()) throw Error("--checkpoint is required");
  if (settings.images_dir.empty()) throw Error("--images is required");
  if (settings.batch_size < 1) throw Error("--batch must be >= 1");
  // The file names become the submission's patientIds: refuse one the CSV cannot hold now,
  // not after all the inference.
  const std::vector<std::string> ids = list_dicom_ids(settings.images_dir);
  if (ids.empty()) throw Error(settings.images_dir + ": no .dcm files");
  for (const std::string& id : ids)
    if (!is_plain_id(id))
      throw Error(quoted(dicom_path(settings.images_dir, id), 200) +
                  ": the file name is the patientId of the submission and must not hold a comma, quote, "
                  "whitespace or control character; rename the file");
  const CheckpointInfo info = read_checkpoint_info(settings.checkpoint);
  const NetworkConfig config = network_config_from_metadata(info.metadata, settings.checkpoint);
  check_checkpoint_size(settings.checkpoint, info, network_parameter_counts(config).trainable,
                        network_parameter_counts(config).state);
  const Device device = resolve_device(settings.device);
  Context context(device);
  Network network(device, config, 0);
  load_checkpoint(settings.checkpoint, network.parameters());
  network.set_constant_weights(true);  // filters transformed once, not once per batch
  network.set_allow_tf32(settings.tf32);
  network.set_precision(settings.precision);
  network.set_cudnn_search(parse_cudnn_search(settings.cudnn));
  network.set_conv_policy(settings.conv_policy);
  std::printf("device: %s\nmodel: %s (epoch %lld, input %lld, %lld parameters)\n", describe_device(device).c_str(),
              settings.checkpoint.c_str(), static_cast<long long>(info.epoch),
              static_cast<long long>(config.input_size), static_cast<long long>(network.trainable_parameter_count()));

  const int image_size = static_cast<int>(config.input_size);
  const std::string cache_dir = settings.cache_dir.empty() ? parent_directory(settings.images_dir) : settings.cache_dir;
  ImageCache cache = ImageCache::open_or_build(default_cache_path(cache_dir, settings.images_dir, image_size),
                                               settings.images_dir, image_size);
  for (const auto& failure : cache.failures()) std::fprintf(stderr, "unreadable image: %s\n", failure.reason.c_str());

  LoaderConfig loader_config;
  loader_config.image_dir = settings.images_dir;
  loader_config.cache = &cache;
  loader_config.image_size = image_size;
  loader_config.batch_size = static_cast<int>(settings.batch_size);
  loader_config.workers = loader_workers(settings.workers);
  loader_config.max_unreadable_fraction = settings.max_unreadable_fraction;
  BatchLoader loader(ids, nullptr, LoaderMode::Predict, loader_config);
  loader.start_epoch(0);

  PredictOutcome outcome;
  Submission submission;
  submission.patient_ids = ids;  // every image is listed, boxes or not
  const auto start = std::chrono::steady_clock::now();
  ProgressBar progress("predict", static_cast<int64_t>(ids.size()), stdout);
  Batch batch;
  Tensor image_storage;  // grow-only device buffer, reused by every batch
  while (loader.next(batch)) {
    if (batch.size == 0) continue;
    Tensor images = reuse_storage(image_storage, device, {batch.size, image_size, image_size, 1});
    images.set_values(batch.images);
    const Tensor& probabilities = network.forward(context, images, false);
    std::vector<int> widths(static_cast<size_t>(batch.size), 1024), heights(static_cast<size_t>(batch.size), 1024);
    for (int64_t i = 0; i < batch.size; ++i) cache.find(batch.patient_ids[i], &widths[i], &heights[i]);
    auto boxes = boxes_for_batch(probabilities, widths, heights, settings.threshold);
    for (int64_t i = 0; i < batch.size; ++i) {
      outcome.boxes += static_cast<int64_t>(boxes[i].size());
      if (!boxes[i].empty()) {
        ++outcome.images_with_boxes;
        submission.predictions[batch.patient_ids[i]] = std::move(boxes[i]);
      }
    }
    outcome.images += batch.size;
    progress.advance(batch.size);
  }
  progress.finish();
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_submission(settings.out, submission);
  std::printf("wrote %s: %lld images, %lld boxes on %lld images, %.1f images/s\n", settings.out.c_str(),
              static_cast<long long>(submission.patient_ids.size()), static_cast<long long>(outcome.boxes),
              static_cast<long long>(outcome.images_with_boxes), outcome.images / std::max(1e-9, outcome.seconds));

  if (!settings.overlays_dir.empty()) {
    make_directories(settings.overlays_dir);
    LabelSet labels;
    if (!settings.labels.empty()) labels = read_labels(settings.labels);
    const int64_t overlay_count = settings.overlay_limit > 0
                                      ? std::min<int64_t>(settings.overlay_limit, static_cast<int64_t>(ids.size()))
                                      : static_cast<int64_t>(ids.size());
    ProgressBar overlay_progress("overlays", overlay_count, stdout);
    for (const auto& id : ids) {
      if (settings.overlay_limit > 0 && outcome.overlays >= settings.overlay_limit) break;
      auto truth = labels.boxes.find(id);
      render_dicom(dicom_path(settings.images_dir, id), settings.overlays_dir + "/" + id + ".png", 512,
                   truth == labels.boxes.end() ? std::vector<Box>{} : truth->second, submission.predictions_for(id));
      ++outcome.overlays;
      overlay_progress.advance();
    }
    overlay_progress.finish();
    std::printf("wrote %lld overlay pictures to %s (predicted boxes orange%s)\n",
                static_cast<long long>(outcome.overlays), settings.overlays_dir.c_str(),
                settings.labels.empty() ? "" : ", true boxes green");
  }
  return outcome;
}

}  // namespace pneumo::cli
