// BatchLoader: workers claim batch indices in order (at most prefetch_batches ahead of the
// consumer), build each batch alone, and park it in `ready_` under its index; next() hands them
// out strictly in index order. All randomness is a pure function of (seed, epoch, id), so the
// worker count changes only the speed.
#include "data/input/loader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "data/input/dataset.h"
#include "data/input/mask.h"
#include "engine/check.h"
#include "engine/random.h"

namespace pneumo {

namespace {

// Fisher-Yates with a splitmix64 stream and multiply-high bounded integers: the same order on
// every platform and standard library.
template <typename T>
void seeded_shuffle(std::vector<T>& items, uint64_t seed) {
  uint64_t state = mix64(seed);
  for (size_t i = items.size(); i > 1; --i) {
    state += 0x9e3779b97f4a7c15ULL;
    const uint64_t draw = mix64(state);
    const size_t j = static_cast<size_t>((static_cast<unsigned __int128>(draw) * i) >> 64);  // [0, i)
    std::swap(items[i - 1], items[j]);
  }
}

}  // namespace

int64_t validation_size(int64_t total, int64_t validation_count, double validation_fraction) {
  int64_t size =
      validation_count >= 0 ? validation_count : static_cast<int64_t>(std::llround(validation_fraction * total));
  if (size < 0 || size > total)
    throw Error("validation size " + std::to_string(size) + " is not within the " + std::to_string(total) +
                " train images");
  return size;
}

Split split_patients(std::vector<std::string> patient_ids, int64_t validation_count, uint64_t seed) {
  if (validation_count < 0 || validation_count > static_cast<int64_t>(patient_ids.size()))
    throw Error("validation count " + std::to_string(validation_count) + " is not within the " +
                std::to_string(patient_ids.size()) + " images");
  std::sort(patient_ids.begin(), patient_ids.end());
  seeded_shuffle(patient_ids, seed ^ 0x73706c6974ULL);  // "split"
  Split split;
  split.validation.assign(patient_ids.begin(), patient_ids.begin() + validation_count);
  split.train.assign(patient_ids.begin() + validation_count, patient_ids.end());
  return split;
}

std::vector<std::string> epoch_order(const std::vector<std::string>& patient_ids, uint64_t seed, int epoch) {
  std::vector<std::string> order = patient_ids;
  seeded_shuffle(order, mix64(seed) ^ mix64(0x65706f6368ULL + static_cast<uint64_t>(epoch)));
  return order;
}

bool flip_decision(uint64_t seed, int epoch, const std::string& patient_id) {
  const uint64_t draw =
      mix64(mix64(seed ^ 0x666c6970ULL) ^ mix64(static_cast<uint64_t>(epoch)) ^ hash_text(patient_id));
  return (draw >> 11) * 0x1.0p-53 < 0.5;
}

int loader_workers(int64_t requested) {
  if (requested < 1 || requested > kMaxLoaderWorkers)
    throw Error("--workers: expected 1.." + std::to_string(kMaxLoaderWorkers) + ", got " + std::to_string(requested));
  return static_cast<int>(requested);
}

BatchLoader::BatchLoader(std::vector<std::string> patient_ids, const LabelSet* labels, LoaderMode mode,
                         LoaderConfig config)
    : patient_ids_(std::move(patient_ids)), labels_(labels), mode_(mode), config_(std::move(config)) {
  if (mode_ != LoaderMode::Predict && labels_ == nullptr)
    throw Error("batch loader: labels are needed outside Predict mode");
  if (config_.batch_size < 1) throw Error("batch loader: batch_size must be at least 1");
  if (config_.image_size < 1 || config_.image_size > 65535)
    throw Error("batch loader: image_size must be in [1, 65535]");
  if (config_.cache != nullptr && config_.cache->image_size() != config_.image_size)
    throw Error("batch loader: the image cache holds " + std::to_string(config_.cache->image_size()) +
                "px images, the loader wants " + std::to_string(config_.image_size));
  if (config_.max_unreadable_fraction < 0 || config_.max_unreadable_fraction > 1)
    throw Error("batch loader: max_unreadable_fraction must be in [0, 1]");
  unreadable_limit_ = static_cast<int64_t>(std::floor(config_.max_unreadable_fraction * patient_ids_.size()));
  if (config_.workers < 1 || config_.workers > kMaxLoaderWorkers)
    throw Error("batch loader: workers must be in 1.." + std::to_string(kMaxLoaderWorkers) + ", got " +
                std::to_string(config_.workers));
  config_.prefetch_batches = std::max(config_.prefetch_batches, 1);
  try {
    for (int i = 0; i < config_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
  } catch (const std::system_error& error) {
    // The destructor does not run for a constructor that throws: stop and join what started
    // (destroying a joinable std::thread would call std::terminate).
    const size_t started = workers_.size();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    work_ready_.notify_all();
    for (std::thread& worker : workers_) worker.join();
    throw Error("batch loader: cannot start worker thread " + std::to_string(started + 1) + " of " +
                std::to_string(config_.workers) + " (" + error.what() + "); try fewer --workers");
  }
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  batch_ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t n = image_count(), b = config_.batch_size;
  return mode_ == LoaderMode::Train ? n / b : (n + b - 1) / b;
}

int64_t BatchLoader::unreadable_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(unreadable_.size());
}

void BatchLoader::start_epoch(int epoch) {
  auto order = std::make_shared<const std::vector<std::string>>(
      mode_ == LoaderMode::Train ? epoch_order(patient_ids_, config_.seed, epoch) : patient_ids_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    batch_count_ = batches_per_epoch();
    next_to_build_ = next_to_deliver_ = 0;
    ready_.clear();
  }
  work_ready_.notify_all();
}

bool BatchLoader::next(Batch& batch) {
  while (true) {
    Slot slot;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!order_) throw Error("batch loader: call start_epoch before next");
      if (next_to_deliver_ >= batch_count_) return false;
      batch_ready_.wait(lock, [&] { return stopping_ || ready_.count(next_to_deliver_) > 0; });
      if (stopping_) return false;
      auto found = ready_.find(next_to_deliver_);
      slot = std::move(found->second);
      ready_.erase(found);
      ++next_to_deliver_;
    }
    work_ready_.notify_all();
    if (slot.error) std::rethrow_exception(slot.error);
    if (slot.batch.size == 0) continue;  // every image of this batch was unreadable
    batch = std::move(slot.batch);
    return true;
  }
}

