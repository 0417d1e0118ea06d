// pneumo inspect: one training step drawn layer by layer as a page (apps/inspect_step.h,
// apps/inspect_page.h), or a run's recorded layer statistics over training (--run).
#include <cstdio>
#include <filesystem>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "apps/inspect_page.h"
#include "apps/inspect_record.h"
#include "apps/inspect_step.h"
#include "apps/run_files.h"
#include "apps/run_settings.h"
#include "data/input/dataset.h"
#include "data/input/dicom.h"
#include "data/input/labels.h"
#include "data/input/mask.h"
#include "data/input/resize.h"
#include "engine/check.h"
#include "layers/checkpoint.h"

namespace pneumo::cli {

namespace {

namespace fs = std::filesystem;

std::string absolute_folder_of(const std::string& path) {
  fs::path folder = fs::absolute(fs::path(path)).parent_path();
  return folder.lexically_normal().generic_string();
}

// The repository the binary was built from (for links to the teaching pages), if it is there.
std::string repository_path() {
#ifdef PNEUMO_SOURCE_DIR
  if (fs::is_directory(fs::path(PNEUMO_SOURCE_DIR) / "layers"))
    return fs::path(PNEUMO_SOURCE_DIR).lexically_normal().generic_string();
#endif
  return "";
}

// The page must not replace any file the command was given.
void require_not_an_input(const std::string& out, const std::vector<std::string>& inputs) {
  std::error_code error;
  for (const std::string& input : inputs)
    if (!input.empty() && fs::exists(input) && fs::exists(out) && fs::equivalent(out, input, error))
      throw Error("--out " + out + " is one of the inputs; choose another page path");
}

std::string patient_id_of(const std::string& path) { return fs::path(path).stem().string(); }

int run_history_page(const std::string& run_dir, std::string out) {
  const std::string csv = run_dir + "/inspect.csv";
  if (!path_exists(csv)) throw Error(csv + ": not found; record it with pneumo train --inspect-every K");
  if (out.empty()) out = run_dir + "/inspect.html";
  make_directories(absolute_folder_of(out));
  const std::vector<LayerStatisticsRow> rows = read_statistics_csv(csv);
  if (rows.empty()) throw Error(csv + ": no rows recorded yet");
  write_text_atomic(out, training_statistics_page_html(rows, run_dir));
  std::printf("wrote %s (%zu rows of layer statistics)\n", out.c_str(), rows.size());
  return 0;
}

}  // namespace

int run_inspect(const std::vector<std::string>& argv, const ConvPolicy& conv_policy) {
  Arguments arguments(
      "inspect",
      "Runs ONE training step (forward, loss, backward, one Adam update) of a network on one X-ray and\n"
      "writes a self-contained HTML page that shows it layer by layer: every node's output and gradient,\n"
      "weights, updates, batch-norm statistics, the loss, the probability map and the boxes. Nothing it\n"
      "reads is changed. Network: --checkpoint, or a fresh one (--preset or --size/--channels/--blocks/\n"
      "--depth, --seed). Image: --dicom FILE [--labels CSV], or --data DIR --patient-id ID.\n"
      "With --run RUN_DIR: draws the layer statistics that `pneumo train --inspect-every K` recorded.");
  arguments.option("checkpoint", "FILE", "", "a checkpoint (its network configuration and Adam state are used)");
  arguments.option("preset", "NAME", "", "a fresh network of a training preset (notebook or cpu)");
  arguments.option("size", "S", "256", "fresh network: input size");
  arguments.option("channels", "N", "32", "fresh network: channels of the first convolution");
  arguments.option("blocks", "N", "2", "fresh network: residual blocks per depth");
  arguments.option("depth", "N", "4", "fresh network: downsampling stages");
  arguments.option("seed", "N", "1", "fresh network: initialization seed");
  arguments.option("dicom", "FILE", "", "the X-ray (<patientId>.dcm)");
  arguments.option("labels", "CSV", "", "label file with the image's boxes (for --dicom)");
  arguments.option("data", "DIR", "", "a dataset in the RSNA layout (with --patient-id)");
  arguments.option("patient-id", "ID", "", "the image's patientId (default: the DICOM's file name)");
  arguments.option("lr", "RATE", "0.001", "learning rate of the Adam step");
  arguments.option("threshold", "P", "0.5", "probability threshold of the box post-processing");
  arguments.option("device", "cpu|cuda|auto", "cpu", "where the step runs");
  arguments.option("precision", "fp32|bf16", "fp32",
                   "convolutions in fp32, or bf16: inputs, filters and gradients in bfloat16, fp32 accumulation "
                   "(layers/precision.md)");
  arguments.option("out", "HTML", "inspect.html", "the page to write (with --run: default RUN_DIR/inspect.html)");
  arguments.option("run", "RUN_DIR", "", "draw the recorded layer statistics of a training run instead");
  if (!arguments.parse(argv)) return 0;
  if (!arguments.text("run").empty())
    return run_history_page(arguments.text("run"), arguments.has("out") ? arguments.text("out") : "");

  // The network: a checkpoint's, a preset's or the flags'.
  NetworkConfig config{arguments.integer("size"), arguments.integer("channels"), arguments.integer("blocks"),
                       arguments.integer("depth"), 0.0f};
  const std::string checkpoint = arguments.text("checkpoint");
  std::string network_description;
  if (!checkpoint.empty()) {
    config = network_config_from_metadata(read_checkpoint_info(checkpoint).metadata, checkpoint);
    network_description = "checkpoint " + checkpoint;
  } else {
    if (!arguments.text("preset").empty()) config = preset_settings(arguments.text("preset")).network;
    network_description = "fresh network (Glorot initialization, seed " + arguments.text("seed") + ")";
  }
  validate_network_config(config);

  // The image and its boxes.
  std::string dicom = arguments.text("dicom"), labels_path = arguments.text("labels");
  std::string id = arguments.text("patient-id");
  if (!arguments.text("data").empty()) {
    if (id.empty()) throw Error("--data needs --patient-id");
    const DatasetLayout layout = find_dataset(arguments.text("data"));
    if (dicom.empty()) dicom = dicom_path(layout.train_images, id);
    if (labels_path.empty()) labels_path = layout.train_labels;
  }
  if (dicom.empty()) throw Error("an image is required: --dicom FILE or --data DIR --patient-id ID");
  if (id.empty()) id = patient_id_of(dicom);
  std::vector<Box> boxes;
  if (!labels_path.empty()) boxes = read_labels(labels_path).boxes_for(id);
  const std::string out = arguments.text("out");
  require_not_an_input(out, {checkpoint, dicom, labels_path});
  make_directories(absolute_folder_of(out));  // before the step, so a bad path fails at once

  const Device device = resolve_device(arguments.text("device"));
  Context context(device);
  Network network(device, config, static_cast<uint64_t>(arguments.integer("seed")));
  network.set_conv_policy(conv_policy);
  network.set_precision(parse_precision(arguments.choice("precision", {"fp32", "bf16"})));
  Adam adam;
  if (!checkpoint.empty()) adam.set_step_count(load_checkpoint(checkpoint, network.parameters()).step);

  const Image native = read_dicom(dicom);
  const int S = static_cast<int>(config.input_size);
  Tensor images(device, {1, S, S, 1}), masks(device, {1, S, S, 1});
  images.set_values(resize_like_skimage(native.pixels.data(), native.height, native.width, S, S));  // host -> device
  masks.set_values(box_mask(boxes, native.height, native.width, S));

  const InspectedStep step =
      inspect_training_step(context, network, adam, images, masks, static_cast<float>(arguments.number("lr")));
  InspectSource source;
  source.network_description = network_description;
  source.image_description = "DICOM " + dicom + " (patientId " + id + ", " + std::to_string(native.width) + "x" +
                             std::to_string(native.height) + "), " + std::to_string(boxes.size()) + " true box" +
                             (boxes.size() == 1 ? "" : "es") +
                             (labels_path.empty() ? " (no label file)" : " in " + labels_path);
  source.device_description = describe_device(device);
  source.native = native;
  source.true_boxes = boxes;
  source.threshold = arguments.number("threshold");
  source.repository = repository_path();
  source.page_directory = absolute_folder_of(out);
  const std::string page = inspect_page_html(step, source);
  write_text_atomic(out, page);
  std::printf("wrote %s (%.1f MB): %zu nodes, loss %.4f (BCE %.4f, IoU loss %.4f); open it in a browser\n", out.c_str(),
              static_cast<double>(page.size()) / 1e6, step.nodes.size(), step.loss.loss, step.loss.bce,
              step.loss.iou_loss);
  return 0;
}

}  // namespace pneumo::cli
