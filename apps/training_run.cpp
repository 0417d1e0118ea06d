#include "apps/training_run.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <filesystem>
#include <unordered_set>

#include "apps/validation.h"
#include "data/input/progress.h"
#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "layers/checkpoint.h"
#include "layers/conv2d.h"

namespace pneumo::cli {

namespace {

// Settings a resumed process may change (where it runs, loader threads, the cache folder): not
// part of what a checkpoint records about its run.
bool is_process_setting(const std::string& key) { return key == "workers" || key == "device" || key == "cache_dir"; }

std::string validation_labels_csv(const std::vector<std::string>& ids, const LabelSet& labels) {
  std::string text = "patientId,x,y,width,height,Target\n";
  for (const auto& id : ids) {
    auto found = labels.boxes.find(id);
    if (found == labels.boxes.end() || found->second.empty()) {
      text += id + ",,,,,0\n";
      continue;
    }
    for (const Box& box : found->second)
      text += id + "," + std::to_string(box.x) + ".0," + std::to_string(box.y) + ".0," + std::to_string(box.width) +
              ".0," + std::to_string(box.height) + ".0,1\n";
  }
  return text;
}

std::string checkpoint_path(const std::string& run_dir, const char* name) {
  return run_dir + "/" + name + ".safetensors";
}

// 64-bit FNV-1a of bytes, continuing from `hash`.
uint64_t fnv1a(const void* data, size_t bytes, uint64_t hash = 1469598103934665603ULL) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 1099511628211ULL;
  return hash;
}

// The images [first, first + count) of a batch's (B,S,S,1) host buffer.
std::vector<float> image_range(const std::vector<float>& values, int64_t first, int64_t count, int64_t per_image) {
  return std::vector<float>(values.begin() + first * per_image, values.begin() + (first + count) * per_image);
}

// TensorBoard histograms of every trainable parameter's values (after the step) and gradients.
void write_parameter_histograms(TensorBoardLog& log, const Network& network, int64_t step) {
  const ParameterStore& store = network.parameters();
  const std::vector<float> values = store.values().to_vector();        // (P), device -> host
  const std::vector<float> gradients = store.gradients().to_vector();  // (P)
  std::vector<std::pair<std::string, Histogram>> histograms;
  for (const ParameterEntry& entry : store.entries()) {
    if (!entry.spec.trainable) continue;
    const size_t count = static_cast<size_t>(shape_count(entry.spec.shape));
    histograms.emplace_back("weights/" + entry.spec.name, make_histogram(values.data() + entry.offset, count));
    histograms.emplace_back("gradients/" + entry.spec.name, make_histogram(gradients.data() + entry.offset, count));
  }
  log.histograms(step, histograms);
}

// (Re)allocates `tensor` on `device` only when the shape changes.
void ensure_shape(Tensor& tensor, Device device, const Shape& shape) {
  if (tensor.empty() || tensor.shape() != shape || tensor.device() != device) tensor = Tensor(device, shape);
}

}  // namespace

void EpochSums::add(const StepResult& step) {
  loss += step.loss.loss;
  accuracy += step.metrics.accuracy;
  iou += step.metrics.mean_iou;
  ++batches;
}

// ---- prepare --------------------------------------------------------------------------------

