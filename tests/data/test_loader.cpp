// BatchLoader: the same batches whatever the worker count, split sizes, full batches only in
// training, every image in evaluation/prediction, flips applied to image and mask together,
// reshuffles per epoch, and unreadable images reported and limited.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/input/cache.h"
#include "data/input/dataset.h"
#include "data/input/labels.h"
#include "data/input/loader.h"
#include "data/input/mask.h"
#include "data/input/synth.h"
#include "engine/check.h"
#include "tests/third_party/doctest/doctest.h"

namespace fs = std::filesystem;

namespace {

constexpr int kSize = 32;  // loader image size
constexpr int kImages = 10;

struct Fixture {
  std::string root, images;
  pneumo::LabelSet labels;
};

const Fixture& fixture() {
  static const Fixture data = [] {
    pneumo::SynthConfig config;
    config.out_dir = "/tmp/pneumo_test_loader_" + std::to_string(::getpid());
    fs::remove_all(config.out_dir);
    config.train_images = kImages;
    config.test_images = 0;
    config.image_size = 128;
    config.seed = 8;
    pneumo::write_synthetic_dataset(config);
    Fixture fixture;
    fixture.root = config.out_dir;
    fixture.images = config.out_dir + "/stage_2_train_images";
    fixture.labels = pneumo::read_labels(config.out_dir + "/stage_2_train_labels.csv");
    return fixture;
  }();
  return data;
}

pneumo::LoaderConfig loader_config(int workers, int batch_size = 4) {
  pneumo::LoaderConfig config;
  config.image_dir = fixture().images;
  config.image_size = kSize;
  config.batch_size = batch_size;
  config.workers = workers;
  config.prefetch_batches = 2;
  config.seed = 99;
  return config;
}

std::vector<pneumo::Batch> epoch_batches(pneumo::BatchLoader& loader, int epoch) {
  loader.start_epoch(epoch);
  std::vector<pneumo::Batch> batches;
  pneumo::Batch batch;
  while (loader.next(batch)) batches.push_back(batch);
  return batches;
}

bool same_batches(const std::vector<pneumo::Batch>& a, const std::vector<pneumo::Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size != b[i].size || a[i].patient_ids != b[i].patient_ids) return false;
    if (a[i].images.size() != b[i].images.size() || a[i].masks.size() != b[i].masks.size()) return false;
    if (std::memcmp(a[i].images.data(), b[i].images.data(), a[i].images.size() * 4) != 0) return false;
    if (std::memcmp(a[i].masks.data(), b[i].masks.data(), a[i].masks.size() * 4) != 0) return false;
  }
  return true;
}

// One (S,S) image of a batch, optionally mirrored left-right.
std::vector<float> plane(const std::vector<float>& data, int64_t index, bool mirrored = false) {
  std::vector<float> out(data.begin() + index * kSize * kSize, data.begin() + (index + 1) * kSize * kSize);
  if (mirrored)
    for (int y = 0; y < kSize; ++y) std::reverse(out.begin() + y * kSize, out.begin() + (y + 1) * kSize);
  return out;
}

}  // namespace

TEST_CASE("split: sizes, disjoint halves, seeded") {
  const std::vector<std::string>& ids = fixture().labels.patient_ids;
  pneumo::Split split = pneumo::split_patients(ids, 3, 1);
  CHECK(split.validation.size() == 3);
  CHECK(split.train.size() == kImages - 3);
  std::set<std::string> all(split.train.begin(), split.train.end());
  all.insert(split.validation.begin(), split.validation.end());
  CHECK(all == std::set<std::string>(ids.begin(), ids.end()));
  // The same ids in another order give the same split; another seed another one.
  std::vector<std::string> reversed(ids.rbegin(), ids.rend());
  CHECK(pneumo::split_patients(reversed, 3, 1).validation == split.validation);
  bool differs = false;
  for (uint64_t seed = 2; seed < 6; ++seed)
    differs = differs || pneumo::split_patients(ids, 3, seed).validation != split.validation;
  CHECK(differs);
  CHECK(pneumo::validation_size(26684, 2560, 0.0) == 2560);
  CHECK(pneumo::validation_size(10, -1, 0.25) == 3);  // round(2.5) away from zero
  CHECK_THROWS_AS(pneumo::validation_size(10, 11, 0.0), pneumo::Error);
  CHECK_THROWS_AS(pneumo::split_patients(ids, kImages + 1, 1), pneumo::Error);
}