void BatchLoader::worker_loop() {
  while (true) {
    int epoch;
    int64_t batch_index;
    uint64_t generation;
    std::shared_ptr<const std::vector<std::string>> order;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] {
        return stopping_ || (order_ && next_to_build_ < batch_count_ &&
                             next_to_build_ < next_to_deliver_ + config_.prefetch_batches);
      });
      if (stopping_) return;
      epoch = epoch_;
      batch_index = next_to_build_++;
      generation = generation_;
      order = order_;
    }
    Slot slot;
    try {
      slot = build_batch(epoch, batch_index, *order);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (generation == generation_) ready_[batch_index] = std::move(slot);
    }
    batch_ready_.notify_all();
  }
}

BatchLoader::Slot BatchLoader::build_batch(int epoch, int64_t batch_index, const std::vector<std::string>& order) {
  const int64_t begin = batch_index * config_.batch_size;
  const int64_t end = std::min<int64_t>(begin + config_.batch_size, static_cast<int64_t>(order.size()));
  const int64_t pixels = static_cast<int64_t>(config_.image_size) * config_.image_size;
  Slot slot;
  Batch& batch = slot.batch;
  batch.image_size = config_.image_size;
  batch.images.assign(static_cast<size_t>((end - begin) * pixels), 0.0f);           // (N,S,S,1)
  if (mode_ != LoaderMode::Predict) batch.masks.assign(batch.images.size(), 0.0f);  // (N,S,S,1)
  for (int64_t i = begin; i < end; ++i) {
    const std::string& id = order[i];
    const bool flip = mode_ == LoaderMode::Train && config_.flip && flip_decision(config_.seed, epoch, id);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (unreadable_.count(id)) continue;  // reported once already
    }
    try {
      load_into(batch, batch.size, id, flip);
    } catch (const Error& error) {
      record_unreadable(id, error.what());  // throws when over the limit
      continue;
    }
    batch.patient_ids.push_back(id);
    ++batch.size;
  }
  batch.images.resize(static_cast<size_t>(batch.size * pixels));
  if (mode_ != LoaderMode::Predict) batch.masks.resize(batch.images.size());
  return slot;
}