Trainer::Trainer(const TrainSettings& settings, bool resume, Communicator* communicator)
    : settings_(settings),
      communicator_(communicator ? communicator : &single_process_),
      device_(resolve_device(settings.device)),
      context_(device_) {
  validate_network_config(settings_.network);
  if (settings_.batch_size < 1) throw Error("--batch must be >= 1");
  if (settings_.epochs < 1) throw Error("--epochs must be >= 1");
  if (!(settings_.learning_rate > 0)) throw Error("--lr must be > 0");
  loader_workers(settings_.workers);  // "--workers: expected 1..256, got N" (config.txt's are checked on reading)
  if (!(settings_.gradient_bucket_mb >= 0 && settings_.gradient_bucket_mb <= 1e6))
    throw Error("--gradient-buckets expects 0 (one sum after the backward pass) or a size in MB, got " +
                std::to_string(settings_.gradient_bucket_mb));
  communicator_->set_gradient_bucket_floats(static_cast<int64_t>(settings_.gradient_bucket_mb * 1e6 / sizeof(float)));
  const int ranks = communicator_->size();
  if (settings_.batch_size % ranks != 0)
    throw Error("the global batch of " + std::to_string(settings_.batch_size) + " images does not divide over " +
                std::to_string(ranks) + " ranks: each rank trains an equal slice, so choose --batch as a multiple of " +
                std::to_string(ranks) + " (or another rank count)");
  {
    std::map<std::string, std::string> shared = settings_to_map(settings_);
    shared.erase("workers");  // loader threads may differ between ranks
    const std::string text = format_key_values(shared);
    check_ranks_agree("configuration", fnv1a(text.data(), text.size()));
  }
  if (is_root()) {
    prepare_run_directory(resume);
    log_.open(settings_.run_dir + "/log.txt");
  } else {
    log_.silence();
  }
  log_.line("device: " + describe_device(device_));
  if (device_ == Device::CPU) log_.line("CPU convolutions: " + settings_.conv_policy.describe());
  if (ranks > 1)
    log_.line("data parallel: " + std::to_string(ranks) + " ranks (" + communicator_->name() + "), " +
              std::to_string(settings_.batch_size / ranks) + " images of every batch of " +
              std::to_string(settings_.batch_size) + " per rank" +
              (device_ == Device::CPU ? ", " + std::to_string(cpu_thread_count()) + " threads per rank" : "") +
              ", batch-norm statistics " + (settings_.synchronized_batch_norm ? "global (synchronized)" : "per rank"));
  last_path_ = checkpoint_path(settings_.run_dir, "last");
  best_path_ = checkpoint_path(settings_.run_dir, "best");

  prepare_data();
  network_ = std::make_unique<Network>(device_, settings_.network, settings_.seed);
  network_->set_conv_policy(settings_.conv_policy);
  network_->set_allow_tf32(settings_.tf32);
  network_->set_precision(settings_.precision);
  if (settings_.precision != Precision::Fp32)
    log_.line(std::string("precision: ") + precision_name(settings_.precision) +
              " (convolution operands in bfloat16, fp32 accumulation; weights, Adam and batch norm in fp32)");
  network_->set_cudnn_search(parse_cudnn_search(settings_.cudnn));
  if (device_ == Device::CUDA)
    log_.line("cuDNN: algorithms by " + settings_.cudnn + ", TF32 " + (settings_.tf32 ? "on" : "off"));
  if (ranks > 1 && settings_.synchronized_batch_norm) network_->set_batch_norm_communicator(communicator_);
  if (resume && path_exists(last_path_)) {
    restore(last_path_);
  } else {
    // A run stopped before its first checkpoint has no progress to lose: it starts again from
    // its own config.txt (the same settings, so the same run).
    if (resume) log_.line(last_path_ + ": no checkpoint yet; starting the run from its beginning");
    start_new_run();
  }
  if (ranks > 1) {
    // Same starting point on every rank: parameters, state, Adam moments and the run state.
    ParameterStore& store = network_->parameters();
    uint64_t hash = 1469598103934665603ULL;
    for (const Tensor* tensor : {&store.values(), &store.state(), &store.adam_m(), &store.adam_v()}) {
      const std::vector<float> values = tensor->to_vector();  // device -> host copy for CUDA
      hash = fnv1a(values.data(), values.size() * sizeof(float), hash);
    }
    const int64_t run_state[3] = {adam_.step_count(), state_.epoch, state_.next_batch};
    hash = fnv1a(run_state, sizeof run_state, hash);
    check_ranks_agree(resume ? "checkpoint (" + last_path_ + ")" : std::string("initial parameters"), hash);
  }
  if (settings_.inspect_every > 0 && communicator_->is_root())  // rank 0 records (its slice)
    recorder_ = std::make_unique<TrainingRecorder>(settings_.run_dir, settings_.inspect_every, adam_.step_count() + 1);
  if (is_root()) {
    // A new event file per process: a resumed run adds one beside the earlier ones.
    tensorboard_ = open_tensorboard_log(settings_.run_dir);
    log_.line(tensorboard_
                  ? "TensorBoard: " + tensorboard_->path() + " (tensorboard --logdir " + settings_.run_dir + ")"
                  : std::string("TensorBoard: not available in this build (built without protobuf): "
                                "no event files are written"));
  }
  log_.line("network: " + std::to_string(network_->trainable_parameter_count()) + " trainable parameters, input " +
            std::to_string(settings_.network.input_size) + "x" + std::to_string(settings_.network.input_size) +
            ", batch " + std::to_string(settings_.batch_size) + ", " + std::to_string(settings_.epochs) + " epochs");
}