TEST_CASE("the batches are byte-identical with 1 and 4 workers, from files or from the cache") {
  const pneumo::LabelSet& labels = fixture().labels;
  pneumo::BatchLoader one(labels.patient_ids, &labels, pneumo::LoaderMode::Train, loader_config(1));
  pneumo::BatchLoader four(labels.patient_ids, &labels, pneumo::LoaderMode::Train, loader_config(4));
  const pneumo::ImageCache cache =
      pneumo::ImageCache::open_or_build(fixture().root + "/train.pneumocache", fixture().images, kSize, false);
  pneumo::LoaderConfig cached_config = loader_config(3);
  cached_config.cache = &cache;
  pneumo::BatchLoader cached(labels.patient_ids, &labels, pneumo::LoaderMode::Train, cached_config);
  for (int epoch = 0; epoch < 3; ++epoch) {
    const std::vector<pneumo::Batch> reference = epoch_batches(one, epoch);
    CHECK(reference.size() == 2);
    CHECK(same_batches(reference, epoch_batches(four, epoch)));
    CHECK(same_batches(reference, epoch_batches(cached, epoch)));
  }
}

TEST_CASE("train yields full batches only and reshuffles every epoch; evaluate and predict yield all") {
  const pneumo::LabelSet& labels = fixture().labels;
  pneumo::BatchLoader train(labels.patient_ids, &labels, pneumo::LoaderMode::Train, loader_config(2));
  CHECK(train.batches_per_epoch() == 2);  // 10 images, batches of 4
  std::vector<std::vector<std::string>> orders;
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<std::string> order;
    for (const pneumo::Batch& batch : epoch_batches(train, epoch)) {
      CHECK(batch.size == 4);
      CHECK(batch.image_size == kSize);
      CHECK(batch.images.size() == 4u * kSize * kSize);
      CHECK(batch.masks.size() == 4u * kSize * kSize);
      order.insert(order.end(), batch.patient_ids.begin(), batch.patient_ids.end());
    }
    CHECK(order.size() == 8);
    CHECK(std::set<std::string>(order.begin(), order.end()).size() == 8);
    const std::vector<std::string> expected = pneumo::epoch_order(labels.patient_ids, 99, epoch);
    CHECK(order == std::vector<std::string>(expected.begin(), expected.begin() + 8));
    orders.push_back(order);
  }
  CHECK(orders[0] != orders[1]);
  CHECK(orders[1] != orders[2]);

  pneumo::BatchLoader evaluate(labels.patient_ids, &labels, pneumo::LoaderMode::Evaluate, loader_config(2));
  const std::vector<pneumo::Batch> batches = epoch_batches(evaluate, 0);
  REQUIRE(batches.size() == 3);
  CHECK(batches[2].size == 2);
  CHECK(batches[2].masks.size() == 2u * kSize * kSize);
  std::vector<std::string> order;
  for (const pneumo::Batch& batch : batches)
    order.insert(order.end(), batch.patient_ids.begin(), batch.patient_ids.end());
  CHECK(order == labels.patient_ids);  // given order, every image

  pneumo::BatchLoader predict(labels.patient_ids, nullptr, pneumo::LoaderMode::Predict, loader_config(2, 3));
  const std::vector<pneumo::Batch> predicted = epoch_batches(predict, 0);
  REQUIRE(predicted.size() == 4);
  CHECK(predicted[3].size == 1);
  CHECK(predicted[3].masks.empty());
  CHECK(predicted[3].patient_ids.back() == labels.patient_ids.back());
}

TEST_CASE("images and masks: exactly decode+resize and box_mask, flipped together") {
  const pneumo::LabelSet& labels = fixture().labels;
  pneumo::BatchLoader evaluate(labels.patient_ids, &labels, pneumo::LoaderMode::Evaluate, loader_config(2));
  std::map<std::string, std::pair<std::vector<float>, std::vector<float>>> plain;  // id -> (image, mask)
  for (const pneumo::Batch& batch : epoch_batches(evaluate, 0))
    for (int64_t i = 0; i < batch.size; ++i)
      plain[batch.patient_ids[i]] = {plane(batch.images, i), plane(batch.masks, i)};
  // Unflipped: what decode + resize and box_mask give.
  int positives = 0;
  for (const auto& [id, pair] : plain) {
    const pneumo::ResizedImage image = pneumo::load_resized_image(pneumo::dicom_path(fixture().images, id), kSize);
    CHECK(pair.first == image.pixels);
    CHECK(pair.second == pneumo::box_mask(labels.boxes_for(id), 128, 128, kSize));
    positives += labels.boxes_for(id).empty() ? 0 : 1;
  }
  CHECK(positives == 3);
  // Train mode: each image is the plain one or its mirror, the mask the same, as flip_decision says.
  pneumo::BatchLoader train(labels.patient_ids, &labels, pneumo::LoaderMode::Train, loader_config(2));
  int flipped = 0, kept = 0, flipped_positive = 0;
  for (int epoch = 0; epoch < 4; ++epoch) {
    for (const pneumo::Batch& batch : epoch_batches(train, epoch)) {
      for (int64_t i = 0; i < batch.size; ++i) {
        const std::string& id = batch.patient_ids[i];
        const bool flip = pneumo::flip_decision(99, epoch, id);
        CHECK(plane(batch.images, i, flip) == plain[id].first);
        CHECK(plane(batch.masks, i, flip) == plain[id].second);
        if (flip && !labels.boxes_for(id).empty()) {
          ++flipped_positive;
          CHECK(plane(batch.masks, i) != plain[id].second);  // the boxes are not symmetric
        }
        (flip ? flipped : kept) += 1;
      }
    }
  }
  CHECK(flipped > 5);
  CHECK(kept > 5);
  CHECK(flipped_positive > 0);
}

