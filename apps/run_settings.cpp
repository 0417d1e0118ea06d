#include "apps/run_settings.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "apps/run_files.h"
#include "engine/check.h"
#include "layers/batch_norm.h"

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
  values["batch_norm_statistics"] = settings.synchronized_batch_norm ? "global" : "per-rank";
  values["conv_algorithms"] = conv_algorithms_name(settings.conv_policy.algorithms);
  if (!settings.conv_policy.tuning_file.empty()) values["conv_tuning"] = settings.conv_policy.tuning_file;
  values["tf32"] = settings.tf32 ? "on" : "off";
  values["precision"] = precision_name(settings.precision);
  values["cudnn"] = settings.cudnn;
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

}  // namespace

int64_t metadata_integer(const std::map<std::string, std::string>& values, const std::string& key,
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

double metadata_number(const std::map<std::string, std::string>& values, const std::string& key,
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

TrainSettings settings_from_map(const std::map<std::string, std::string>& values, const std::string& source) {
  TrainSettings settings;
  settings.data_dir = required(values, "data_dir", source);
  settings.cache_dir = values.count("cache_dir") ? values.at("cache_dir") : "";
  settings.device = required(values, "device", source);
  settings.preset = required(values, "preset", source);
  settings.batch_size = metadata_integer(values, "batch_size", source);
  settings.epochs = metadata_integer(values, "epochs", source);
  settings.learning_rate = metadata_number(values, "learning_rate", source);
  settings.validation_count = metadata_integer(values, "validation_count", source);
  settings.validation_fraction = metadata_number(values, "validation_fraction", source);
  settings.max_images = metadata_integer(values, "max_images", source);
  settings.seed = static_cast<uint64_t>(metadata_integer(values, "seed", source));
  settings.workers = metadata_integer(values, "workers", source);
  settings.flip = metadata_integer(values, "flip", source) != 0;
  settings.threshold = metadata_number(values, "threshold", source);
  settings.max_unreadable_fraction = metadata_number(values, "max_unreadable_fraction", source);
  // Absent in runs made before data-parallel training: global (what one process computes).
  const std::string statistics = values.count("batch_norm_statistics") ? values.at("batch_norm_statistics") : "global";
  if (statistics != "global" && statistics != "per-rank")
    throw Error(source + ": field 'batch_norm_statistics' expects global or per-rank, got '" + statistics + "'");
  settings.synchronized_batch_norm = statistics == "global";
  settings.conv_policy.algorithms.clear();  // absent before it was recorded: the resuming command's
  if (values.count("conv_algorithms")) {
    try {
      settings.conv_policy.algorithms = parse_conv_algorithms(values.at("conv_algorithms"));
    } catch (const Error& error) {
      throw Error(source + ": field 'conv_algorithms': " + error.what());
    }
    settings.conv_policy.origin = "conv_algorithms of " + source + ":";
  }
  if (values.count("conv_tuning")) {
    settings.conv_policy.tuning_file = values.at("conv_tuning");
    settings.conv_policy.tuning_origin = "conv_tuning of " + source;
  }
  // Absent in runs from before they were recorded: the defaults those runs had.
  const std::string tf32 = values.count("tf32") ? values.at("tf32") : "off";
  if (tf32 != "on" && tf32 != "off") throw Error(source + ": field 'tf32' expects on or off, got " + quoted(tf32, 60));
  settings.tf32 = tf32 == "on";
  try {
    settings.precision = parse_precision(values.count("precision") ? values.at("precision") : "fp32");
  } catch (const Error& error) {
    throw Error(source + ": field 'precision': " + error.what());
  }
  settings.cudnn = values.count("cudnn") ? values.at("cudnn") : "heuristic";
  if (settings.cudnn != "heuristic" && settings.cudnn != "find" && settings.cudnn != "deterministic")
    throw Error(source + ": field 'cudnn' expects heuristic, find or deterministic, got " + quoted(settings.cudnn, 60));
  settings.network = network_config_from_metadata(values, source);
  // Values that cannot run are reported under the file's field names (not the CLI's flags).
  auto refuse = [&](const char* key, const std::string& expected) {
    throw Error(source + ": field '" + key + "' expects " + expected + ", got " + quoted(values.at(key), 60));
  };
  if (settings.device != "auto" && settings.device != "cpu" && settings.device != "cuda")
    refuse("device", "auto, cpu or cuda");
  if (settings.batch_size < 1) refuse("batch_size", "an integer >= 1");
  if (settings.epochs < 1) refuse("epochs", "an integer >= 1");
  if (!(settings.learning_rate > 0)) refuse("learning_rate", "a number > 0");
  if (settings.workers < 1 || settings.workers > kMaxLoaderWorkers)
    refuse("workers", "1.." + std::to_string(kMaxLoaderWorkers));
  if (settings.max_images < 0) refuse("max_images", "an integer >= 0");
  if (settings.validation_count < 0 && !(settings.validation_fraction > 0 && settings.validation_fraction < 1))
    refuse("validation_fraction", "a number between 0 and 1");
  if (!(settings.threshold >= 0 && settings.threshold <= 1)) refuse("threshold", "a number in [0, 1]");
  if (!(settings.max_unreadable_fraction >= 0 && settings.max_unreadable_fraction <= 1))
    refuse("max_unreadable_fraction", "a number in [0, 1]");
  return settings;
}

bool is_run_file_name(const std::string& name) {
  static const char* const files[] = {"config.txt",  "log.txt",      "last.safetensors",    "best.safetensors",
                                      "history.csv", "curves.png",   "validation_grid.png", "validation_labels.csv",
                                      "inspect.csv", "inspect.html", "conv-algorithms.txt", ".pneumo.lock"};
  for (const char* file : files) {
    const std::string run_file = file;
    if (name == run_file) return true;
    if (name.rfind(run_file + ".tmp", 0) == 0) return true;  // a writer's temporary
  }
  return name.rfind("events.out.tfevents.", 0) == 0;  // TensorBoard event files (apps/tensorboard_log.h)
}

void add_network_metadata(std::map<std::string, std::string>& metadata, const NetworkConfig& config) {
  metadata["network.input_size"] = std::to_string(config.input_size);
  metadata["network.channels"] = std::to_string(config.channels);
  metadata["network.n_blocks"] = std::to_string(config.n_blocks);
  metadata["network.depth"] = std::to_string(config.depth);
  metadata["network.leaky_slope"] = exact_number(config.leaky_slope);
  metadata["network.dropout"] = exact_number(config.dropout);
  // What an outsider needs besides the tensors to rebuild the model (layers/checkpoint.md, "Using a checkpoint
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
      "DICOM pixels mapped to [0,1]: plain unsigned files (RSNA's 8-bit) v / (2^BitsStored - 1), else the "
      "modality rescale, then the VOI window when the file has one, else the stored range (MONOCHROME1 "
      "inverted; data/input/decoding.md); resized to input_size x input_size (scikit-image resize, bilinear, "
      "mode=reflect); no mean/std normalisation";
  metadata["network.layout"] = "activations NHWC; conv weights (K,R,S,C); input (N,S,S,1)";
}

NetworkConfig network_config_from_metadata(const std::map<std::string, std::string>& metadata,
                                           const std::string& source) {
  NetworkConfig config;
  config.input_size = metadata_integer(metadata, "network.input_size", source);
  config.channels = metadata_integer(metadata, "network.channels", source);
  config.n_blocks = metadata_integer(metadata, "network.n_blocks", source);
  config.depth = metadata_integer(metadata, "network.depth", source);
  config.leaky_slope = static_cast<float>(metadata_number(metadata, "network.leaky_slope", source));
  if (metadata.count("network.dropout"))  // absent in runs written before --dropout existed
    config.dropout = static_cast<float>(metadata_number(metadata, "network.dropout", source));
  validate_network_config(config);
  return config;
}

TrainSettings read_run_settings(const std::string& run_dir) {
  const std::string path = run_dir + "/config.txt";
  if (run_dir.empty()) throw Error("--resume expects a run directory, got an empty path");
  if (!path_exists(path)) throw Error(run_dir + ": not a training run directory (no config.txt to resume from)");
  return settings_from_map(parse_key_values(read_text(path), path), path);
}

}  // namespace pneumo::cli