void Trainer::prepare_data() {
  layout_ = find_dataset(settings_.data_dir);
  labels_ = read_labels(layout_.train_labels);
  const std::vector<std::string> image_ids = list_dicom_ids(layout_.train_images);
  const std::unordered_set<std::string> on_disk(image_ids.begin(), image_ids.end());
  std::vector<std::string> ids;
  for (const auto& id : labels_.patient_ids) {
    if (!on_disk.count(id))
      throw Error(layout_.train_labels + ": patientId " + id + " has no image " + dicom_path(layout_.train_images, id));
    ids.push_back(id);
  }
  if (settings_.max_images > 0 && settings_.max_images < static_cast<int64_t>(ids.size())) {
    std::sort(ids.begin(), ids.end());
    std::shuffle(ids.begin(), ids.end(), std::mt19937_64(settings_.seed ^ 0x5eed));
    ids.resize(static_cast<size_t>(settings_.max_images));
  }
  const int64_t validation =
      validation_size(static_cast<int64_t>(ids.size()), settings_.validation_count, settings_.validation_fraction);
  split_ = split_patients(ids, validation, settings_.seed);
  if (static_cast<int64_t>(split_.train.size()) < settings_.batch_size)
    throw Error("only " + std::to_string(split_.train.size()) + " training images for batches of " +
                std::to_string(settings_.batch_size));
  {
    // What resume checks the dataset against: the label file's bytes and the images on disk.
    const std::string labels_text = read_text(layout_.train_labels);
    uint64_t hash = fnv1a(labels_text.data(), labels_text.size());
    for (const auto& id : ids) hash = fnv1a(id.data(), id.size() + 1, hash);  // with its terminating NUL
    char text[24];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
    data_fingerprint_ = text;
  }
  log_.line("data: " + settings_.data_dir + ": " + std::to_string(split_.train.size()) + " train, " +
            std::to_string(split_.validation.size()) + " validation images");

  const int image_size = static_cast<int>(settings_.network.input_size);
  const std::string cache_dir = settings_.cache_dir.empty() ? settings_.data_dir : settings_.cache_dir;
  const std::string cache_path = default_cache_path(cache_dir, layout_.train_images, image_size);
  // Rank 0 builds (or checks) the cache while the others wait; then they open what it wrote.
  if (is_root())
    cache_ = std::make_unique<ImageCache>(ImageCache::open_or_build(cache_path, layout_.train_images, image_size));
  communicator_->barrier(/*bounded=*/false);
  if (!is_root())
    cache_ = std::make_unique<ImageCache>(ImageCache::open_or_build(cache_path, layout_.train_images, image_size));
  for (const auto& failure : cache_->failures()) log_.line("unreadable image: " + failure.reason);

  LoaderConfig loader_config;
  loader_config.image_dir = layout_.train_images;
  loader_config.cache = cache_.get();
  loader_config.image_size = image_size;
  loader_config.batch_size = static_cast<int>(settings_.batch_size);
  loader_config.workers = loader_workers(settings_.workers);
  loader_config.seed = settings_.seed;
  loader_config.flip = settings_.flip;
  loader_config.max_unreadable_fraction = settings_.max_unreadable_fraction;
  train_loader_ = std::make_unique<BatchLoader>(split_.train, &labels_, LoaderMode::Train, loader_config);
  validation_loader_ = std::make_unique<BatchLoader>(split_.validation, &labels_, LoaderMode::Evaluate, loader_config);
}

