// TensorBoard logging of a training run (`pneumo train`): an event file in the run directory
// (apps/event_file.h framing, apps/tensorboard.proto payloads written with the protobuf library
// the ONNX export uses), so `tensorboard --logdir runs/` shows pneumo runs beside Keras or
// PyTorch ones. apps/training_run.cpp writes
//   every step    step/loss, step/bce, step/iou_loss, step/accuracy, step/mean_iou,
//                 step/learning_rate, step/images_per_second (x: the Adam step)
//   every epoch   epoch/loss, epoch/accuracy, epoch/mean_iou, epoch/val_loss, epoch/val_accuracy,
//                 epoch/val_mean_iou, epoch/val_map, epoch/learning_rate, epoch/seconds (x: the
//                 epoch, from 1: history.csv's row) and the image epoch/validation_grid
//   with --inspect-every K, at each recorded step: the histograms weights/<parameter> (after the
//                 step) and gradients/<parameter>
// Every process writes a new file (a resumed run adds one; TensorBoard reads all files of the
// folder in name order), and each event reaches the file in one write (apps/event_file.h).
// A build without protobuf has no TensorBoard logging: open_tensorboard_log returns null.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pneumo::cli {

// TensorBoard's HistogramProto: bucket[i] counts the values in bucket i of `bucket_limit`'s
// right edges.
struct Histogram {
  double min = 0, max = 0, num = 0, sum = 0, sum_squares = 0;
  std::vector<double> bucket_limit, bucket;
};

// The histogram of the finite values among values[0, count): `buckets` equal-width buckets from
// the smallest to the largest value, counted as numpy.histogram(values, bins=buckets) counts them
// (in double precision); bucket_limit holds each bucket's right edge. One bucket when all values
// are equal; no buckets when none is finite.
Histogram make_histogram(const float* values, size_t count, int buckets = 30);

class TensorBoardLog {
 public:
  virtual ~TensorBoardLog() = default;
  // One event at `step` holding a simple_value (float) per (tag, value).
  virtual void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) = 0;
  // One event with a PNG image of width x height pixels and `channels` (1, 3 or 4).
  virtual void image(int64_t step, const std::string& tag, const std::vector<uint8_t>& png, int width, int height,
                     int channels) = 0;
  // One event with a histogram per (tag, histogram).
  virtual void histograms(int64_t step, const std::vector<std::pair<std::string, Histogram>>& values) = 0;
  virtual const std::string& path() const = 0;
};

// Whether this build writes TensorBoard files (it was built with protobuf).
bool tensorboard_available();
// A new event file in `folder` (apps/event_file.h event_file_name), its first record the file
// version; null when !tensorboard_available(). Errors name the file.
std::unique_ptr<TensorBoardLog> open_tensorboard_log(const std::string& folder);

}  // namespace pneumo::cli
