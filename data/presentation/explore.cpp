// explore_dataset: label statistics, then the notebook's four figures as PNG charts.
#include "data/presentation/explore.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include <sys/stat.h>

#include "data/presentation/chart.h"
#include "data/input/dataset.h"
#include "data/input/dicom.h"
#include "data/input/labels.h"
#include "engine/check.h"

namespace pneumo {

namespace {

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

void make_directories(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = slash == std::string::npos ? path : path.substr(0, slash);
    if (!prefix.empty() && ::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
      throw Error(prefix + ": cannot create directory (" + std::strerror(errno) + ")");
    if (slash == std::string::npos) break;
  }
}

// Sum of box masks over the frame (heatmap[y:y+h, x:x+w] += 1): +1/-1 at the corners of each
// box, then a 2-D running sum.
std::vector<double> box_heatmap(const LabelSet& labels, int width, int height) {
  std::vector<double> grid(static_cast<size_t>(width + 1) * (height + 1), 0.0);  // (H+1,W+1)
  auto at = [&](int y, int x) -> double& { return grid[static_cast<size_t>(y) * (width + 1) + x]; };
  for (const auto& entry : labels.boxes)
    for (const Box& box : entry.second) {
      const int x0 = std::clamp(box.x, 0, width), x1 = std::clamp(box.x + box.width, 0, width);
      const int y0 = std::clamp(box.y, 0, height), y1 = std::clamp(box.y + box.height, 0, height);
      at(y0, x0) += 1, at(y0, x1) -= 1, at(y1, x0) -= 1, at(y1, x1) += 1;
    }
  std::vector<double> heatmap(static_cast<size_t>(width) * height);  // (H,W)
  std::vector<double> column(width + 1, 0.0);
  for (int y = 0; y < height; ++y) {
    double row_sum = 0;
    for (int x = 0; x < width; ++x) {
      column[x] += at(y, x);
      row_sum += column[x];
      heatmap[static_cast<size_t>(y) * width + x] = row_sum;
    }
  }
  return heatmap;
}

}  // namespace

ExploreSummary explore_dataset(const std::string& dataset_dir, const std::string& output_dir, std::FILE* out) {
  const DatasetLayout layout = find_dataset(dataset_dir);
  const LabelSet labels = read_labels(layout.train_labels);
  const std::vector<std::string> files = list_dicom_ids(layout.train_images);
  ExploreSummary summary;
  summary.train_images = static_cast<int64_t>(files.size());
  summary.labelled_images = labels.image_count();
  summary.label_rows = labels.row_count;
  summary.positive_images = labels.positive_count();
  summary.boxes = labels.box_count();
  const std::unordered_set<std::string> file_set(files.begin(), files.end());
  const std::unordered_set<std::string> label_set(labels.patient_ids.begin(), labels.patient_ids.end());
  for (const std::string& id : files) summary.images_without_labels += label_set.count(id) == 0;
  for (const std::string& id : labels.patient_ids) summary.labels_without_images += file_set.count(id) == 0;
  if (!layout.test_images.empty())
    summary.test_images = static_cast<int64_t>(list_dicom_ids(layout.test_images).size());
  if (!layout.class_info.empty()) {
    const ClassInfo classes = read_class_info(layout.class_info);
    for (const auto& entry : classes.classes) summary.classes[image_class_name(entry.second)] += 1;
  }
  // The boxes refer to the images' pixels: 1024 x 1024 for RSNA; read one image to be sure.
  if (!files.empty()) {
    try {
      const Image first = read_dicom(dicom_path(layout.train_images, files.front()));
      summary.frame_width = first.width, summary.frame_height = first.height;
    } catch (const Error& error) {
      std::fprintf(out, "note: %s; assuming a 1024x1024 frame\n", error.what());
    }
  }

  std::vector<double> widths, heights, per_image;
  for (const auto& entry : labels.boxes) {
    summary.boxes_per_image[static_cast<int>(entry.second.size())] += 1;
    per_image.push_back(static_cast<double>(entry.second.size()));
    for (const Box& box : entry.second) {
      widths.push_back(box.width);
      heights.push_back(box.height);
    }
  }
  if (!widths.empty()) {
    summary.min_box_width = static_cast<int>(*std::min_element(widths.begin(), widths.end()));
    summary.max_box_width = static_cast<int>(*std::max_element(widths.begin(), widths.end()));
    summary.min_box_height = static_cast<int>(*std::min_element(heights.begin(), heights.end()));
    summary.max_box_height = static_cast<int>(*std::max_element(heights.begin(), heights.end()));
    for (size_t i = 0; i < widths.size(); ++i) summary.mean_box_width += widths[i] / widths.size();
    for (size_t i = 0; i < heights.size(); ++i) summary.mean_box_height += heights[i] / heights.size();
    summary.median_box_width = median(widths);
    summary.median_box_height = median(heights);
  }

  std::fprintf(out, "Total train images: %lld\n", static_cast<long long>(summary.train_images));
  std::fprintf(out, "Images with pneumonia: %lld\n", static_cast<long long>(summary.positive_images));
  std::fprintf(out, "Pneumonia per image:");
  for (const auto& [count, images] : summary.boxes_per_image)
    std::fprintf(out, " %d box%s: %lld;", count, count == 1 ? "" : "es", static_cast<long long>(images));
  std::fprintf(out, "\n");
  if (!widths.empty()) {
    std::fprintf(out, "Minimum pneumonia height: %d\n", summary.min_box_height);
    std::fprintf(out, "Minimum pneumonia width:  %d\n", summary.min_box_width);
    std::fprintf(out, "Box width:  median %.0f, mean %.1f, max %d\n", summary.median_box_width, summary.mean_box_width,
                 summary.max_box_width);
    std::fprintf(out, "Box height: median %.0f, mean %.1f, max %d\n", summary.median_box_height,
                 summary.mean_box_height, summary.max_box_height);
  }
  std::fprintf(out, "Label rows: %lld, labelled images: %lld (%lld negative), boxes: %lld\n",
               static_cast<long long>(summary.label_rows), static_cast<long long>(summary.labelled_images),
               static_cast<long long>(summary.labelled_images - summary.positive_images),
               static_cast<long long>(summary.boxes));
  if (summary.labelled_images > 0)
    std::fprintf(out, "Positive share: %.1f%%\n", 100.0 * summary.positive_images / summary.labelled_images);
  for (const auto& [name, images] : summary.classes)
    std::fprintf(out, "Class %s: %lld images\n", name.c_str(), static_cast<long long>(images));
  if (summary.images_without_labels || summary.labels_without_images)
    std::fprintf(out, "Mismatch: %lld image files without labels, %lld labelled ids without a file\n",
                 static_cast<long long>(summary.images_without_labels),
                 static_cast<long long>(summary.labels_without_images));
  std::fprintf(out, "Test images: %lld\n", static_cast<long long>(summary.test_images));
  std::fprintf(out, "Image size: %dx%d\n", summary.frame_width, summary.frame_height);

  make_directories(output_dir);
  auto save = [&](const Picture& picture, const std::string& name) {
    const std::string path = output_dir + "/" + name;
    picture.save_png(path);
    summary.charts.push_back(path);
  };
  {
    HistogramChart chart;
    chart.title = "Pneumonia per image";
    chart.x_label = "boxes in the image";
    chart.y_label = "positive images";
    const int most = summary.boxes_per_image.empty() ? 1 : summary.boxes_per_image.rbegin()->first;
    for (int k = 0; k <= most; ++k) chart.bin_edges.push_back(k + 0.5);
    chart.counts = histogram_counts(per_image, chart.bin_edges);
    for (int k = 1; k <= most; ++k) chart.x_ticks.push_back(k);
    save(draw_histogram(chart), "boxes_per_image.png");
  }
  {
    HeatmapChart chart;
    chart.title = "Pneumonia location heatmap";
    chart.x_label = "x (pixels)";
    chart.y_label = "y (pixels)";
    chart.value_label = "boxes covering the pixel";
    chart.columns = summary.frame_width;
    chart.rows = summary.frame_height;
    chart.values = box_heatmap(labels, chart.columns, chart.rows);
    chart.x_max = chart.columns;
    chart.y_max = chart.rows;
    save(draw_heatmap(chart), "box_location_heatmap.png");
  }
  const std::vector<double> bins = linspace(0, 1000, 50);
  {
    HistogramChart chart;
    chart.title = "Pneumonia height lengths";
    chart.x_label = "box height (pixels)";
    chart.y_label = "boxes";
    chart.bin_edges = bins;
    chart.counts = histogram_counts(heights, bins);
    save(draw_histogram(chart), "box_height_histogram.png");
  }
  {
    HistogramChart chart;
    chart.title = "Pneumonia width lengths";
    chart.x_label = "box width (pixels)";
    chart.y_label = "boxes";
    chart.bin_edges = bins;
    chart.counts = histogram_counts(widths, bins);
    save(draw_histogram(chart), "box_width_histogram.png");
  }
  for (const std::string& path : summary.charts) std::fprintf(out, "wrote %s\n", path.c_str());
  return summary;
}

}  // namespace pneumo