void Trainer::check_ranks_agree(const std::string& what, uint64_t hash) {
  if (communicator_->size() == 1) return;
  const int64_t mine = static_cast<int64_t>(hash & 0x3fffffffffffffffULL);
  const int64_t largest = communicator_->allreduce_max(mine), smallest = -communicator_->allreduce_max(-mine);
  if (largest != smallest)
    throw Error("rank " + std::to_string(communicator_->rank()) + ": the ranks do not run the same " + what +
                " (hashes differ between ranks): start every rank with the same command line, data and run directory");
}

void Trainer::prepare_run_directory(bool resume) {
  namespace fs = std::filesystem;
  const std::string& folder = settings_.run_dir;
  if (folder.empty()) throw Error("the run directory is an empty path");
  std::error_code error;
  const fs::path resolved = fs::weakly_canonical(fs::absolute(folder), error);
  if (!error && resolved == resolved.root_path())
    throw Error("run directory " + quoted(folder, 200) + " is the root folder; a run needs a folder of its own");
  if (fs::exists(folder, error) && !fs::is_directory(folder, error))
    throw Error("run directory " + quoted(folder, 200) + " exists and is not a folder");
  if (!resume && fs::is_directory(folder, error)) {
    std::vector<std::string> foreign;
    bool holds_run = false;
    for (const fs::directory_entry& entry : fs::directory_iterator(folder, error)) {
      const std::string name = entry.path().filename().string();
      if (is_run_file_name(name)) {
        for (const char* made : {"config.txt", "last.safetensors", "best.safetensors", "history.csv"})
          holds_run = holds_run || name == made;
      } else if (!(name.size() > 12 && name.compare(name.size() - 12, 12, ".pneumocache") == 0)) {
        foreign.push_back(name);  // an image cache (--cache-dir RUN) is the run's too
      }
    }
    if (!foreign.empty() && !settings_.force_run_dir)
      throw Error("run directory " + quoted(folder, 200) + " holds files that are not a training run's (" +
                  quoted(foreign.front(), 80) +
                  (foreign.size() > 1 ? " and " + std::to_string(foreign.size() - 1) + " more" : std::string()) +
                  "); choose a new or empty folder, or pass --force to write the run there anyway");
    if (holds_run && !settings_.force_run_dir)
      throw Error("run directory " + quoted(folder, 200) + " already holds a training run; continue it with " +
                  "pneumo train --resume " + folder + ", or pass --force to replace it");
  }
  make_directories(folder);
  lock_ = std::make_unique<FolderLock>(folder, resume ? "pneumo train --resume" : "pneumo train");
  remove_stale_temporary_files_in(folder);  // of writers that were killed (before a commit)
  if (!resume)                              // --force over an old run: none of its files may mix with the new run's
    for (const char* old : {"last.safetensors", "best.safetensors", "history.csv", "curves.png", "validation_grid.png",
                            "inspect.csv", "inspect.html", "conv-algorithms.txt"})
      fs::remove(fs::path(folder) / old, error);
  if (!resume) {  // and its TensorBoard files, which TensorBoard would show as part of the new run
    std::vector<fs::path> event_files;
    for (const fs::directory_entry& entry : fs::directory_iterator(folder, error))
      if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) event_files.push_back(entry.path());
    for (const fs::path& file : event_files) fs::remove(file, error);
  }
}

void Trainer::start_new_run() {
  if (!is_root()) return;
  write_text_atomic(settings_.run_dir + "/config.txt", "# pneumo train settings; pneumo train --resume " +
                                                           quoted(settings_.run_dir, 200) + " reads them\n" +
                                                           format_key_values(settings_to_map(settings_)));
  write_text_atomic(settings_.run_dir + "/validation_labels.csv", validation_labels_csv(split_.validation, labels_));
  std::remove((settings_.run_dir + "/history.csv").c_str());
}

void Trainer::write_history_views() {
  if (!is_root()) return;
  write_text_atomic(settings_.run_dir + "/history.csv", format_history(history_));
  write_learning_curves(settings_.run_dir + "/curves.png", history_);
}

