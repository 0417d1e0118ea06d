#include "apps/tensorboard_log.h"

#include <unistd.h>

#include <chrono>
#include <cmath>

#include "apps/event_file.h"
#include "engine/check.h"

#ifdef PNEUMO_HAVE_TENSORBOARD
#include "apps/tensorboard.pb.h"  // generated from apps/tensorboard.proto (apps/CMakeLists.txt)
#endif

namespace pneumo::cli {

Histogram make_histogram(const float* values, size_t count, int buckets) {
  if (buckets < 1) throw Error("make_histogram: buckets must be >= 1, got " + std::to_string(buckets));
  Histogram histogram;
  bool any = false;
  for (size_t i = 0; i < count; ++i) {
    const double value = values[i];
    if (!std::isfinite(value)) continue;
    if (!any || value < histogram.min) histogram.min = value;
    if (!any || value > histogram.max) histogram.max = value;
    any = true;
    histogram.num += 1;
    histogram.sum += value;
    histogram.sum_squares += value * value;
  }
  if (!any) return histogram;
  const double low = histogram.min, high = histogram.max;
  if (!(high > low)) {  // every value equal: one bucket
    histogram.bucket_limit = {high};
    histogram.bucket = {histogram.num};
    return histogram;
  }
  // numpy.histogram's equal-width path: edges = linspace(low, high, buckets + 1) (i * step + low,
  // the last exactly high); index = int((value - low) * (buckets / (high - low))), moved down or up
  // one bucket where the rounding put a value on the wrong side of an edge.
  std::vector<double> edges(static_cast<size_t>(buckets) + 1);
  const double step = (high - low) / buckets;
  for (int i = 0; i < buckets; ++i) edges[i] = i * step + low;
  edges[buckets] = high;
  const double norm = buckets / (high - low);
  std::vector<double> counts(static_cast<size_t>(buckets), 0.0);
  for (size_t i = 0; i < count; ++i) {
    const double value = values[i];
    if (!std::isfinite(value)) continue;
    int index = static_cast<int>((value - low) * norm);
    if (index >= buckets) index = buckets - 1;
    if (value < edges[index]) --index;
    if (index != buckets - 1 && value >= edges[index + 1]) ++index;
    counts[index] += 1;
  }
  histogram.bucket_limit.assign(edges.begin() + 1, edges.end());
  histogram.bucket = counts;
  return histogram;
}

#ifdef PNEUMO_HAVE_TENSORBOARD

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "host";
  return name;
}

class ProtobufTensorBoardLog : public TensorBoardLog {
 public:
  explicit ProtobufTensorBoardLog(const std::string& path) : file_(path) {
    tensorboard::Event event;
    event.set_wall_time(now_seconds());
    event.set_file_version("brain.Event:2");
    write(event);
  }

  void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) override {
    tensorboard::Event event = start(step);
    for (const auto& [tag, value] : values) {
      tensorboard::Summary::Value* entry = event.mutable_summary()->add_value();
      entry->set_tag(tag);
      entry->set_simple_value(static_cast<float>(value));
    }
    write(event);
  }

  void image(int64_t step, const std::string& tag, const std::vector<uint8_t>& png, int width, int height,
             int channels) override {
    tensorboard::Event event = start(step);
    tensorboard::Summary::Value* entry = event.mutable_summary()->add_value();
    entry->set_tag(tag);
    tensorboard::Summary::Image* image = entry->mutable_image();
    image->set_width(width);
    image->set_height(height);
    image->set_colorspace(channels);
    image->set_encoded_image_string(png.data(), png.size());
    write(event);
  }

  void histograms(int64_t step, const std::vector<std::pair<std::string, Histogram>>& values) override {
    tensorboard::Event event = start(step);
    for (const auto& [tag, histogram] : values) {
      tensorboard::Summary::Value* entry = event.mutable_summary()->add_value();
      entry->set_tag(tag);
      tensorboard::HistogramProto* proto = entry->mutable_histo();
      proto->set_min(histogram.min);
      proto->set_max(histogram.max);
      proto->set_num(histogram.num);
      proto->set_sum(histogram.sum);
      proto->set_sum_squares(histogram.sum_squares);
      for (double limit : histogram.bucket_limit) proto->add_bucket_limit(limit);
      for (double bucket : histogram.bucket) proto->add_bucket(bucket);
    }
    write(event);
  }

  const std::string& path() const override { return file_.path(); }

 private:
  static tensorboard::Event start(int64_t step) {
    tensorboard::Event event;
    event.set_wall_time(now_seconds());
    event.set_step(step);
    return event;
  }
  void write(const tensorboard::Event& event) {
    std::string payload;
    if (!event.SerializeToString(&payload)) throw Error(file_.path() + ": cannot serialize a TensorBoard event");
    file_.append(payload);
  }

  EventFileWriter file_;
};

}  // namespace

bool tensorboard_available() { return true; }

std::unique_ptr<TensorBoardLog> open_tensorboard_log(const std::string& folder) {
  const int64_t seconds = static_cast<int64_t>(std::floor(now_seconds()));
  return std::make_unique<ProtobufTensorBoardLog>(folder + "/" + event_file_name(seconds, host_name(), getpid()));
}

#else  // a build without protobuf: no TensorBoard files

bool tensorboard_available() { return false; }

std::unique_ptr<TensorBoardLog> open_tensorboard_log(const std::string&) { return nullptr; }

#endif

}  // namespace pneumo::cli
