// One training step and its parts on numpy arrays: the notebook's loss and metrics
// (layers/loss.h), Adam and the cosine schedule (layers/adam.h), and train_step / evaluate_batch
// (layers/training_step.h), the very functions `pneumo train` calls.
#include <pybind11/stl.h>

#include "apps/python/arrays.h"
#include "apps/python/bindings.h"
#include "engine/check.h"
#include "layers/adam.h"
#include "layers/loss.h"
#include "layers/training_step.h"

namespace pneumo::python {

namespace {

py::dict step_dict(const StepResult& result) {
  py::dict values;
  values["loss"] = result.loss.loss;
  values["bce"] = result.loss.bce;
  values["iou_loss"] = result.loss.iou_loss;
  values["accuracy"] = result.metrics.accuracy;
  values["mean_iou"] = result.metrics.mean_iou;
  return values;
}

// images and masks (N,S,S,1) for `handle`'s network.
std::pair<Tensor, Tensor> batch_views(const NetworkHandle& handle, const py::array& images, const py::array& masks) {
  const Tensor image_view = tensor_view(images, "images", 4);
  require_shape(image_view, handle.network->input_shape(image_view.N()), "images");
  return {image_view, tensor_view(masks, "masks", image_view.shape())};
}

}  // namespace

void bind_training(py::module_& module) {
  module.def(
      "iou_bce_loss",
      [](const py::array& predictions, const py::array& targets) {
        const Tensor prediction_view = tensor_view(predictions, "predictions", 4);
        const Tensor target_view = tensor_view(targets, "targets", prediction_view.shape());
        Context context(Device::CPU);
        Tensor gradient;
        py::array_t<float> gradient_array = new_array(prediction_view.shape(), &gradient);
        const LossValues values = iou_bce_loss(context, prediction_view, target_view, &gradient);
        py::dict result;
        result["loss"] = values.loss;
        result["bce"] = values.bce;
        result["iou_loss"] = values.iou_loss;
        return py::make_tuple(result, gradient_array);
      },
      py::arg("predictions"), py::arg("targets"),
      "The notebook's loss 0.5 BCE + 0.5 (1 - soft IoU) of probabilities and 0/1 masks (N,H,W,1) -> "
      "({loss, bce, iou_loss}, d loss / d predictions) (layers/loss.md).");
  module.def(
      "segmentation_metrics",
      [](const py::array& predictions, const py::array& targets) {
        const Tensor prediction_view = tensor_view(predictions, "predictions", 4);
        const Tensor target_view = tensor_view(targets, "targets", prediction_view.shape());
        Context context(Device::CPU);
        const SegmentationMetrics metrics = segmentation_metrics(context, prediction_view, target_view);
        py::dict result;
        result["accuracy"] = metrics.accuracy;
        result["mean_iou"] = metrics.mean_iou;
        return result;
      },
      py::arg("predictions"), py::arg("targets"), "Keras binary accuracy and the notebook's mean_iou.");
  module.def("cosine_annealing", &cosine_annealing, py::arg("epoch"), py::arg("base_learning_rate") = 1e-3,
             py::arg("epochs") = 25, "The notebook's schedule: base * (cos(pi * epoch / epochs) + 1) / 2.");

  py::class_<Adam>(module, "Adam", "Adam with Keras's defaults (layers/adam.h): one update over the flat buffers.")
      .def(py::init([](double beta1, double beta2, double epsilon) {
             AdamConfig config;
             config.beta1 = beta1;
             config.beta2 = beta2;
             config.epsilon = epsilon;
             return Adam(config);
           }),
           py::arg("beta1") = 0.9, py::arg("beta2") = 0.999, py::arg("epsilon") = 1e-7)
      .def_property("step_count", &Adam::step_count, &Adam::set_step_count, "Updates made (a checkpoint's step).")
      .def(
          "step",
          [](Adam& adam, NetworkHandle& handle, float learning_rate) {
            adam.step(handle.context, handle.network->parameters(), learning_rate);
          },
          py::arg("network"), py::arg("learning_rate"),
          "One update of every trainable parameter of `network` from its gradients.");

  module.def(
      "train_step",
      [](NetworkHandle& handle, Adam& adam, const py::array& images, const py::array& masks, float learning_rate) {
        const auto [image_view, mask_view] = batch_views(handle, images, masks);
        handle.node_gradients.clear();
        handle.images = images;  // the network keeps a view of them
        return step_dict(train_step(handle.context, *handle.network, adam, image_view, mask_view, learning_rate));
      },
      py::arg("network"), py::arg("adam"), py::arg("images"), py::arg("masks"), py::arg("learning_rate"),
      "One step as `pneumo train` runs it: zero gradients, training forward, loss, backward, Adam. Returns the "
      "loss and metrics of the predictions before the update.");
  module.def(
      "evaluate_batch",
      [](NetworkHandle& handle, const py::array& images, const py::array& masks) {
        const auto [image_view, mask_view] = batch_views(handle, images, masks);
        handle.node_gradients.clear();
        handle.images = images;
        return step_dict(evaluate_batch(handle.context, *handle.network, image_view, mask_view));
      },
      py::arg("network"), py::arg("images"), py::arg("masks"),
      "Inference forward (running statistics) + loss + metrics; parameters unchanged.");
}

}  // namespace pneumo::python