// ---- restore / save one run state -------------------------------------------------------------

void Trainer::restore(const std::string& path) {
  if (!path_exists(path)) throw Error(path + ": no checkpoint to resume from");
  // The checkpoint, config.txt and the dataset must describe one run: every field of the
  // configuration the checkpoint recorded (network.*, run.config.*) and the dataset's fingerprint
  // are compared before anything is loaded. Where the process may change on resume (device,
  // loader threads, cache folder) they are not compared.
  {
    const CheckpointInfo recorded = read_checkpoint_info(path);
    const std::string config_path = settings_.run_dir + "/config.txt";
    for (const auto& [key, value] : settings_to_map(settings_)) {
      if (is_process_setting(key)) continue;
      const std::string stored_key = key.rfind("network.", 0) == 0 ? key : "run.config." + key;
      const auto found = recorded.metadata.find(stored_key);
      if (found == recorded.metadata.end()) {
        if (key.rfind("network.", 0) == 0 &&
            (key == "network.input_size" || key == "network.channels" || key == "network.n_blocks" ||
             key == "network.depth" || key == "network.leaky_slope"))
          throw Error(path + ": no field '" + key + "' in its metadata; it is not a checkpoint of this run");
        continue;  // written before this field was recorded
      }
      if (found->second != value)
        throw Error(path + ": field '" + key + "' is " + quoted(found->second, 80) + " in the checkpoint but " +
                    quoted(value, 80) + " in " + config_path +
                    "; the checkpoint and the run's configuration disagree, so resume refuses");
    }
    const auto fingerprint = recorded.metadata.find("run.data_fingerprint");
    if (fingerprint != recorded.metadata.end() && fingerprint->second != data_fingerprint_)
      throw Error(path + ": field 'run.data_fingerprint' is " + fingerprint->second + " but the dataset " +
                  quoted(settings_.data_dir, 200) + " now gives " + data_fingerprint_ +
                  " (its labels or images changed since the run started); resume refuses");
  }
  const CheckpointInfo info = load_checkpoint(path, network_->parameters());
  // The convolution algorithms the run chose (auto times them on first use): the same again.
  network_->conv_selector().load(settings_.run_dir + "/conv-algorithms.txt");
  adam_.set_step_count(info.step);
  state_.epoch = info.epoch;
  state_.next_batch = checkpoint_counter(info.metadata, "run.next_batch", path);
  state_.best_map = metadata_number(info.metadata, "run.best_map", path);
  state_.partial.loss = metadata_number(info.metadata, "run.partial_loss", path);
  state_.partial.accuracy = metadata_number(info.metadata, "run.partial_accuracy", path);
  state_.partial.iou = metadata_number(info.metadata, "run.partial_iou", path);
  state_.partial.batches = checkpoint_counter(info.metadata, "run.partial_batches", path);
  const auto history = info.metadata.find("run.history");
  if (history != info.metadata.end()) {
    history_ = parse_history(history->second, path + " (run.history)");
    if (static_cast<int64_t>(history_.size()) != state_.epoch)
      throw Error(path + ": its history holds " + std::to_string(history_.size()) + " epochs but it was saved after " +
                  std::to_string(state_.epoch));
    // The seconds of each epoch, where history.csv still has its row (a damaged file: none).
    std::vector<EpochRecord> timed;
    try {
      timed = read_history(settings_.run_dir + "/history.csv");
    } catch (const Error&) {
    }
    for (EpochRecord& record : history_)
      for (const EpochRecord& row : timed)
        if (row.epoch == record.epoch) record.seconds = row.seconds;
  } else {  // checkpoints written before the history was kept in them
    history_ = read_history(settings_.run_dir + "/history.csv");
    if (static_cast<int64_t>(history_.size()) > state_.epoch) history_.resize(static_cast<size_t>(state_.epoch));
  }
  // history.csv and the curves are views of `last`: redrawn, whatever a kill left of them.
  write_history_views();
  log_.line("resuming " + settings_.run_dir + " at epoch " + std::to_string(state_.epoch + 1) + ", batch " +
            std::to_string(state_.next_batch + 1) + " (Adam step " + std::to_string(info.step) + ")");
}

