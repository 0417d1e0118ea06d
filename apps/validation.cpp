#include "apps/validation.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <type_traits>

#include "data/presentation/picture.h"
#include "data/evaluation/postprocess.h"
#include "data/presentation/render.h"
#include "engine/check.h"
#include "layers/training_step.h"

namespace pneumo::cli {

std::vector<std::vector<ScoredBox>> boxes_for_batch(const Tensor& probabilities, const std::vector<int>& source_widths,
                                                    const std::vector<int>& source_heights, double threshold) {
  const int64_t count = probabilities.N();
  PostprocessOptions options;
  options.threshold = static_cast<float>(threshold);
  bool uniform = true;
  for (int64_t i = 1; i < count; ++i)
    uniform = uniform && source_widths[i] == source_widths[0] && source_heights[i] == source_heights[0];
  if (uniform && count > 0) {
    options.output_width = source_widths[0];
    options.output_height = source_heights[0];
    return boxes_from_probability_maps(probabilities, options);
  }
  // Images of different sizes: one map at a time on the CPU (copied explicitly to the host).
  const std::vector<float> host = probabilities.to_vector();
  const int64_t height = probabilities.H(), width = probabilities.W();
  std::vector<std::vector<ScoredBox>> boxes(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    options.output_width = source_widths[i];
    options.output_height = source_heights[i];
    boxes[i] = boxes_from_probability_map(host.data() + i * height * width, static_cast<int>(height),
                                          static_cast<int>(width), options);
  }
  return boxes;
}

namespace {

// One line per image: "position count (confidence x y width height)*", confidences in %a so they
// read back exactly.
std::string serialize_boxes(const std::vector<std::pair<int64_t, std::vector<ScoredBox>>>& images) {
  std::string text;
  char field[64];
  for (const auto& [position, boxes] : images) {
    text += std::to_string(position) + " " + std::to_string(boxes.size());
    for (const ScoredBox& box : boxes) {
      std::snprintf(field, sizeof field, " %a %d %d %d %d", static_cast<double>(box.confidence), box.box.x, box.box.y,
                    box.box.width, box.box.height);
      text += field;
    }
    text += "\n";
  }
  return text;
}

void deserialize_boxes(const std::string& text, std::vector<std::vector<ScoredBox>>& boxes_by_position) {
  std::istringstream in(text);
  long long position = 0;
  size_t count = 0;
  while (in >> position >> count) {
    PNEUMO_REQUIRE(position >= 0 && position < static_cast<long long>(boxes_by_position.size()),
                   "validation: gathered boxes name image " + std::to_string(position) + " of " +
                       std::to_string(boxes_by_position.size()));
    std::vector<ScoredBox>& boxes = boxes_by_position[static_cast<size_t>(position)];
    for (size_t k = 0; k < count; ++k) {
      std::string confidence;
      ScoredBox box;
      in >> confidence >> box.box.x >> box.box.y >> box.box.width >> box.box.height;
      box.confidence = static_cast<float>(std::strtod(confidence.c_str(), nullptr));
      boxes.push_back(box);
    }
  }
}

std::vector<float> image_range(const std::vector<float>& values, int64_t first, int64_t count, int64_t per_image) {
  return std::vector<float>(values.begin() + first * per_image, values.begin() + (first + count) * per_image);
}

}  // namespace

ValidationResult validate(Context& context, Network& network, BatchLoader& loader, const LabelSet& labels,
                          const ImageCache& cache, double threshold, Communicator* communicator) {
  SingleProcessCommunicator single_process;
  Communicator& ranks = communicator ? *communicator : single_process;
  const int rank = ranks.rank(), rank_count = ranks.size();
  ValidationResult result;
  const Device device = network.device();
  const int64_t size = network.config().input_size;
  result.image_size = size;
  double loss = 0, accuracy = 0, iou = 0;
  int64_t images = 0;
  loader.start_epoch(0);
  Batch batch;
  std::vector<std::string> ids;
  Tensor image_storage, mask_storage;                                // grow-only device buffers, reused by every batch
  std::vector<std::pair<int64_t, std::vector<ScoredBox>>> my_boxes;  // (position in ids, boxes)
  int64_t first_batch_size = 0;
  while (loader.next(batch)) {
    if (batch.size == 0) continue;
    // This rank's images of the batch: [first, first + count).
    const int64_t first = batch.size * rank / rank_count;
    const int64_t count = batch.size * (rank + 1) / rank_count - first;
    Tensor image_tensor, mask_tensor;
    if (count > 0) {
      image_tensor = reuse_storage(image_storage, device, {count, size, size, 1});
      mask_tensor = reuse_storage(mask_storage, device, {count, size, size, 1});
      if (count == batch.size) {
        image_tensor.set_values(batch.images);
        mask_tensor.set_values(batch.masks);
      } else {
        image_tensor.set_values(image_range(batch.images, first, count, size * size));
        mask_tensor.set_values(image_range(batch.masks, first, count, size * size));
      }
    }
    StepResult step = evaluate_batch(context, network, image_tensor, mask_tensor, ranks, first, batch.size);
    loss += step.loss.loss * batch.size;
    accuracy += step.metrics.accuracy * batch.size;
    iou += step.metrics.mean_iou * batch.size;
    images += batch.size;

    if (count > 0) {
      std::vector<int> widths(static_cast<size_t>(count), 1024), heights(static_cast<size_t>(count), 1024);
      for (int64_t i = 0; i < count; ++i) cache.find(batch.patient_ids[first + i], &widths[i], &heights[i]);
      std::vector<std::vector<ScoredBox>> boxes = boxes_for_batch(network.output(), widths, heights, threshold);
      for (int64_t i = 0; i < count; ++i)
        my_boxes.emplace_back(static_cast<int64_t>(ids.size()) + first + i, std::move(boxes[i]));
    }
    for (int64_t i = 0; i < batch.size; ++i) ids.push_back(batch.patient_ids[i]);
    if (result.images.empty()) {
      first_batch_size = batch.size;
      for (int64_t i = 0; i < batch.size; ++i) {
        const float* first_pixel = batch.images.data() + i * size * size;
        result.images.emplace_back(first_pixel, first_pixel + size * size);
        auto found = labels.boxes.find(batch.patient_ids[i]);
        result.true_boxes.push_back(found == labels.boxes.end() ? std::vector<Box>{} : found->second);
        int width = 1024, height = 1024;
        cache.find(batch.patient_ids[i], &width, &height);
        result.source_sizes.push_back(width);
      }
    }
  }
  if (images > 0) {
    result.loss = loss / images;
    result.accuracy = accuracy / images;
    result.mean_iou = iou / images;
  }
  // The boxes of every image, in validation order, at rank 0.
  std::vector<std::vector<ScoredBox>> boxes_by_position(ids.size());
  if (rank_count == 1) {
    for (auto& [position, boxes] : my_boxes) boxes_by_position[static_cast<size_t>(position)] = std::move(boxes);
  } else {
    const std::vector<std::string> parts = ranks.gather(serialize_boxes(my_boxes), 0);
    for (const std::string& part : parts) deserialize_boxes(part, boxes_by_position);
  }
  if (ranks.is_root()) {
    for (size_t i = 0; i < ids.size(); ++i) {
      result.submission.patient_ids.push_back(ids[i]);
      if (!boxes_by_position[i].empty()) result.submission.predictions[ids[i]] = boxes_by_position[i];
    }
    for (int64_t i = 0; i < first_batch_size; ++i)
      result.predicted_boxes.push_back(boxes_by_position[static_cast<size_t>(i)]);
    result.metric = evaluate_submission(ids, labels, result.submission);
  }
  static_assert(std::is_trivially_copyable<MetricResult>::value, "MetricResult is broadcast as bytes");
  ranks.broadcast(&result.metric, static_cast<int64_t>(sizeof result.metric), 0);
  return result;
}

namespace {
Box scaled(const Box& box, double scale) {
  return Box{static_cast<int>(box.x * scale), static_cast<int>(box.y * scale),
             std::max(1, static_cast<int>(box.width * scale)), std::max(1, static_cast<int>(box.height * scale))};
}
}  // namespace

void write_validation_grid(const std::string& path, const ValidationResult& result) {
  if (result.images.empty()) return;
  validation_grid(result).save_png(path);
}

Picture validation_grid(const ValidationResult& result) {
  if (result.images.empty()) throw Error("validation_grid: no validation images to draw");
  const int tile = 256, gap = 4, columns = 8;
  const int count = static_cast<int>(result.images.size());
  const int rows = (count + columns - 1) / columns;
  const int header = Picture::text_height(2) + 12;
  Picture grid(columns * (tile + gap) + gap, header + rows * (tile + gap) + gap, Color{24, 24, 24});
  grid.draw_text(gap, 6, "validation batch: true boxes", kLabelBoxColor, 2);
  grid.draw_text(gap + Picture::text_width("validation batch: true boxes ", 2), 6, "predicted boxes",
                 kPredictedBoxColor, 2);
  for (int i = 0; i < count; ++i) {
    const int size = static_cast<int>(result.image_size);
    Image image;
    image.width = image.height = size;
    image.pixels = result.images[i];
    const double scale = static_cast<double>(size) / result.source_sizes[i];
    std::vector<Box> truth;
    for (const Box& box : result.true_boxes[i]) truth.push_back(scaled(box, scale));
    std::vector<ScoredBox> predicted;
    for (const ScoredBox& box : result.predicted_boxes[i])
      predicted.push_back({box.confidence, scaled(box.box, scale)});
    Picture picture = render_image(image, tile, truth, predicted);
    const int x0 = gap + (i % columns) * (tile + gap), y0 = header + gap + (i / columns) * (tile + gap);
    for (int y = 0; y < picture.height(); ++y)
      for (int x = 0; x < picture.width(); ++x) grid.set(x0 + x, y0 + y, picture.get(x, y));
  }
  return grid;
}

}  // namespace pneumo::cli
