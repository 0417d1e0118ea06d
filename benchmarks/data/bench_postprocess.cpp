// Post-processing speed: network-sized probability maps (256x256) -> resize to 1024x1024,
// threshold, connected components, boxes, confidences. CPU on one thread and on all threads, and
// the GPU on a batch of 32 (skipped with a message without a GPU). Median ms per image.
//
//   bench_postprocess [--count N] [--maps-out maps.npy] [--boxes-out boxes.txt]
//
// The maps are realistic smooth blobs: 16x16 standard-normal fields upsampled bilinearly to
// 256x256, through a logistic. --maps-out writes them as a .npy (N,256,256) float32 file and
// --boxes-out the CPU boxes, so benchmarks/data/notebook_postprocess.py can time the notebook's
// own skimage path on the same maps and check it finds the same boxes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/support/benchmark_main.h"
#include "data/evaluation/postprocess.h"
#include "data/input/resize.h"
#include "engine/check.h"
#include "engine/context.h"
#include "engine/cpu_threads.h"
#include "engine/device.h"
#include "kernels/connected_components.h"

namespace {

constexpr int kMapSize = 256;
constexpr int kField = 16;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

std::vector<float> make_maps(int count) {
  std::mt19937 generator(12345);
  std::normal_distribution<float> normal;
  std::vector<float> maps;  // (N,256,256)
  for (int n = 0; n < count; ++n) {
    std::vector<float> field(kField * kField);  // (16,16)
    for (float& value : field) value = normal(generator);
    std::vector<float> smooth = pneumo::resize_like_skimage(field.data(), kField, kField, kMapSize, kMapSize, false);
    // Logistic around 1.5 sigma: a few blobs per map (a few % of the image), as a trained
    // network's output would for a positive image.
    for (float& value : smooth) value = 1.0f / (1.0f + std::exp(-6.0f * (value - 1.5f)));
    maps.insert(maps.end(), smooth.begin(), smooth.end());
  }
  return maps;
}

// numpy .npy version 1.0: magic, header length, a Python dict literal padded to 64 bytes.
void write_npy(const std::string& path, const std::vector<float>& values, int count) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(count) + ", " +
                       std::to_string(kMapSize) + ", " + std::to_string(kMapSize) + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::FILE* file = std::fopen(path.c_str(), "wb");
  PNEUMO_REQUIRE(file != nullptr, "cannot write " + path);
  const unsigned char preamble[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  const uint16_t length = static_cast<uint16_t>(header.size());
  std::fwrite(preamble, 1, 8, file);
  std::fwrite(&length, 2, 1, file);  // little-endian on x86-64
  std::fwrite(header.data(), 1, header.size(), file);
  std::fwrite(values.data(), sizeof(float), values.size(), file);
  PNEUMO_REQUIRE(std::fclose(file) == 0, "write to " + path + " failed");
}

void write_boxes(const std::string& path, const std::vector<std::vector<pneumo::ScoredBox>>& boxes) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  PNEUMO_REQUIRE(file != nullptr, "cannot write " + path);
  for (size_t n = 0; n < boxes.size(); ++n)
    for (const pneumo::ScoredBox& b : boxes[n])
      std::fprintf(file, "%zu %.9g %d %d %d %d\n", n, b.confidence, b.box.x, b.box.y, b.box.width, b.box.height);
  PNEUMO_REQUIRE(std::fclose(file) == 0, "write to " + path + " failed");
}

void declare_options(pneumo::cli::Arguments& arguments) {
  arguments.option("count", "N", "32", "probability maps to post-process");
  arguments.option("maps-out", "FILE", "", "write the maps as a .npy (N,256,256) float32 file");
  arguments.option("boxes-out", "FILE", "", "write the CPU boxes, one 'map confidence x y width height' line each");
}