void Trainer::save(const std::string& path, const RunState& state) {
  if (!is_root()) return;  // the state is the same on every rank; rank 0 writes it
  CheckpointInfo info;
  info.step = adam_.step_count();
  info.epoch = state.epoch;
  add_network_metadata(info.metadata, settings_.network);
  info.metadata["run.next_batch"] = std::to_string(state.next_batch);
  info.metadata["run.best_map"] = exact_number(state.best_map);
  info.metadata["run.partial_loss"] = exact_number(state.partial.loss);
  info.metadata["run.partial_accuracy"] = exact_number(state.partial.accuracy);
  info.metadata["run.partial_iou"] = exact_number(state.partial.iou);
  info.metadata["run.partial_batches"] = std::to_string(state.partial.batches);
  // The history without its wall-clock seconds (0 here; history.csv keeps them): a checkpoint's
  // bytes depend only on the computation, so a resumed run's equal an uninterrupted run's.
  std::vector<EpochRecord> history = history_;
  for (EpochRecord& record : history) record.seconds = 0;
  info.metadata["run.history"] = format_history(history);
  info.metadata["run.data_fingerprint"] = data_fingerprint_;
  for (const auto& [key, value] : settings_to_map(settings_))
    if (key.rfind("network.", 0) != 0 && !is_process_setting(key)) info.metadata["run.config." + key] = value;
  // The algorithms first: a checkpoint on disk always has the choices it was computed with.
  network_->conv_selector().write(settings_.run_dir + "/conv-algorithms.txt");
  save_checkpoint(path, network_->parameters(), info);
}

// ---- train one epoch ------------------------------------------------------------------------

double Trainer::learning_rate_of(int64_t epoch) const {
  return cosine_annealing(static_cast<double>(epoch), settings_.learning_rate, static_cast<int>(settings_.epochs));
}

