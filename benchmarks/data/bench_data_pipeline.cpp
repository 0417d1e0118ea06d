// Data pipeline throughput on RSNA-like files (1024x1024 JPEG-baseline DICOMs):
//   decode+resize to 256x256 on one thread and through the loader with all workers (no cache),
//   cache build, and cache-fed training batches (32 x 256 x 256, flips, masks).
// Usage: bench_data_pipeline [--data DIR] [--images N]
//   --data: a folder with stage_2_train_labels.csv and stage_2_train_images (default: a
//   synthetic set of --images (default 256) written to /tmp/pneumo_bench_data first).
// Prints medians over repeated rounds in images/s. Compare the one-thread figure with
// benchmarks/data/notebook_data_path.py on the same files (the notebook's pydicom + skimage path).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "benchmarks/support/benchmark_main.h"
#include "data/input/cache.h"
#include "data/input/dataset.h"
#include "data/input/labels.h"
#include "data/input/loader.h"
#include "data/input/synth.h"
#include "engine/cpu_threads.h"

namespace {

double seconds_of(const std::function<void()>& body) {
  const auto start = std::chrono::steady_clock::now();
  body();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void declare_options(pneumo::cli::Arguments& arguments) {
  arguments.option("data", "DIR", "",
                   "dataset in the RSNA layout (default: synthetic images in /tmp/pneumo_bench_data)");
  arguments.option("images", "N", "256", "images to time (and to synthesize without --data)");
}

int time_pipeline(const pneumo::cli::Arguments& arguments) {
  const int wanted = static_cast<int>(arguments.integer("images", 1));
  std::string root = arguments.text("data");
  if (root.empty()) {
    root = "/tmp/pneumo_bench_data";
    if (!pneumo::directory_exists(root + "/stage_2_train_images") ||
        pneumo::list_dicom_ids(root + "/stage_2_train_images").size() != static_cast<size_t>(wanted)) {
      pneumo::SynthConfig config;
      std::filesystem::remove_all(root);  // this benchmark's own scratch dataset; synth wants a new folder
      config.out_dir = root;
      config.train_images = wanted;
      config.test_images = 0;
      config.seed = 1;
      std::printf("writing %d synthetic images to %s ... ", wanted, root.c_str());
      std::fflush(stdout);
      const double seconds = seconds_of([&] { pneumo::write_synthetic_dataset(config); });
      std::printf("%.1f s (%.1f images/s with %d threads)\n", seconds, wanted / seconds, pneumo::cpu_thread_count());
    }
  }
  const pneumo::DatasetLayout layout = pneumo::find_dataset(root);
  const pneumo::LabelSet labels = pneumo::read_labels(layout.train_labels);
  std::vector<std::string> ids = pneumo::list_dicom_ids(layout.train_images);
  if (static_cast<int>(ids.size()) > wanted) ids.resize(wanted);
  const int threads = pneumo::cpu_thread_count();
  std::printf("%zu images from %s, %d CPU threads\n", ids.size(), layout.train_images.c_str(), threads);

  // 1. decode + resize, one thread.
  {
    const size_t count = std::min<size_t>(ids.size(), 64);
    std::vector<double> rates;
    for (int round = 0; round < 3; ++round) {
      const double seconds = seconds_of([&] {
        for (size_t i = 0; i < count; ++i)
          pneumo::load_resized_image(pneumo::dicom_path(layout.train_images, ids[i]), 256);
      });
      rates.push_back(count / seconds);
    }
    std::printf("decode+resize 1024->256, 1 thread: median %.1f images/s (%.2f ms/image)\n", median(rates),
                1000.0 / median(rates));
  }
  // 2. decode + resize + masks through the loader, all workers, no cache.
  {
    pneumo::LoaderConfig config;
    config.image_dir = layout.train_images;
    config.workers = threads;
    config.batch_size = 32;
    pneumo::BatchLoader loader(ids, &labels, pneumo::LoaderMode::Evaluate, config);
    std::vector<double> rates;
    for (int epoch = 0; epoch < 3; ++epoch) {
      int64_t images = 0;
      const double seconds = seconds_of([&] {
        loader.start_epoch(epoch);
        pneumo::Batch batch;
        while (loader.next(batch)) images += batch.size;
      });
      rates.push_back(images / seconds);
    }
    std::printf("loader without cache (decode+resize+masks), %d workers: median %.1f images/s\n", threads,
                median(rates));
  }
  // 3. cache build.
  const std::string cache_path = "/tmp/pneumo_bench_" + std::to_string(::getpid()) + ".pneumocache";
  {
    const double seconds = seconds_of([&] { pneumo::build_cache(cache_path, layout.train_images, 256, false); });
    const size_t all = pneumo::list_dicom_ids(layout.train_images).size();
    std::printf("cache build (%zu images, %d threads): %.1f s, %.1f images/s\n", all, threads, seconds, all / seconds);
  }
  // 4. cache-fed training batches.
  {
    const pneumo::ImageCache cache = pneumo::ImageCache::open(cache_path, layout.train_images, 256);
    for (int workers : {1, threads}) {
      pneumo::LoaderConfig config;
      config.image_dir = layout.train_images;
      config.cache = &cache;
      config.workers = workers;
      config.batch_size = 32;
      pneumo::BatchLoader loader(ids, &labels, pneumo::LoaderMode::Train, config);
      std::vector<double> rates;
      double first = 0;
      for (int epoch = 0; epoch < 6; ++epoch) {
        int64_t images = 0;
        const double seconds = seconds_of([&] {
          loader.start_epoch(epoch);
          pneumo::Batch batch;
          while (loader.next(batch)) images += batch.size;
        });
        if (epoch == 0)
          first = images / seconds;
        else
          rates.push_back(images / seconds);
      }
      std::printf(
          "cache-fed train batches 32x256x256 (flip, masks), %d worker%s: median %.0f images/s "
          "(first epoch, masks computed: %.0f images/s)\n",
          workers, workers == 1 ? "" : "s", median(rates), first);
    }
  }
  std::remove(cache_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return pneumo::benchmark::run(
      argc, argv, "bench_data_pipeline",
      "Data pipeline throughput on RSNA-like files: decode+resize to 256 on one thread and through the\n"
      "loader, cache build, and cache-fed training batches (32x256x256), as medians in images/s.",
      declare_options, time_pipeline);
}