int time_postprocess(const pneumo::cli::Arguments& arguments) {
  const int count = static_cast<int>(arguments.integer("count", 1));
  const std::string maps_out = arguments.text("maps-out"), boxes_out = arguments.text("boxes-out");
  const std::vector<float> maps = make_maps(count);  // (N,256,256)
  const size_t map_values = static_cast<size_t>(kMapSize) * kMapSize;
  if (!maps_out.empty()) write_npy(maps_out, maps, count);
  const pneumo::PostprocessOptions options;  // 1024x1024, threshold 0.5
  pneumo::Tensor batch(pneumo::Device::CPU, {count, kMapSize, kMapSize, 1});
  batch.set_values(maps);

  // CPU, one thread: every map on the calling thread, three passes; median per image.
  std::vector<double> per_image;
  size_t total_boxes = 0;
  for (int pass = 0; pass < 3; ++pass) {
    for (int n = 0; n < count; ++n) {
      auto start = std::chrono::steady_clock::now();
      std::vector<pneumo::ScoredBox> boxes =
          pneumo::boxes_from_probability_map(maps.data() + n * map_values, kMapSize, kMapSize, options);
      per_image.push_back(milliseconds_since(start));
      if (pass == 0) total_boxes += boxes.size();
    }
  }
  const double one_thread = median(per_image);

  // The parts, one thread: the resize alone and the labelling alone (on the thresholded masks).
  std::vector<double> resize_times, label_times;
  std::vector<int32_t> labels(1024 * 1024);
  for (int n = 0; n < count; ++n) {
    auto start = std::chrono::steady_clock::now();
    std::vector<float> resized =
        pneumo::resize_like_skimage(maps.data() + n * map_values, kMapSize, kMapSize, 1024, 1024, false);
    resize_times.push_back(milliseconds_since(start));
    std::vector<uint8_t> mask(resized.size());
    for (size_t i = 0; i < resized.size(); ++i) mask[i] = resized[i] > 0.5f;
    start = std::chrono::steady_clock::now();
    pneumo::label_components_cpu(mask.data(), 1024, 1024, labels.data());
    label_times.push_back(milliseconds_since(start));
  }

  // CPU, all threads: the batch call (images in parallel); median of 5 runs, per image.
  std::vector<double> batch_times;
  std::vector<std::vector<pneumo::ScoredBox>> cpu_boxes;
  for (int run = 0; run < 5; ++run) {
    auto start = std::chrono::steady_clock::now();
    cpu_boxes = pneumo::boxes_from_probability_maps_cpu(batch, options);
    batch_times.push_back(milliseconds_since(start) / count);
  }
  const double all_threads = median(batch_times);
  if (!boxes_out.empty()) write_boxes(boxes_out, cpu_boxes);

  std::printf("post-processing %d maps 256x256 -> 1024x1024 (%zu boxes, %.2f per map)\n", count, total_boxes,
              static_cast<double>(total_boxes) / count);
  std::printf("  resize alone, 1 thread:        median %.3f ms/image\n", median(resize_times));
  std::printf("  labelling alone, 1 thread:     median %.3f ms/image\n", median(label_times));
  std::printf("RESULT cpu_1_thread_ms_per_image %.4f\n", one_thread);
  std::printf("RESULT cpu_%d_threads_ms_per_image %.4f\n", pneumo::cpu_thread_count(), all_threads);

  const std::string reason = pneumo::cuda_unavailable_reason();
  if (!reason.empty()) {
    std::printf("GPU: skipped (%s)\n", reason.c_str());
    return 0;
  }
  pneumo::Tensor device_batch = batch.to(pneumo::Device::CUDA);
  pneumo::Context context(pneumo::Device::CUDA);
  std::vector<double> gpu_times;
  std::vector<std::vector<pneumo::ScoredBox>> gpu_boxes;
  for (int run = 0; run < 11; ++run) {
    auto start = std::chrono::steady_clock::now();
    gpu_boxes = pneumo::boxes_from_probability_maps_cuda(device_batch, options);
    context.synchronize();
    if (run > 0) gpu_times.push_back(milliseconds_since(start) / count);  // run 0 warms up
  }
  size_t mismatched = 0;
  for (int n = 0; n < count; ++n) {
    const auto& a = cpu_boxes[static_cast<size_t>(n)];
    const auto& b = gpu_boxes[static_cast<size_t>(n)];
    bool same = a.size() == b.size();
    for (size_t k = 0; same && k < a.size(); ++k)
      same = a[k].box == b[k].box && std::fabs(a[k].confidence - b[k].confidence) <= 1e-6f;
    mismatched += same ? 0 : 1;
  }
  std::printf("RESULT gpu_batch_%d_ms_per_image %.4f (%s; %zu of %d maps differ from the CPU)\n", count,
              median(gpu_times), pneumo::describe_device(pneumo::Device::CUDA).c_str(), mismatched, count);
  return mismatched == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return pneumo::benchmark::run(
      argc, argv, "bench_postprocess",
      "Post-processing speed: 256x256 probability maps -> resize to 1024x1024, threshold, connected\n"
      "components, boxes, confidences; CPU on one and on all threads, and the GPU on the whole batch.",
      declare_options, time_postprocess);
}
