// The data side on numpy arrays: DICOM reading (data/input/dicom.h), the dataset layout, labels,
// split, image cache and batch loader that `pneumo train` uses (data/input/), synthetic data, and
// the evaluation: probability map -> boxes (data/evaluation/postprocess.h) and the competition
// metric (data/evaluation/metric.h). Boxes are (x, y, width, height) tuples in the image's
// pixels; scored boxes (confidence, x, y, width, height).
#include <pybind11/stl.h>

#include "apps/python/arrays.h"
#include "apps/python/bindings.h"
#include "data/evaluation/metric.h"
#include "data/evaluation/postprocess.h"
#include "data/input/cache.h"
#include "data/input/dataset.h"
#include "data/input/dicom.h"
#include "data/input/labels.h"
#include "data/input/loader.h"
#include "data/input/mask.h"
#include "data/input/synth.h"
#include "engine/check.h"

namespace pneumo::python {

namespace {

using BoxTuple = std::tuple<int, int, int, int>;
using ScoredTuple = std::tuple<float, int, int, int, int>;

BoxTuple box_tuple(const Box& box) { return {box.x, box.y, box.width, box.height}; }
Box box_of(const BoxTuple& tuple) {
  return {std::get<0>(tuple), std::get<1>(tuple), std::get<2>(tuple), std::get<3>(tuple)};
}
ScoredBox scored_of(const ScoredTuple& tuple) {
  return {std::get<0>(tuple), {std::get<1>(tuple), std::get<2>(tuple), std::get<3>(tuple), std::get<4>(tuple)}};
}
std::vector<ScoredTuple> scored_tuples(const std::vector<ScoredBox>& boxes) {
  std::vector<ScoredTuple> tuples;
  tuples.reserve(boxes.size());
  for (const ScoredBox& scored : boxes)
    tuples.emplace_back(scored.confidence, scored.box.x, scored.box.y, scored.box.width, scored.box.height);
  return tuples;
}

LoaderMode loader_mode(const std::string& name) {
  if (name == "train") return LoaderMode::Train;
  if (name == "evaluate") return LoaderMode::Evaluate;
  if (name == "predict") return LoaderMode::Predict;
  throw Error("BatchLoader mode: expected 'train', 'evaluate' or 'predict', got " + quoted(name, 40));
}

}  // namespace

void bind_data(py::module_& module) {
  // ---- images ------------------------------------------------------------------------------
  module.def(
      "read_dicom",
      [](const std::string& path) {
        Image image = read_dicom(path);
        return array_from_vector(std::move(image.pixels), {image.height, image.width});
      },
      py::arg("path"), "A greyscale DICOM -> float32 (H,W) in [0, 1] (data/input/decoding.md).");
  module.def(
      "load_resized_image",
      [](const std::string& path, int image_size) {
        ResizedImage image = load_resized_image(path, image_size);
        return py::make_tuple(array_from_vector(std::move(image.pixels), {image_size, image_size}),
                              py::make_tuple(image.source_width, image.source_height));
      },
      py::arg("path"), py::arg("image_size"),
      "read_dicom + the skimage-like resize the training sees -> ((S,S) array, (source width, source height)).");
  module.def(
      "box_mask",
      [](const std::vector<BoxTuple>& boxes, int height, int width, int size) {
        std::vector<Box> converted;
        converted.reserve(boxes.size());
        for (const BoxTuple& box : boxes) converted.push_back(box_of(box));
        return array_from_vector(box_mask(converted, height, width, size), {size, size});
      },
      py::arg("boxes"), py::arg("height"), py::arg("width"), py::arg("size"),
      "The 0/1 training mask (size,size) of boxes on a (height,width) image.");
  module.def(
      "write_synthetic_dataset",
      [](const std::string& out_dir, int train_images, int test_images, int image_size, uint64_t seed) {
        SynthConfig config;
        config.out_dir = out_dir;
        config.train_images = train_images;
        config.test_images = test_images;
        config.image_size = image_size;
        config.seed = seed;
        write_synthetic_dataset(config);
      },
      py::arg("out_dir"), py::arg("train_images"), py::arg("test_images"), py::arg("image_size") = 1024,
      py::arg("seed") = 0, "A synthetic dataset in the RSNA layout, as `pneumo synth` writes it.");

  // ---- the dataset, labels and split ----------------------------------------------------------
  module.def(
      "find_dataset",
      [](const std::string& root) {
        const DatasetLayout layout = find_dataset(root);
        py::dict result;
        result["root"] = layout.root;
        result["train_labels"] = layout.train_labels;
        result["class_info"] = layout.class_info;
        result["train_images"] = layout.train_images;
        result["test_images"] = layout.test_images;
        result["sample_submission"] = layout.sample_submission;
        result["test_labels"] = layout.test_labels;
        return result;
      },
      py::arg("root"), "The files of a dataset folder (the Kaggle download or `pneumo synth`'s).");
  module.def("list_dicom_ids", &list_dicom_ids, py::arg("directory"), "The patient ids of a folder's DICOMs, sorted.");
  module.def("dicom_path", &dicom_path, py::arg("directory"), py::arg("patient_id"));
  py::class_<LabelSet>(module, "Labels", "A train-labels CSV (data/input/labels.h).")
      .def_readonly("patient_ids", &LabelSet::patient_ids, "Every image, in order of first appearance.")
      .def_property_readonly("positive_count", &LabelSet::positive_count)
      .def_property_readonly("box_count", &LabelSet::box_count)
      .def(
          "boxes",
          [](const LabelSet& labels, const std::string& patient_id) {
            std::vector<BoxTuple> boxes;
            for (const Box& box : labels.boxes_for(patient_id)) boxes.push_back(box_tuple(box));
            return boxes;
          },
          py::arg("patient_id"), "An image's boxes (x, y, width, height); [] for a negative image.");
  module.def("read_labels", &read_labels, py::arg("path"));
  module.def("validation_size", &validation_size, py::arg("total"), py::arg("validation_count"),
             py::arg("validation_fraction") = 0.1);
  module.def(
      "split_patients",
      [](const std::vector<std::string>& ids, int64_t validation_count, uint64_t seed) {
        const Split split = split_patients(ids, validation_count, seed);
        return py::make_tuple(split.train, split.validation);
      },
      py::arg("patient_ids"), py::arg("validation_count"), py::arg("seed"),
      "(train ids, validation ids) as `pneumo train --seed` splits them.");

  // ---- the cache and the loader ---------------------------------------------------------------
  py::class_<ImageCache, std::unique_ptr<ImageCache>>(module, "ImageCache",
                                                      "The memory-mapped cache of resized images (data/input/cache.h).")
      .def_static(
          "open_or_build",
          [](const std::string& path, const std::string& image_dir, int image_size) {
            return std::make_unique<ImageCache>(ImageCache::open_or_build(path, image_dir, image_size, false));
          },
          py::arg("path"), py::arg("image_dir"), py::arg("image_size"))
      .def_property_readonly("image_count", &ImageCache::image_count)
      .def_property_readonly("path", &ImageCache::path)
      .def(
          "image",
          [](const py::object& self, const std::string& patient_id) {
            const ImageCache& cache = self.cast<const ImageCache&>();
            const float* pixels = cache.find(patient_id);
            if (!pixels) throw Error(cache.path() + ": no image " + quoted(patient_id, 80));
            const int size = cache.image_size();
            return array_view(Tensor::view(const_cast<float*>(pixels), Device::CPU, {size, size}), self, false);
          },
          py::arg("patient_id"), "An image (S,S), a read-only view of the mapped file.");
  module.def("default_cache_path", &default_cache_path, py::arg("cache_dir"), py::arg("image_dir"),
             py::arg("image_size"));
  py::class_<BatchLoader, std::unique_ptr<BatchLoader>>(
      module, "BatchLoader",
      "Batches (N,S,S,1) of images and masks from background threads, in an order set by the seed and the "
      "epoch alone (data/input/loader.h).")
      .def(py::init([](const std::vector<std::string>& ids, const LabelSet* labels, const std::string& mode,
                       const std::string& image_dir, const ImageCache* cache, int image_size, int batch_size,
                       int workers, uint64_t seed, bool flip) {
             LoaderConfig config;
             config.image_dir = image_dir;
             config.cache = cache;
             config.image_size = image_size;
             config.batch_size = batch_size;
             config.workers = loader_workers(workers);
             config.seed = seed;
             config.flip = flip;
             return std::make_unique<BatchLoader>(ids, labels, loader_mode(mode), config);
           }),
           py::arg("patient_ids"), py::arg("labels"), py::arg("mode"), py::arg("image_dir"), py::arg("cache") = nullptr,
           py::arg("image_size") = 256, py::arg("batch_size") = 32, py::arg("workers") = 4, py::arg("seed") = 0,
           py::arg("flip") = true, py::keep_alive<1, 3>(), py::keep_alive<1, 6>())
      .def_property_readonly("batches_per_epoch", &BatchLoader::batches_per_epoch)
      .def("start_epoch", &BatchLoader::start_epoch, py::arg("epoch"))
      .def(
          "next",
          [](BatchLoader& loader) -> py::object {
            Batch batch;
            bool more = false;
            {
              py::gil_scoped_release release;  // the workers never touch Python
              more = loader.next(batch);
            }
            if (!more) return py::none();
            const Shape shape = {batch.size, batch.image_size, batch.image_size, 1};
            py::dict result;
            result["patient_ids"] = batch.patient_ids;
            result["images"] = array_from_vector(std::move(batch.images), shape);
            result["masks"] = batch.masks.empty() ? py::object(py::none())
                                                  : py::object(array_from_vector(std::move(batch.masks), shape));
            return result;
          },
          "The next batch of the epoch as {patient_ids, images, masks}, or None at its end.");

  // ---- evaluation ------------------------------------------------------------------------------
  module.def(
      "boxes_from_probability_map",
      [](const py::array& probabilities, float threshold, int output_height, int output_width) {
        const Tensor map = tensor_view(probabilities, "probabilities", -1);
        const bool single = map.rank() == 2 || (map.rank() == 3 && map.dim(2) == 1);
        if (!single)
          throw Error("probabilities: expected one map (H,W) or (H,W,1), got shape " + shape_string(map.shape()));
        PostprocessOptions options;
        options.threshold = threshold;
        options.output_height = output_height;
        options.output_width = output_width;
        return scored_tuples(boxes_from_probability_map(map.data(), static_cast<int>(map.dim(0)),
                                                        static_cast<int>(map.dim(1)), options));
      },
      py::arg("probabilities"), py::arg("threshold") = 0.5f, py::arg("output_height") = 1024,
      py::arg("output_width") = 1024,
      "The notebook's post-processing: resize, threshold, connected components -> [(confidence, x, y, w, h)].");
  module.def(
      "box_iou", [](const BoxTuple& a, const BoxTuple& b) { return box_iou(box_of(a), box_of(b)); }, py::arg("a"),
      py::arg("b"));
  module.def(
      "score_image",
      [](const std::vector<BoxTuple>& truth, const std::vector<ScoredTuple>& predictions) -> py::object {
        std::vector<Box> truth_boxes;
        truth_boxes.reserve(truth.size());
        for (const BoxTuple& box : truth) truth_boxes.push_back(box_of(box));
        std::vector<ScoredBox> predicted;
        predicted.reserve(predictions.size());
        for (const ScoredTuple& box : predictions) predicted.push_back(scored_of(box));
        const std::optional<ImageScore> score = score_image(truth_boxes, predicted);
        if (!score) return py::none();
        return py::cast(score->average);
      },
      py::arg("truth"), py::arg("predictions"),
      "One image's competition score (mean over IoU thresholds 0.40..0.75), None when it has neither truth nor "
      "predictions.");
  module.def(
      "mean_average_precision",
      [](const LabelSet& truth, const std::map<std::string, std::vector<ScoredTuple>>& predictions,
         const std::vector<std::string>& patient_ids) {
        Submission submission;
        for (const auto& [id, boxes] : predictions) {
          submission.patient_ids.push_back(id);
          for (const ScoredTuple& box : boxes) submission.predictions[id].push_back(scored_of(box));
        }
        const MetricResult result = evaluate_submission(patient_ids, truth, submission);
        py::dict values;
        values["map"] = result.mean_average_precision;
        values["per_threshold"] = std::vector<double>(result.per_threshold.begin(), result.per_threshold.end());
        values["images_scored"] = result.images_scored;
        values["images_skipped"] = result.images_skipped;
        return values;
      },
      py::arg("truth"), py::arg("predictions"), py::arg("patient_ids"),
      "The competition metric over `patient_ids`: truth from Labels, predictions {id: [(confidence, x, y, w, h)]}.");
}

}  // namespace pneumo::python