void BatchLoader::record_unreadable(const std::string& patient_id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!unreadable_.emplace(patient_id, reason).second) return;
  std::fprintf(stderr, "unreadable image %s\n", reason.c_str());
  const int64_t count = static_cast<int64_t>(unreadable_.size());
  if (count > unreadable_limit_)
    throw Error(std::to_string(count) + " of " + std::to_string(patient_ids_.size()) +
                " images are unreadable, more than the allowed " +
                std::to_string(config_.max_unreadable_fraction * 100.0) + "% (" + std::to_string(unreadable_limit_) +
                " images); last: " + reason);
}

void BatchLoader::load_into(Batch& batch, int64_t position, const std::string& patient_id, bool flip) {
  const int size = config_.image_size;
  const int64_t pixels = static_cast<int64_t>(size) * size;
  int source_width = 0, source_height = 0;
  const float* source = nullptr;
  ResizedImage decoded;
  if (config_.cache != nullptr) source = config_.cache->find(patient_id, &source_width, &source_height);
  if (source == nullptr) {
    decoded = load_resized_image(dicom_path(config_.image_dir, patient_id), size);
    source = decoded.pixels.data();
    source_width = decoded.source_width;
    source_height = decoded.source_height;
  }
  float* image = batch.images.data() + position * pixels;  // (S,S)
  if (!flip) {
    std::memcpy(image, source, static_cast<size_t>(pixels) * sizeof(float));
  } else {
    for (int y = 0; y < size; ++y)
      std::reverse_copy(source + static_cast<int64_t>(y) * size, source + static_cast<int64_t>(y + 1) * size,
                        image + static_cast<int64_t>(y) * size);
  }
  if (mode_ == LoaderMode::Predict) return;
  float* mask = batch.masks.data() + position * pixels;  // (S,S), already zero
  std::shared_ptr<const std::vector<uint16_t>> runs = mask_for(patient_id, source_width, source_height);
  if (!runs) return;
  for (size_t r = 0; r + 2 < runs->size(); r += 3) {
    const int row = (*runs)[r], run_begin = (*runs)[r + 1], run_end = (*runs)[r + 2];
    const int first = flip ? size - run_end : run_begin, last = flip ? size - run_begin : run_end;
    std::fill(mask + static_cast<int64_t>(row) * size + first, mask + static_cast<int64_t>(row) * size + last, 1.0f);
  }
}

std::shared_ptr<const std::vector<uint16_t>> BatchLoader::mask_for(const std::string& patient_id, int source_width,
                                                                   int source_height) {
  const std::vector<Box>& boxes = labels_->boxes_for(patient_id);
  if (boxes.empty()) return nullptr;
  {
    std::lock_guard<std::mutex> lock(mask_mutex_);
    auto found = masks_.find(patient_id);
    if (found != masks_.end()) return found->second;
  }
  const int size = config_.image_size;
  std::vector<float> mask = box_mask(boxes, source_height, source_width, size, /*use_threads=*/false);  // (S,S)
  auto runs = std::make_shared<std::vector<uint16_t>>();
  for (int y = 0; y < size; ++y) {
    const float* row = mask.data() + static_cast<int64_t>(y) * size;
    for (int x = 0; x < size;) {
      if (row[x] == 0.0f) {
        ++x;
        continue;
      }
      int end = x;
      while (end < size && row[end] != 0.0f) ++end;
      runs->insert(runs->end(), {static_cast<uint16_t>(y), static_cast<uint16_t>(x), static_cast<uint16_t>(end)});
      x = end;
    }
  }
  std::lock_guard<std::mutex> lock(mask_mutex_);
  return masks_.emplace(patient_id, std::move(runs)).first->second;
}

}  // namespace pneumo
