#include "apps/training.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <unordered_set>

#include "apps/learning_curves.h"
#include "apps/run_files.h"
#include "apps/validation.h"
#include "data/cache.h"
#include "data/dataset.h"
#include "data/labels.h"
#include "data/loader.h"
#include "data/progress.h"
#include "engine/check.h"
#include "engine/context.h"
#include "layers/adam.h"
#include "layers/batch_norm.h"
#include "layers/checkpoint.h"
#include "layers/training_step.h"

namespace pneumo::cli {

TrainSettings preset_settings(const std::string& name) {
  TrainSettings settings;
  settings.preset = name;
  if (name == "notebook") {
    settings.network = NetworkConfig{256, 32, 2, 4, 0.0f};
    settings.batch_size = 32;
    settings.epochs = 25;
    settings.validation_count = 2560;
  } else if (name == "cpu") {
    // Small enough to train in minutes on 2 cores; the same architecture, scaled down.
    settings.network = NetworkConfig{128, 8, 1, 4, 0.0f};
    settings.batch_size = 16;
    settings.epochs = 8;
    settings.learning_rate = 3e-3;
    settings.validation_count = -1;
    settings.validation_fraction = 0.15;
  } else {
    throw Error("--preset: expected notebook or cpu, got '" + name + "'");
  }
  return settings;
}

std::map<std::string, std::string> settings_to_map(const TrainSettings& settings) {
  std::map<std::string, std::string> values;
  values["data_dir"] = settings.data_dir;
  values["cache_dir"] = settings.cache_dir;
  values["device"] = settings.device;
  values["preset"] = settings.preset;
  values["batch_size"] = std::to_string(settings.batch_size);
  values["epochs"] = std::to_string(settings.epochs);
  values["learning_rate"] = exact_number(settings.learning_rate);
  values["validation_count"] = std::to_string(settings.validation_count);
  values["validation_fraction"] = exact_number(settings.validation_fraction);
  values["max_images"] = std::to_string(settings.max_images);
  values["seed"] = std::to_string(settings.seed);
  values["workers"] = std::to_string(settings.workers);
  values["flip"] = settings.flip ? "1" : "0";
  values["threshold"] = exact_number(settings.threshold);
  values["max_unreadable_fraction"] = exact_number(settings.max_unreadable_fraction);
  add_network_metadata(values, settings.network);
  return values;
}

namespace {

const std::string& required(const std::map<std::string, std::string>& values, const std::string& key,
                            const std::string& source) {
  auto found = values.find(key);
  if (found == values.end()) throw Error(source + ": missing field '" + key + "'");
  return found->second;
}

int64_t integer_field(const std::map<std::string, std::string>& values, const std::string& key,
                      const std::string& source) {
  const std::string& text = required(values, key, source);
  try {
    size_t used = 0;
    long long value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw Error(source + ": field '" + key + "' expects an integer, got '" + text + "'");
}

double number_field(const std::map<std::string, std::string>& values, const std::string& key,
                    const std::string& source) {
  const std::string& text = required(values, key, source);
  try {
    size_t used = 0;
    double value = std::stod(text, &used);
    if (used == text.size() && std::isfinite(value)) return value;
  } catch (const std::exception&) {
  }
  throw Error(source + ": field '" + key + "' expects a number, got '" + text + "'");
}

}  // namespace

TrainSettings settings_from_map(const std::map<std::string, std::string>& values, const std::string& source) {
  TrainSettings settings;
  settings.data_dir = required(values, "data_dir", source);
  settings.cache_dir = values.count("cache_dir") ? values.at("cache_dir") : "";
  settings.device = required(values, "device", source);
  settings.preset = required(values, "preset", source);
  settings.batch_size = integer_field(values, "batch_size", source);
  settings.epochs = integer_field(values, "epochs", source);
  settings.learning_rate = number_field(values, "learning_rate", source);
  settings.validation_count = integer_field(values, "validation_count", source);
  settings.validation_fraction = number_field(values, "validation_fraction", source);
  settings.max_images = integer_field(values, "max_images", source);
  settings.seed = static_cast<uint64_t>(integer_field(values, "seed", source));
  settings.workers = integer_field(values, "workers", source);
  settings.flip = integer_field(values, "flip", source) != 0;
  settings.threshold = number_field(values, "threshold", source);
  settings.max_unreadable_fraction = number_field(values, "max_unreadable_fraction", source);
  settings.network = network_config_from_metadata(values, source);
  return settings;
}

void add_network_metadata(std::map<std::string, std::string>& metadata, const NetworkConfig& config) {
  metadata["network.input_size"] = std::to_string(config.input_size);
  metadata["network.channels"] = std::to_string(config.channels);
  metadata["network.n_blocks"] = std::to_string(config.n_blocks);
  metadata["network.depth"] = std::to_string(config.depth);
  metadata["network.leaky_slope"] = exact_number(config.leaky_slope);
  // What an outsider needs besides the tensors to rebuild the model (README "Using a checkpoint
  // elsewhere"); informational: read back by nothing in pneumo.
  auto shortest = [](float value) {  // the shortest decimal that reads back as this float: "0.001"
    char text[32];
    for (int digits = 1; digits <= 9; ++digits) {
      std::snprintf(text, sizeof text, "%.*g", digits, static_cast<double>(value));
      if (std::strtof(text, nullptr) == value) break;
    }
    return std::string(text);
  };
  metadata["network.bn_epsilon"] = shortest(BatchNorm2d(1).epsilon());
  metadata["network.bn_momentum"] = shortest(BatchNorm2d(1).momentum());
  metadata["network.upsample"] = "nearest";
  metadata["network.input_scaling"] =
      "DICOM pixel / (2^BitsStored - 1) in [0,1] (MONOCHROME1 inverted), resized to input_size x input_size "
      "(scikit-image resize, bilinear, mode=reflect); no mean/std normalisation";
  metadata["network.layout"] = "activations NHWC; conv weights (K,R,S,C); input (N,S,S,1)";
}

NetworkConfig network_config_from_metadata(const std::map<std::string, std::string>& metadata,
                                           const std::string& source) {
  NetworkConfig config;
  config.input_size = integer_field(metadata, "network.input_size", source);
  config.channels = integer_field(metadata, "network.channels", source);
  config.n_blocks = integer_field(metadata, "network.n_blocks", source);
  config.depth = integer_field(metadata, "network.depth", source);
  config.leaky_slope = static_cast<float>(number_field(metadata, "network.leaky_slope", source));
  validate_network_config(config);
  return config;
}

TrainSettings read_run_settings(const std::string& run_dir) {
  const std::string path = run_dir + "/config.txt";
  if (!path_exists(path)) throw Error(run_dir + ": not a training run directory (no config.txt to resume from)");
  return settings_from_map(parse_key_values(read_text(path), path), path);
}

namespace {

// Running means of the per-batch values, as Keras reports training metrics.
struct EpochSums {
  double loss = 0, accuracy = 0, iou = 0;
  int64_t batches = 0;
  void add(const StepResult& step) {
    loss += step.loss.loss;
    accuracy += step.metrics.accuracy;
    iou += step.metrics.mean_iou;
    ++batches;
  }
  double mean(double sum) const { return batches ? sum / batches : 0.0; }
};

std::string format_history(const std::vector<EpochRecord>& history) {
  std::string text = std::string(kHistoryHeader) + "\n";
  for (const auto& record : history) text += format_history_row(record) + "\n";
  return text;
}

std::string validation_labels_csv(const std::vector<std::string>& ids, const LabelSet& labels) {
  std::string text = "patientId,x,y,width,height,Target\n";
  for (const auto& id : ids) {
    auto found = labels.boxes.find(id);
    if (found == labels.boxes.end() || found->second.empty()) {
      text += id + ",,,,,0\n";
      continue;
    }
    for (const Box& box : found->second)
      text += id + "," + std::to_string(box.x) + ".0," + std::to_string(box.y) + ".0," +
              std::to_string(box.width) + ".0," + std::to_string(box.height) + ".0,1\n";
  }
  return text;
}

std::string checkpoint_path(const std::string& run_dir, const char* name) {
  return run_dir + "/" + name + ".safetensors";
}

}  // namespace

TrainOutcome run_training(const TrainSettings& settings, bool resume) {
  validate_network_config(settings.network);
  if (settings.batch_size < 1) throw Error("--batch must be >= 1");
  if (settings.epochs < 1) throw Error("--epochs must be >= 1");
  if (!(settings.learning_rate > 0)) throw Error("--lr must be > 0");
  if (settings.workers < 1) throw Error("--workers must be >= 1");

  make_directories(settings.run_dir);
  RunLog log;
  log.open(settings.run_dir + "/log.txt");
  const Device device = resolve_device(settings.device);
  Context context(device);
  log.line("device: " + describe_device(device));

  // ---- data: labels, split, cache -----------------------------------------------------------
  const DatasetLayout layout = find_dataset(settings.data_dir);
  const LabelSet labels = read_labels(layout.train_labels);
  std::vector<std::string> image_ids = list_dicom_ids(layout.train_images);
  std::unordered_set<std::string> on_disk(image_ids.begin(), image_ids.end());
  std::vector<std::string> ids;
  for (const auto& id : labels.patient_ids) {
    if (!on_disk.count(id))
      throw Error(layout.train_labels + ": patientId " + id + " has no image " + dicom_path(layout.train_images, id));
    ids.push_back(id);
  }
  if (settings.max_images > 0 && settings.max_images < static_cast<int64_t>(ids.size())) {
    std::sort(ids.begin(), ids.end());
    std::shuffle(ids.begin(), ids.end(), std::mt19937_64(settings.seed ^ 0x5eed));
    ids.resize(static_cast<size_t>(settings.max_images));
  }
  const int64_t validation = validation_size(static_cast<int64_t>(ids.size()), settings.validation_count,
                                             settings.validation_fraction);
  const Split split = split_patients(ids, validation, settings.seed);
  if (static_cast<int64_t>(split.train.size()) < settings.batch_size)
    throw Error("only " + std::to_string(split.train.size()) + " training images for batches of " +
                std::to_string(settings.batch_size));
  log.line("data: " + settings.data_dir + ": " + std::to_string(split.train.size()) + " train, " +
           std::to_string(split.validation.size()) + " validation images");

  const int image_size = static_cast<int>(settings.network.input_size);
  const std::string cache_dir = settings.cache_dir.empty() ? settings.data_dir : settings.cache_dir;
  ImageCache cache = ImageCache::open_or_build(default_cache_path(cache_dir, layout.train_images, image_size),
                                               layout.train_images, image_size);
  for (const auto& failure : cache.failures()) log.line("unreadable image: " + failure.reason);

  LoaderConfig loader_config;
  loader_config.image_dir = layout.train_images;
  loader_config.cache = &cache;
  loader_config.image_size = image_size;
  loader_config.batch_size = static_cast<int>(settings.batch_size);
  loader_config.workers = static_cast<int>(settings.workers);
  loader_config.seed = settings.seed;
  loader_config.flip = settings.flip;
  loader_config.max_unreadable_fraction = settings.max_unreadable_fraction;
  BatchLoader train_loader(split.train, &labels, LoaderMode::Train, loader_config);
  BatchLoader validation_loader(split.validation, &labels, LoaderMode::Evaluate, loader_config);

  // ---- model, optimizer, run state ------------------------------------------------------------
  Network network(device, settings.network, settings.seed);
  Adam adam;
  std::vector<EpochRecord> history;
  int64_t start_epoch = 0, start_batch = 0;
  EpochSums partial;
  double best_map = -1;
  const std::string last_path = checkpoint_path(settings.run_dir, "last");
  const std::string best_path = checkpoint_path(settings.run_dir, "best");
  if (resume) {
    if (!path_exists(last_path)) throw Error(last_path + ": no checkpoint to resume from");
    CheckpointInfo info = load_checkpoint(last_path, network.parameters());
    adam.set_step_count(info.step);
    const std::string source = last_path;
    start_epoch = info.epoch;
    start_batch = integer_field(info.metadata, "run.next_batch", source);
    best_map = number_field(info.metadata, "run.best_map", source);
    partial.loss = number_field(info.metadata, "run.partial_loss", source);
    partial.accuracy = number_field(info.metadata, "run.partial_accuracy", source);
    partial.iou = number_field(info.metadata, "run.partial_iou", source);
    partial.batches = integer_field(info.metadata, "run.partial_batches", source);
    history = read_history(settings.run_dir + "/history.csv");
    if (static_cast<int64_t>(history.size()) > start_epoch) history.resize(static_cast<size_t>(start_epoch));
    log.line("resuming " + settings.run_dir + " at epoch " + std::to_string(start_epoch + 1) + ", batch " +
             std::to_string(start_batch + 1) + " (Adam step " + std::to_string(info.step) + ")");
  } else {
    write_text_atomic(settings.run_dir + "/config.txt",
                      "# pneumo train settings; `pneumo train --resume " + settings.run_dir + "` reads them\n" +
                          format_key_values(settings_to_map(settings)));
    write_text_atomic(settings.run_dir + "/validation_labels.csv", validation_labels_csv(split.validation, labels));
    std::remove((settings.run_dir + "/history.csv").c_str());
  }
  log.line("network: " + std::to_string(network.trainable_parameter_count()) + " trainable parameters, input " +
           std::to_string(image_size) + "x" + std::to_string(image_size) + ", batch " +
           std::to_string(settings.batch_size) + ", " + std::to_string(settings.epochs) + " epochs");

  auto save = [&](const std::string& path, int64_t epoch, int64_t next_batch, const EpochSums& sums) {
    CheckpointInfo info;
    info.step = adam.step_count();
    info.epoch = epoch;
    add_network_metadata(info.metadata, settings.network);
    info.metadata["run.next_batch"] = std::to_string(next_batch);
    info.metadata["run.best_map"] = exact_number(best_map);
    info.metadata["run.partial_loss"] = exact_number(sums.loss);
    info.metadata["run.partial_accuracy"] = exact_number(sums.accuracy);
    info.metadata["run.partial_iou"] = exact_number(sums.iou);
    info.metadata["run.partial_batches"] = std::to_string(sums.batches);
    save_checkpoint(path, network.parameters(), info);
  };

  install_interrupt_handler();
  TrainOutcome outcome;
  outcome.last_checkpoint = last_path;
  outcome.best_checkpoint = best_path;
  Batch batch;
  int64_t batches_this_run = 0;
  for (int64_t epoch = start_epoch; epoch < settings.epochs; ++epoch) {
    const double learning_rate = cosine_annealing(static_cast<double>(epoch), settings.learning_rate,
                                                  static_cast<int>(settings.epochs));
    const auto epoch_start = std::chrono::steady_clock::now();
    EpochSums sums = epoch == start_epoch ? partial : EpochSums{};
    const int64_t first_batch = epoch == start_epoch ? start_batch : 0;
    train_loader.start_epoch(static_cast<int>(epoch));
    const int64_t batches = train_loader.batches_per_epoch();
    ProgressBar progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(settings.epochs),
                         batches * settings.batch_size, stdout);
    for (int64_t skipped = 0; skipped < first_batch && train_loader.next(batch); ++skipped)
      progress.advance(batch.size);
    for (int64_t index = first_batch; train_loader.next(batch); ++index) {
      Tensor images(device, {batch.size, image_size, image_size, 1});
      Tensor masks(device, {batch.size, image_size, image_size, 1});
      images.set_values(batch.images);
      masks.set_values(batch.masks);
      StepResult step = train_step(context, network, adam, images, masks, static_cast<float>(learning_rate));
      if (!std::isfinite(step.loss.loss)) {
        progress.finish();
        throw Error("non-finite loss (" + std::to_string(step.loss.loss) + ") at epoch " + std::to_string(epoch + 1) +
                    ", batch " + std::to_string(index + 1) + "; stopped. The last good checkpoint is " +
                    (path_exists(last_path) ? last_path : std::string("(none yet)")) +
                    "; try a lower --lr");
      }
      sums.add(step);
      char extra[160];
      std::snprintf(extra, sizeof extra, "loss %.4f acc %.4f iou %.4f lr %.2e", sums.mean(sums.loss),
                    sums.mean(sums.accuracy), sums.mean(sums.iou), learning_rate);
      progress.advance(batch.size, extra);
      ++batches_this_run;
      if (interrupt_requested() ||
          (settings.stop_after_batches > 0 && batches_this_run >= settings.stop_after_batches)) {
        progress.finish("interrupted");
        save(last_path, epoch, index + 1, sums);
        log.line("interrupted: saved " + last_path + " at epoch " + std::to_string(epoch + 1) + ", batch " +
                 std::to_string(index + 1) + "; continue with: pneumo train --resume " + settings.run_dir);
        outcome.interrupted = true;
        outcome.epochs_done = epoch;
        outcome.best_validation_map = std::max(0.0, best_map);
        return outcome;
      }
    }
    progress.finish();

    ValidationResult validation_result =
        validate(context, network, validation_loader, labels, cache, settings.threshold);
    EpochRecord record;
    record.epoch = epoch + 1;
    record.learning_rate = learning_rate;
    record.train_loss = sums.mean(sums.loss);
    record.train_accuracy = sums.mean(sums.accuracy);
    record.train_iou = sums.mean(sums.iou);
    record.validation_loss = validation_result.loss;
    record.validation_accuracy = validation_result.accuracy;
    record.validation_iou = validation_result.mean_iou;
    record.validation_map = validation_result.metric.mean_average_precision;
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    history.push_back(record);
    char line[320];
    std::snprintf(line, sizeof line,
                  "epoch %lld/%lld: loss %.4f acc %.4f iou %.4f | val loss %.4f acc %.4f iou %.4f mAP %.4f "
                  "(%lld images scored) | %.0fs",
                  static_cast<long long>(epoch + 1), static_cast<long long>(settings.epochs), record.train_loss,
                  record.train_accuracy, record.train_iou, record.validation_loss, record.validation_accuracy,
                  record.validation_iou, record.validation_map,
                  static_cast<long long>(validation_result.metric.images_scored), record.seconds);
    log.line(line);

    const bool improved = record.validation_map > best_map;
    if (improved) best_map = record.validation_map;
    save(last_path, epoch + 1, 0, EpochSums{});
    if (improved) save(best_path, epoch + 1, 0, EpochSums{});
    write_text_atomic(settings.run_dir + "/history.csv", format_history(history));
    write_learning_curves(settings.run_dir + "/curves.png", history);
    if (improved || epoch + 1 == settings.epochs)
      write_validation_grid(settings.run_dir + "/validation_grid.png", validation_result);
    outcome.epochs_done = epoch + 1;
  }
  outcome.best_validation_map = std::max(0.0, best_map);
  log.line("done: best validation mAP " + std::to_string(outcome.best_validation_map) + "; checkpoints " + last_path +
           ", " + best_path + "; history " + settings.run_dir + "/history.csv; curves " + settings.run_dir +
           "/curves.png");
  return outcome;
}

}  // namespace pneumo::cli