bool Trainer::train_epoch() {
  const int64_t epoch = state_.epoch;
  const double learning_rate = learning_rate_of(epoch);
  const int64_t image_size = settings_.network.input_size;
  epoch_sums_ = state_.partial;
  train_loader_->start_epoch(static_cast<int>(epoch));
  ProgressBar progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(settings_.epochs),
                       train_loader_->batches_per_epoch() * settings_.batch_size, is_root() ? stdout : nullptr);
  const int ranks = communicator_->size();
  Batch batch;
  for (int64_t skipped = 0; skipped < state_.next_batch && train_loader_->next(batch); ++skipped)
    progress.advance(batch.size);
  auto step_start = std::chrono::steady_clock::now();
  for (int64_t index = state_.next_batch; train_loader_->next(batch); ++index) {
    if (batch.size % ranks != 0)
      throw Error("epoch " + std::to_string(epoch + 1) + ", batch " + std::to_string(index + 1) + " has " +
                  std::to_string(batch.size) + " images (unreadable images left out), which do not divide over " +
                  std::to_string(ranks) + " ranks");
    const int64_t slice = batch.size / ranks;  // this rank's images: [rank * slice, (rank + 1) * slice)
    ensure_shape(images_, device_, {slice, image_size, image_size, 1});
    ensure_shape(masks_, device_, {slice, image_size, image_size, 1});
    if (ranks == 1) {
      images_.set_values(batch.images);  // host -> device copies, visible here
      masks_.set_values(batch.masks);
    } else {
      const int64_t first = slice * communicator_->rank(), pixels = image_size * image_size;
      images_.set_values(image_range(batch.images, first, slice, pixels));
      masks_.set_values(image_range(batch.masks, first, slice, pixels));
    }
    const bool record = recorder_ && recorder_->due(adam_.step_count() + 1);
    if (record) recorder_->before_step(*network_);
    const StepResult step =
        train_step(context_, *network_, adam_, images_, masks_, static_cast<float>(learning_rate), *communicator_);
    if (record) recorder_->after_step(*network_, adam_.step_count(), epoch + 1);
    if (record && tensorboard_) write_parameter_histograms(*tensorboard_, *network_, adam_.step_count());
    if (!std::isfinite(step.loss.loss)) {
      progress.finish();
      throw Error("non-finite loss (" + std::to_string(step.loss.loss) + ") at epoch " + std::to_string(epoch + 1) +
                  ", batch " + std::to_string(index + 1) + "; stopped. The last good checkpoint is " +
                  (path_exists(last_path_) ? last_path_ : std::string("(none yet)")) + "; try a lower --lr");
    }
    epoch_sums_.add(step);
    if (tensorboard_) {  // the step's values as train_step returned them, and the images per second of the loop
      const auto now = std::chrono::steady_clock::now();
      const double seconds = std::chrono::duration<double>(now - step_start).count();
      step_start = now;
      tensorboard_->scalars(adam_.step_count(), {{"step/loss", step.loss.loss},
                                                 {"step/bce", step.loss.bce},
                                                 {"step/iou_loss", step.loss.iou_loss},
                                                 {"step/accuracy", step.metrics.accuracy},
                                                 {"step/mean_iou", step.metrics.mean_iou},
                                                 {"step/learning_rate", learning_rate},
                                                 {"step/images_per_second", seconds > 0 ? batch.size / seconds : 0.0}});
    }
    char extra[160];
    std::snprintf(extra, sizeof extra, "loss %.4f acc %.4f iou %.4f lr %.2e", epoch_sums_.mean(epoch_sums_.loss),
                  epoch_sums_.mean(epoch_sums_.accuracy), epoch_sums_.mean(epoch_sums_.iou), learning_rate);
    progress.advance(batch.size, extra);
    ++batches_this_run_;
    const bool stop_here = interrupt_requested() ||
                           (settings_.stop_after_batches > 0 && batches_this_run_ >= settings_.stop_after_batches);
    // Every rank stops after the same step: a signal may reach the ranks at different moments.
    const bool stop = ranks == 1 ? stop_here : communicator_->allreduce_max(stop_here ? 1 : 0) != 0;
    if (stop) {
      progress.finish("interrupted");
      state_.next_batch = index + 1;
      state_.partial = epoch_sums_;
      save(last_path_, state_);
      log_.line("interrupted: saved " + last_path_ + " at epoch " + std::to_string(epoch + 1) + ", batch " +
                std::to_string(index + 1) + "; continue with: pneumo train --resume " + settings_.run_dir);
      return false;
    }
  }
  progress.finish();
  return true;
}

// ---- end an epoch -----------------------------------------------------------------------------

