// pneumo demo: the whole pipeline on the embedded default, a synthetic RSNA-format dataset:
// synth -> explore -> train (CPU preset unless told otherwise) -> predict the test images ->
// evaluate -> pictures, printing where everything is.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "apps/prediction.h"
#include "apps/run_files.h"
#include "apps/training_run.h"
#include "data/input/dataset.h"
#include "data/presentation/explore.h"
#include "data/input/labels.h"
#include "data/evaluation/metric.h"
#include "data/evaluation/submission.h"
#include "data/input/synth.h"
#include "engine/check.h"
#include "layers/conv2d.h"

namespace pneumo::cli {

int run_demo(const std::vector<std::string>& argv, const ConvPolicy& conv_policy) {
  Arguments arguments("demo",
                      "Runs the notebook's whole pipeline on a synthetic dataset in the RSNA layout (1024x1024\n"
                      "JPEG-baseline DICOMs with boxes): synthesize it, explore it, train the CPU preset, predict\n"
                      "the test images, evaluate them with the competition metric, and write the pictures.\n"
                      "With --data, the same runs on a real RSNA download (then --preset notebook on a GPU).");
  arguments.option("out", "DIR", "out/demo", "where everything goes");
  arguments.option("data", "DIR", "", "use this dataset instead of synthesizing one");
  arguments.option("train-images", "N", "1200", "synthetic training images");
  arguments.option("test-images", "N", "200", "synthetic test images");
  arguments.option("preset", "NAME", "cpu", "training preset: cpu or notebook");
  arguments.option("epochs", "N", "", "override the preset's epochs");
  arguments.option("device", "auto|cpu|cuda", "auto", "where to train and predict");
  arguments.option("seed", "N", "1", "seed of the data and the training");
  arguments.option("workers", "N", "4", "data loader threads");
  if (!arguments.parse(argv)) return 0;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const std::string out = arguments.text("out");
  make_directories(out);

  // 1. Data.
  std::string data_dir = arguments.text("data");
  if (data_dir.empty()) {
    data_dir = out + "/data";
    SynthConfig synth;
    synth.out_dir = data_dir;
    synth.train_images = static_cast<int>(arguments.integer("train-images"));
    synth.test_images = static_cast<int>(arguments.integer("test-images"));
    synth.seed = static_cast<uint64_t>(arguments.integer("seed"));
    const std::string marker = data_dir + "/synth-config.txt";
    const std::string wanted = "train_images = " + std::to_string(synth.train_images) +
                               "\ntest_images = " + std::to_string(synth.test_images) +
                               "\nseed = " + std::to_string(synth.seed) + "\n";
    if (path_exists(marker) && read_text(marker) == wanted) {
      std::printf("[demo] 1/5 synthetic dataset already in %s\n", data_dir.c_str());
    } else {
      std::printf("[demo] 1/5 writing a synthetic dataset (%d train, %d test images) to %s\n", synth.train_images,
                  synth.test_images, data_dir.c_str());
      // A dataset the demo wrote earlier with other settings (its marker says so) is replaced;
      // synth refuses any other non-empty folder.
      if (path_exists(marker)) std::filesystem::remove_all(data_dir);
      synth.show_progress = true;
      write_synthetic_dataset(synth);
      write_text_atomic(marker, wanted);
    }
  }
  const DatasetLayout layout = find_dataset(data_dir);

  // 2. Exploration.
  std::printf("[demo] 2/5 exploring the labels (%.0fs)\n", elapsed());
  explore_dataset(data_dir, out + "/explore");

  // 3. Training.
  std::printf("[demo] 3/5 training (%.0fs)\n", elapsed());
  TrainSettings settings = preset_settings(arguments.text("preset"));
  settings.data_dir = data_dir;
  settings.run_dir = out + "/run";
  settings.force_run_dir = true;  // the demo's folder: a rerun replaces its run
  settings.conv_policy = conv_policy;
  settings.device = arguments.text("device");
  settings.seed = static_cast<uint64_t>(arguments.integer("seed"));
  settings.workers = arguments.integer("workers");
  if (arguments.has("epochs")) settings.epochs = arguments.integer("epochs");
  TrainOutcome trained = run_training(settings, false);
  if (trained.interrupted) return 130;

  // 4. Prediction on the test images.
  std::string submission_path;
  if (!layout.test_images.empty()) {
    std::printf("[demo] 4/5 predicting the test images (%.0fs)\n", elapsed());
    PredictSettings predict;
    predict.checkpoint = trained.best_checkpoint;
    predict.images_dir = layout.test_images;
    predict.out = submission_path = out + "/submission.csv";
    predict.device = settings.device;
    predict.overlays_dir = out + "/overlays";
    predict.overlay_limit = 16;
    predict.labels = layout.test_labels;
    predict.workers = settings.workers;
    predict.conv_policy = conv_policy;
    run_prediction(predict);
  }

  // 5. Evaluation: the validation split (scored during training) and, on synthetic data, the test set.
  std::printf("[demo] 5/5 evaluating (%.0fs)\n", elapsed());
  std::printf("validation mAP (best epoch): %.4f   predicting nothing scores 0.0000\n", trained.best_validation_map);
  if (!submission_path.empty() && !layout.test_labels.empty()) {
    LabelSet truth = read_labels(layout.test_labels);
    Submission submission = read_submission(submission_path);
    check_submission_covers(submission, truth.patient_ids);
    MetricResult result = evaluate_submission(truth.patient_ids, truth, submission);
    std::printf("test set (%s):\n%s", layout.test_labels.c_str(), metric_report(result).c_str());
  }
  std::printf("\ndone in %.0fs. Everything is in %s:\n", elapsed(), out.c_str());
  std::printf("  %-28s the dataset (RSNA layout)\n", (data_dir + "/").c_str());
  std::printf("  %-28s label statistics charts\n", (out + "/explore/").c_str());
  std::printf("  %-28s config, history.csv, curves.png, validation_grid.png, checkpoints, log\n",
              (settings.run_dir + "/").c_str());
  if (!submission_path.empty()) {
    std::printf("  %-28s the Kaggle submission for the test images\n", submission_path.c_str());
    std::printf("  %-28s test images with predicted (orange) and true (green) boxes\n", (out + "/overlays/").c_str());
  }
  return 0;
}

}  // namespace pneumo::cli
