// Data pipeline speed: DICOM decode (pass a 1024x1024 JPEG-baseline file as argv[1], like the RSNA
// images), skimage-faithful resize 1024 -> 256 (one thread and all threads), box masks, and the
// 256 -> 1024 probability upscale. Prints medians over repeated runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "data/dicom.h"
#include "data/mask.h"
#include "data/resize.h"
#include "engine/cpu_threads.h"

namespace {

double median_ms(int runs, const std::function<void()>& body) {
  body();  // warm-up
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    body();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<float> image(1024 * 1024);  // (H,W)
  for (int r = 0; r < 1024; ++r)
    for (int c = 0; c < 1024; ++c) image[r * 1024 + c] = static_cast<float>((r * 7 + c * 13 + r * c) % 256) / 255.0f;
  std::vector<float> probability(256 * 256);  // (H,W)
  for (int i = 0; i < 256 * 256; ++i) probability[i] = static_cast<float>(i % 1000) / 999.0f;
  volatile float sink = 0.0f;

  if (argc > 1) {
    double ms = median_ms(50, [&] { sink = sink + pneumo::read_dicom(argv[1]).pixels[0]; });
    std::printf("read_dicom %s: median %.2f ms\n", argv[1], ms);
  }
  double one = median_ms(50, [&] {
    sink = sink + pneumo::resize_like_skimage(image.data(), 1024, 1024, 256, 256, false)[0];
  });
  std::printf("resize 1024 -> 256, 1 thread: median %.2f ms\n", one);
  double all = median_ms(50, [&] {
    sink = sink + pneumo::resize_like_skimage(image.data(), 1024, 1024, 256, 256, true)[0];
  });
  std::printf("resize 1024 -> 256, %d threads: median %.2f ms\n", pneumo::cpu_thread_count(), all);
  double up = median_ms(20, [&] {
    sink = sink + pneumo::resize_like_skimage(probability.data(), 256, 256, 1024, 1024, false)[0];
  });
  std::printf("resize 256 -> 1024, 1 thread: median %.2f ms\n", up);
  std::vector<pneumo::Box> boxes = {{264, 152, 213, 379}, {562, 152, 256, 453}};
  double mask = median_ms(50, [&] { sink = sink + pneumo::box_mask(boxes, 1024, 1024, 256, false)[0]; });
  std::printf("box_mask 2 boxes 1024 -> 256, 1 thread: median %.2f ms\n", mask);
  return 0;
}