void Trainer::end_epoch(double learning_rate, double seconds_training) {
  const auto validation_start = std::chrono::steady_clock::now();
  const ValidationResult validation =
      validate(context_, *network_, *validation_loader_, labels_, *cache_, settings_.threshold, communicator_);
  EpochRecord record;
  record.epoch = state_.epoch + 1;
  record.learning_rate = learning_rate;
  record.train_loss = epoch_sums_.mean(epoch_sums_.loss);
  record.train_accuracy = epoch_sums_.mean(epoch_sums_.accuracy);
  record.train_iou = epoch_sums_.mean(epoch_sums_.iou);
  record.validation_loss = validation.loss;
  record.validation_accuracy = validation.accuracy;
  record.validation_iou = validation.mean_iou;
  record.validation_map = validation.metric.mean_average_precision;
  record.seconds =
      seconds_training + std::chrono::duration<double>(std::chrono::steady_clock::now() - validation_start).count();
  history_.push_back(record);
  char line[320];
  std::snprintf(line, sizeof line,
                "epoch %lld/%lld: loss %.4f acc %.4f iou %.4f | val loss %.4f acc %.4f iou %.4f mAP %.4f "
                "(%lld images scored) | %.0fs",
                static_cast<long long>(record.epoch), static_cast<long long>(settings_.epochs), record.train_loss,
                record.train_accuracy, record.train_iou, record.validation_loss, record.validation_accuracy,
                record.validation_iou, record.validation_map, static_cast<long long>(validation.metric.images_scored),
                record.seconds);
  log_.line(line);

  const bool improved = record.validation_map > state_.best_map;
  if (improved) state_.best_map = record.validation_map;
  state_.epoch += 1;
  state_.next_batch = 0;
  state_.partial = EpochSums{};
  // One commit (apps/training_run.h): what belongs to this epoch is written before `last`, the commit
  // point; a kill before it redoes the epoch on --resume (the same bytes again), a kill after it
  // leaves only views of `last` to redraw.
  if (improved) save(best_path_, state_);
  if (is_root() && (improved || state_.epoch == settings_.epochs))
    write_validation_grid(settings_.run_dir + "/validation_grid.png", validation);
  if (tensorboard_) {  // history.csv's row (as floats) and the validation grid, at x = the epoch
    tensorboard_->scalars(record.epoch, {{"epoch/loss", record.train_loss},
                                         {"epoch/accuracy", record.train_accuracy},
                                         {"epoch/mean_iou", record.train_iou},
                                         {"epoch/val_loss", record.validation_loss},
                                         {"epoch/val_accuracy", record.validation_accuracy},
                                         {"epoch/val_mean_iou", record.validation_iou},
                                         {"epoch/val_map", record.validation_map},
                                         {"epoch/learning_rate", record.learning_rate},
                                         {"epoch/seconds", record.seconds}});
    if (!validation.images.empty()) {
      const Picture grid = validation_grid(validation);
      tensorboard_->image(record.epoch, "epoch/validation_grid", grid.png_bytes(), grid.width(), grid.height(), 3);
    }
  }
  save(last_path_, state_);
  write_history_views();
}

// ---- the run ----------------------------------------------------------------------------------

TrainOutcome Trainer::run() {
  install_interrupt_handler();
  TrainOutcome outcome;
  outcome.last_checkpoint = last_path_;
  outcome.best_checkpoint = best_path_;
  while (state_.epoch < settings_.epochs) {
    const auto epoch_start = std::chrono::steady_clock::now();
    if (!train_epoch()) {
      outcome.interrupted = true;
      outcome.epochs_done = state_.epoch;
      outcome.best_validation_map = std::max(0.0, state_.best_map);
      return outcome;
    }
    end_epoch(learning_rate_of(state_.epoch),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count());
    outcome.epochs_done = state_.epoch;
  }
  outcome.best_validation_map = std::max(0.0, state_.best_map);
  if (recorder_)
    log_.line("layer statistics: " + std::to_string(recorder_->steps_recorded()) + " steps recorded in " +
              std::to_string(recorder_->seconds_spent()) + " s -> " + recorder_->path() + " (pneumo inspect --run " +
              settings_.run_dir + ")");
  log_.line("done: best validation mAP " + std::to_string(outcome.best_validation_map) + "; checkpoints " + last_path_ +
            ", " + best_path_ + "; history " + settings_.run_dir + "/history.csv; curves " + settings_.run_dir +
            "/curves.png");
  return outcome;
}

TrainOutcome run_training(const TrainSettings& settings, bool resume) {
  const Device device = resolve_device(settings.device);
  // Single process unless launched by mpirun/srun with several ranks (an error in a build
  // without MPI); on CUDA each rank takes the GPU of its local rank (done here, before any
  // CUDA context exists), on the CPU its share of the cores.
  std::unique_ptr<Communicator> communicator = make_communicator(device);
  if (communicator->size() == 1) return Trainer(settings, resume, communicator.get()).run();
  if (device == Device::CPU)
    set_cpu_thread_count(
        cpu_threads_for_rank(cpu_thread_count(), communicator->local_rank(), communicator->local_size()));
  try {
    return Trainer(settings, resume, communicator.get()).run();
  } catch (const std::exception& error) {
    // The other ranks may be waiting in a collective: end this process now (mpirun then ends
    // the job) instead of a collective MPI_Finalize that would wait for them.
    std::fprintf(stderr, "pneumo: error: rank %d: %s\n", communicator->rank(), error.what());
    std::fflush(stderr);
    std::_Exit(1);
  }
}

}  // namespace pneumo::cli
