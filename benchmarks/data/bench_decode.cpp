// Data pipeline speed: DICOM decode (pass 1024x1024 JPEG-baseline files as arguments, like the RSNA
// images) through the libjpeg-turbo path and through DCMTK's decoder, decode + resize to 256 (the
// per-image data work of training), skimage-faithful resize 1024 -> 256 (one thread and all
// threads), box masks, and the 256 -> 1024 probability upscale. Prints medians over repeated runs;
// for the single-threaded DICOM work also the median CPU time of the calling thread, which is what
// "images/s per core" divides by (the wall time suffers when the machine is shared).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <vector>

#include "benchmarks/support/benchmark_main.h"
#include "data/input/dicom.h"
#include "data/input/mask.h"
#include "data/input/resize.h"
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

double thread_cpu_ms() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return now.tv_sec * 1e3 + now.tv_nsec * 1e-6;
}

struct Timing {
  double wall_ms, cpu_ms;  // medians
};

// Median wall time and median CPU time of this thread (body must not hand work to other threads).
Timing median_wall_and_cpu_ms(int runs, const std::function<void()>& body) {
  body();  // warm-up
  std::vector<double> wall, cpu;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    const double cpu_start = thread_cpu_ms();
    body();
    cpu.push_back(thread_cpu_ms() - cpu_start);
    wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

void declare_options(pneumo::cli::Arguments& arguments) {
  arguments.positionals("FILES", "1024x1024 JPEG-baseline DICOMs to decode (none: only the resize and mask timings)", 0,
                        1u << 20);
}

int time_decoding(const pneumo::cli::Arguments& arguments) {
  std::vector<float> image(1024 * 1024);  // (H,W)
  for (int r = 0; r < 1024; ++r)
    for (int c = 0; c < 1024; ++c) image[r * 1024 + c] = static_cast<float>((r * 7 + c * 13 + r * c) % 256) / 255.0f;
  std::vector<float> probability(256 * 256);  // (H,W)
  for (int i = 0; i < 256 * 256; ++i) probability[i] = static_cast<float>(i % 1000) / 999.0f;
  volatile float sink = 0.0f;

  for (const std::string& file : arguments.positional_values()) {
    const char* path = file.c_str();
    std::printf("%s\n", path);
    for (pneumo::JpegDecoder decoder : {pneumo::JpegDecoder::libjpeg_turbo, pneumo::JpegDecoder::dcmtk}) {
      const char* name = decoder == pneumo::JpegDecoder::dcmtk ? "DCMTK        " : "libjpeg-turbo";
      Timing decode = median_wall_and_cpu_ms(50, [&] { sink = sink + pneumo::read_dicom(path, decoder).pixels[0]; });
      Timing both = median_wall_and_cpu_ms(50, [&] {
        pneumo::Image decoded = pneumo::read_dicom(path, decoder);
        sink = sink +
               pneumo::resize_like_skimage(decoded.pixels.data(), decoded.height, decoded.width, 256, 256, false)[0];
      });
      std::printf(
          "  %s read_dicom: median %.2f ms (cpu %.2f ms); read_dicom + resize to 256, 1 thread: "
          "median %.2f ms (cpu %.2f ms) = %.0f images/s per core\n",
          name, decode.wall_ms, decode.cpu_ms, both.wall_ms, both.cpu_ms, 1000.0 / both.cpu_ms);
    }
  }
  double one =
      median_ms(50, [&] { sink = sink + pneumo::resize_like_skimage(image.data(), 1024, 1024, 256, 256, false)[0]; });
  std::printf("resize 1024 -> 256, 1 thread: median %.2f ms\n", one);
  double all =
      median_ms(50, [&] { sink = sink + pneumo::resize_like_skimage(image.data(), 1024, 1024, 256, 256, true)[0]; });
  std::printf("resize 1024 -> 256, %d threads: median %.2f ms\n", pneumo::cpu_thread_count(), all);
  double up = median_ms(
      20, [&] { sink = sink + pneumo::resize_like_skimage(probability.data(), 256, 256, 1024, 1024, false)[0]; });
  std::printf("resize 256 -> 1024, 1 thread: median %.2f ms\n", up);
  std::vector<pneumo::Box> boxes = {{264, 152, 213, 379}, {562, 152, 256, 453}};
  double mask = median_ms(50, [&] { sink = sink + pneumo::box_mask(boxes, 1024, 1024, 256, false)[0]; });
  std::printf("box_mask 2 boxes 1024 -> 256, 1 thread: median %.2f ms\n", mask);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return pneumo::benchmark::run(
      argc, argv, "bench_decode",
      "DICOM decode (libjpeg-turbo and DCMTK paths) and decode+resize to 256 per core for each FILE, then\n"
      "the skimage-faithful resize 1024 -> 256 (one thread and all threads), box masks and the 256 -> 1024\n"
      "upscale, as medians.",
      declare_options, time_decoding);
}
