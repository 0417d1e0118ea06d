#include "apps/validation.h"

#include <algorithm>

#include "data/picture.h"
#include "data/postprocess.h"
#include "data/render.h"
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

ValidationResult validate(Context& context, Network& network, BatchLoader& loader, const LabelSet& labels,
                          const ImageCache& cache, double threshold) {
  ValidationResult result;
  const Device device = network.device();
  const int64_t size = network.config().input_size;
  result.image_size = size;
  double loss = 0, accuracy = 0, iou = 0;
  int64_t images = 0;
  loader.start_epoch(0);
  Batch batch;
  std::vector<std::string> ids;
  Tensor image_storage, mask_storage;  // grow-only device buffers, reused by every batch
  while (loader.next(batch)) {
    if (batch.size == 0) continue;
    Tensor image_tensor = reuse_storage(image_storage, device, {batch.size, size, size, 1});
    Tensor mask_tensor = reuse_storage(mask_storage, device, {batch.size, size, size, 1});
    image_tensor.set_values(batch.images);
    mask_tensor.set_values(batch.masks);
    StepResult step = evaluate_batch(context, network, image_tensor, mask_tensor);
    loss += step.loss.loss * batch.size;
    accuracy += step.metrics.accuracy * batch.size;
    iou += step.metrics.mean_iou * batch.size;
    images += batch.size;

    std::vector<int> widths(static_cast<size_t>(batch.size), 1024), heights(static_cast<size_t>(batch.size), 1024);
    for (int64_t i = 0; i < batch.size; ++i) cache.find(batch.patient_ids[i], &widths[i], &heights[i]);
    std::vector<std::vector<ScoredBox>> boxes = boxes_for_batch(network.output(), widths, heights, threshold);
    for (int64_t i = 0; i < batch.size; ++i) {
      const std::string& id = batch.patient_ids[i];
      ids.push_back(id);
      result.submission.patient_ids.push_back(id);
      if (!boxes[i].empty()) result.submission.predictions[id] = boxes[i];
    }
    if (result.images.empty()) {
      for (int64_t i = 0; i < batch.size; ++i) {
        const float* first = batch.images.data() + i * size * size;
        result.images.emplace_back(first, first + size * size);
        auto found = labels.boxes.find(batch.patient_ids[i]);
        result.true_boxes.push_back(found == labels.boxes.end() ? std::vector<Box>{} : found->second);
        result.predicted_boxes.push_back(boxes[i]);
        result.source_sizes.push_back(widths[i]);
      }
    }
  }
  if (images > 0) {
    result.loss = loss / images;
    result.accuracy = accuracy / images;
    result.mean_iou = iou / images;
  }
  result.metric = evaluate_submission(ids, labels, result.submission);
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
    for (const ScoredBox& box : result.predicted_boxes[i]) predicted.push_back({box.confidence, scaled(box.box, scale)});
    Picture picture = render_image(image, tile, truth, predicted);
    const int x0 = gap + (i % columns) * (tile + gap), y0 = header + gap + (i / columns) * (tile + gap);
    for (int y = 0; y < picture.height(); ++y)
      for (int x = 0; x < picture.width(); ++x) grid.set(x0 + x, y0 + y, picture.get(x, y));
  }
  grid.save_png(path);
}

}  // namespace pneumo::cli
