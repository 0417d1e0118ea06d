// Batch loader: patient ids + labels -> pneumo::Batch (images and 0/1 box masks, (N,S,S,1)),
// prefetched by background worker threads into a bounded queue. The batch sequence depends only
// on the ids, the labels, the seed and the epoch, never on the number of workers: the epoch's
// order comes from a shuffle seeded by (seed, epoch), each flip decision from a generator
// seeded by (seed, epoch, patient id), and batches are handed out in index order.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "data/input/batch.h"
#include "data/input/cache.h"
#include "data/input/labels.h"

namespace pneumo {

// ---- train / validation split ---------------------------------------------------------------

struct Split {
  std::vector<std::string> train;
  std::vector<std::string> validation;
};

// The validation share: `validation_count` images when >= 0 (the notebook's 2560), otherwise
// round(validation_fraction * total). Throws pneumo::Error when it is not in [0, total].
int64_t validation_size(int64_t total, int64_t validation_count, double validation_fraction);

// Sorts the ids, shuffles them with a generator seeded by `seed`, and takes the first
// `validation_count` as validation, the rest as train (both keep the shuffled order).
Split split_patients(std::vector<std::string> patient_ids, int64_t validation_count, uint64_t seed);

// The epoch's order of `patient_ids`: a Fisher-Yates shuffle seeded by (seed, epoch).
std::vector<std::string> epoch_order(const std::vector<std::string>& patient_ids, uint64_t seed, int epoch);

// Whether `patient_id` is flipped left-right in `epoch` (probability 0.5, from a generator
// seeded by (seed, epoch, patient id) alone).
bool flip_decision(uint64_t seed, int epoch, const std::string& patient_id);

// ---- the loader -----------------------------------------------------------------------------

enum class LoaderMode {
  Train,     // reshuffled every epoch, random horizontal flips, full batches only
  Evaluate,  // ids in the given order, masks, every image (last batch may be partial)
  Predict,   // ids in the given order, no masks, every image
};

// More loader threads than this is a mistake, not a speed-up (and 100000 cannot start).
constexpr int kMaxLoaderWorkers = 256;

// A --workers value as a thread count; pneumo::Error "--workers: expected 1..256, got N" outside.
int loader_workers(int64_t requested);

struct LoaderConfig {
  std::string image_dir;              // where <patientId>.dcm files live (used when not cached)
  const ImageCache* cache = nullptr;  // optional: images come from here when present
  int image_size = 256;               // S
  int batch_size = 32;
  int workers = 4;           // background threads, 1..kMaxLoaderWorkers
  int prefetch_batches = 8;  // bound on batches decoded ahead of the consumer
  uint64_t seed = 0;
  bool flip = true;  // Train mode only
  // The run fails (pneumo::Error) once the unreadable images exceed this share of the ids.
  // Every unreadable image is reported (one stderr line naming the file and the reason).
  double max_unreadable_fraction = 0.0;
};

class BatchLoader {
 public:
  // `labels` must outlive the loader (nullptr is allowed in Predict mode only).
  BatchLoader(std::vector<std::string> patient_ids, const LabelSet* labels, LoaderMode mode, LoaderConfig config);
  ~BatchLoader();  // stops and joins the workers
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t image_count() const { return static_cast<int64_t>(patient_ids_.size()); }
  int64_t batches_per_epoch() const;

  // Starts producing the batches of `epoch` (abandoning what is left of the previous one).
  void start_epoch(int epoch);
  // The next batch of the current epoch in order; false when the epoch is done. Rethrows an
  // exception raised in a worker (e.g. the unreadable-image limit). An image that cannot be read
  // (within the limit) is left out of its batch, so that batch has fewer than batch_size images.
  bool next(Batch& batch);

  int64_t unreadable_count() const;  // distinct unreadable ids seen so far

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  void worker_loop();
  Slot build_batch(int epoch, int64_t batch_index, const std::vector<std::string>& order);
  void load_into(Batch& batch, int64_t position, const std::string& patient_id, bool flip);
  void record_unreadable(const std::string& patient_id, const std::string& reason);

  std::vector<std::string> patient_ids_;
  const LabelSet* labels_;
  LoaderMode mode_;
  LoaderConfig config_;
  int64_t unreadable_limit_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_, batch_ready_;
  bool stopping_ = false;
  int epoch_ = -1;
  uint64_t generation_ = 0;                                // bumped by start_epoch; stale results are dropped
  std::shared_ptr<const std::vector<std::string>> order_;  // the epoch's id order
  int64_t next_to_build_ = 0, next_to_deliver_ = 0, batch_count_ = 0;
  std::map<int64_t, Slot> ready_;
  std::unordered_map<std::string, std::string> unreadable_;  // id -> reason

  // Masks, computed once per positive id and kept as row runs: (row, begin, end) uint16 triples.
  std::mutex mask_mutex_;
  std::unordered_map<std::string, std::shared_ptr<const std::vector<uint16_t>>> masks_;
  std::shared_ptr<const std::vector<uint16_t>> mask_for(const std::string& patient_id, int source_width,
                                                        int source_height);

  std::vector<std::thread> workers_;
};

}  // namespace pneumo