TEST_CASE("unreadable images are reported and fail the run only beyond the limit") {
  const std::string images = fixture().root + "/broken_images";
  fs::create_directories(images);
  const pneumo::LabelSet& labels = fixture().labels;
  for (const std::string& id : labels.patient_ids)
    fs::copy_file(pneumo::dicom_path(fixture().images, id), pneumo::dicom_path(images, id),
                  fs::copy_options::overwrite_existing);
  const std::string broken = labels.patient_ids[4];
  std::ofstream(pneumo::dicom_path(images, broken), std::ios::trunc) << "garbage";

  pneumo::LoaderConfig config = loader_config(3);
  config.image_dir = images;
  SUBCASE("limit 0: the first unreadable image fails the run") {
    pneumo::BatchLoader loader(labels.patient_ids, &labels, pneumo::LoaderMode::Evaluate, config);
    loader.start_epoch(0);
    pneumo::Batch batch;
    CHECK(loader.next(batch));  // batch 0: images 0-3
    std::string message;
    try {
      loader.next(batch);
    } catch (const pneumo::Error& error) {
      message = error.what();
    }
    CHECK(message.find("1 of 10 images are unreadable") == 0);
    CHECK(message.find(pneumo::dicom_path(images, broken)) != std::string::npos);
    CHECK(loader.unreadable_count() == 1);
  }
  SUBCASE("within the limit: the image is left out and counted") {
    config.max_unreadable_fraction = 0.1;
    pneumo::BatchLoader loader(labels.patient_ids, &labels, pneumo::LoaderMode::Evaluate, config);
    for (int epoch = 0; epoch < 2; ++epoch) {
      const std::vector<pneumo::Batch> batches = epoch_batches(loader, epoch);
      REQUIRE(batches.size() == 3);
      CHECK(batches[1].size == 3);
      CHECK(batches[1].images.size() == 3u * kSize * kSize);
      CHECK(std::find(batches[1].patient_ids.begin(), batches[1].patient_ids.end(), broken) ==
            batches[1].patient_ids.end());
    }
    CHECK(loader.unreadable_count() == 1);
  }
}

TEST_CASE("the worker count is bounded: outside 1..256 a one-line error naming it") {
  const pneumo::LabelSet& labels = fixture().labels;
  for (int workers : {0, -3, 257, 100000}) {
    std::string message;
    try {
      pneumo::BatchLoader loader(labels.patient_ids, &labels, pneumo::LoaderMode::Evaluate, loader_config(workers));
    } catch (const pneumo::Error& error) {
      message = error.what();
    }
    INFO("workers " << workers);
    CHECK(message == "batch loader: workers must be in 1..256, got " + std::to_string(workers));
  }
  pneumo::BatchLoader loader(labels.patient_ids, &labels, pneumo::LoaderMode::Evaluate, loader_config(256));
  CHECK(epoch_batches(loader, 0).size() == 3);
}

TEST_CASE("a worker thread that cannot start is a pneumo::Error, not std::terminate") {
  // In a child process whose address space leaves room for only a few 8 MiB thread stacks, the
  // loader's 256 threads cannot all start; the child reports what the constructor did.
  const pneumo::LabelSet& labels = fixture().labels;
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    const rlim_t limit = static_cast<rlim_t>(pages) * ::sysconf(_SC_PAGESIZE) + (64u << 20);
    const rlimit address_space{limit, limit};
    if (::setrlimit(RLIMIT_AS, &address_space) != 0) ::_exit(3);
    try {
      pneumo::BatchLoader loader(labels.patient_ids, &labels, pneumo::LoaderMode::Evaluate, loader_config(256));
      ::_exit(2);  // every thread started: the limit did not bite
    } catch (const pneumo::Error& error) {
      const std::string message = error.what();
      ::_exit(message.find("batch loader: cannot start worker thread") == 0 ? 0 : 4);
    } catch (...) {
      ::_exit(5);
    }
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  INFO("child status " << status);
  REQUIRE(WIFEXITED(status));  // before the fix: killed by SIGABRT (std::terminate)
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("cleanup") { fs::remove_all(fixture().root); }
