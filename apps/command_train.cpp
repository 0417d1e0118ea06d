// pneumo train: the notebook's training on a dataset in the RSNA layout, or --resume a run.
#include <cstdio>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "apps/training_run.h"
#include "engine/check.h"
#include "layers/conv2d.h"

namespace pneumo::cli {

int run_train(const std::vector<std::string>& argv, const ConvPolicy& conv_policy) {
  Arguments arguments("train",
                      "Trains the notebook's residual segmentation network on a dataset in the RSNA layout\n"
                      "(stage_2_train_labels.csv + stage_2_train_images/, or the stage 1 names). Presets:\n"
                      "  notebook  256x256, 32 channels, 2 blocks, depth 4, batch 32, 25 epochs, Adam 1e-3 with\n"
                      "            cosine annealing, 2560 validation images, flip augmentation (for a GPU)\n"
                      "  cpu       128x128, 8 channels, 1 block, depth 4, batch 16, 8 epochs, lr 3e-3, 15%\n"
                      "            validation: trains in minutes on 2 cores\n"
                      "Any setting below overrides the preset. Ctrl-C saves a checkpoint; --resume RUN_DIR\n"
                      "continues exactly where it stopped.");
  arguments.option("data", "DIR", "", "dataset directory (RSNA layout)");
  arguments.option("run-dir", "DIR", "runs/run",
                   "where the checkpoints, history and pictures go (a new or empty "
                   "folder, or a run's own)");
  arguments.flag("force", "write the run into a folder that holds other files, or replace the run already there");
  arguments.option("resume", "RUN_DIR", "", "continue the run in RUN_DIR with its own settings");
  arguments.option("preset", "NAME", "cpu", "notebook or cpu");
  arguments.option("device", "auto|cpu|cuda", "auto", "where to train");
  arguments.option("size", "S", "", "input size S (images are resized to S x S)");
  arguments.option("channels", "N", "", "channels of the first convolution");
  arguments.option("blocks", "N", "", "residual blocks per depth");
  arguments.option("depth", "N", "", "downsampling stages");
  arguments.option("dropout", "P", "0",
                   "dropout rate before each residual block's second conv (0 = none, the notebook)");
  arguments.option("batch", "N", "", "batch size");
  arguments.option("epochs", "N", "", "epochs");
  arguments.option("lr", "RATE", "", "base learning rate of the cosine annealing");
  arguments.option("validation", "N", "", "validation images (the notebook: 2560)");
  arguments.option("validation-fraction", "F", "", "validation share, used when --validation is negative");
  arguments.option("max-images", "N", "0", "use only N labelled images (a seeded sample); 0 = all");
  arguments.option("seed", "N", "1", "seed of initialization, split, shuffles and flips");
  arguments.option("workers", "N", "4", "data loader threads");
  arguments.flag("no-flip", "no horizontal flip augmentation");
  arguments.option("threshold", "P", "0.5", "probability threshold of the box post-processing");
  arguments.option("cache-dir", "DIR", "", "where the preprocessed image cache lives (default: the dataset directory)");
  arguments.option("max-unreadable", "F", "0", "fail when more than this share of images cannot be read");
  arguments.option("stop-after", "N", "0", "act as if Ctrl-C came after N batches (to test --resume)");
  arguments.option(
      "bn-statistics", "global|per-rank", "global",
      "under mpirun: batch-norm statistics over the global batch (equal to one process) or each rank's slice");
  arguments.option(
      "gradient-buckets", "MB", "0",
      "under mpirun: sum the gradients in buckets of MB overlapped with the backward pass (0: one sum after it)");
  arguments.option("precision", "fp32|bf16", "fp32",
                   "convolutions in fp32, or bf16: inputs, filters and gradients in bfloat16, fp32 accumulation "
                   "(layers/precision.md)");
  arguments.option("tf32", "on|off", "off", "CUDA: TF32 tensor cores in cuDNN (off: full fp32, as the CPU)");
  arguments.option("cudnn", "heuristic|find|deterministic", "heuristic",
                   "CUDA: cuDNN's algorithm per shape from its heuristic, timed once (find, as PyTorch's "
                   "cudnn.benchmark), or deterministic ones only (a resumed GPU run then repeats bit for bit)");
  arguments.option("inspect-every", "K", "0",
                   "record per-layer statistics every K steps in RUN_DIR/inspect.csv "
                   "(draw them with pneumo inspect --run RUN_DIR); 0 = off");
  if (!arguments.parse(argv)) return 0;
  if (arguments.integer("inspect-every") < 0)
    throw Error("--inspect-every: expected K >= 0 (0 = off), got " + arguments.text("inspect-every"));

  TrainOutcome outcome;
  if (!arguments.text("resume").empty()) {
    for (const char* name : {"data",       "preset", "size",    "channels",  "blocks",        "depth",
                             "dropout",    "batch",  "epochs",  "lr",        "validation",    "validation-fraction",
                             "max-images", "seed",   "no-flip", "threshold", "bn-statistics", "force",
                             "run-dir",    "tf32",   "cudnn",   "precision"})
      if (arguments.has(name))
        throw Error(std::string("--") + name + " cannot be changed when resuming (the run's config.txt is used)");
    TrainSettings settings = read_run_settings(arguments.text("resume"));
    settings.run_dir = arguments.text("resume");
    // The run computes with the convolution policy it recorded; an explicit different
    // --conv-algo or --conv-tuning is refused like any other setting, a different
    // PNEUMO_CONV_ALGO or PNEUMO_CONV_TUNING is overridden (and the log says which policy runs).
    const std::string current = conv_algorithms_name(conv_policy.algorithms);
    const std::string recorded = conv_algorithms_name(settings.conv_policy.algorithms);
    if (settings.conv_policy.algorithms.empty()) {
      settings.conv_policy = conv_policy;  // a run from before the setting was recorded
    } else if (recorded != current && conv_policy.origin == "--conv-algo") {
      throw Error("--conv-algo " + current + " cannot be changed when resuming: the run computes with " + recorded +
                  " (conv_algorithms in " + settings.run_dir + "/config.txt)");
    } else if (conv_policy.tuning_origin == "--conv-tuning" &&
               conv_policy.tuning_file != settings.conv_policy.tuning_file) {
      throw Error("--conv-tuning cannot be changed when resuming: the run reads " +
                  (settings.conv_policy.tuning_file.empty() ? std::string("no tuning file")
                                                            : quoted(settings.conv_policy.tuning_file, 200)) +
                  " (conv_tuning in " + settings.run_dir + "/config.txt)");
    }
    settings.conv_policy.report = conv_policy.report;
    if (arguments.has("device")) settings.device = arguments.text("device");
    if (arguments.has("workers")) settings.workers = arguments.integer("workers");
    if (arguments.has("cache-dir")) settings.cache_dir = arguments.text("cache-dir");
    settings.stop_after_batches = arguments.integer("stop-after");
    settings.inspect_every = arguments.integer("inspect-every");
    settings.gradient_bucket_mb = arguments.number("gradient-buckets");
    outcome = run_training(settings, true);
  } else {
    if (arguments.text("data").empty()) throw Error("--data is required (or --resume RUN_DIR)");
    TrainSettings settings = preset_settings(arguments.text("preset"));
    settings.data_dir = arguments.text("data");
    settings.run_dir = arguments.text("run-dir");
    settings.force_run_dir = arguments.has("force");
    settings.conv_policy = conv_policy;
    settings.device = arguments.text("device");
    if (arguments.has("size")) settings.network.input_size = arguments.integer("size");
    if (arguments.has("channels")) settings.network.channels = arguments.integer("channels");
    if (arguments.has("blocks")) settings.network.n_blocks = arguments.integer("blocks");
    if (arguments.has("depth")) settings.network.depth = arguments.integer("depth");
    settings.network.dropout = static_cast<float>(arguments.number("dropout"));
    if (arguments.has("batch")) settings.batch_size = arguments.integer("batch");
    if (arguments.has("epochs")) settings.epochs = arguments.integer("epochs");
    if (arguments.has("lr")) settings.learning_rate = arguments.number("lr");
    if (arguments.has("validation")) settings.validation_count = arguments.integer("validation");
    if (arguments.has("validation-fraction")) {
      settings.validation_fraction = arguments.number("validation-fraction");
      if (!arguments.has("validation")) settings.validation_count = -1;
    }
    settings.max_images = arguments.integer("max-images");
    settings.seed = static_cast<uint64_t>(arguments.integer("seed"));
    settings.workers = arguments.integer("workers");
    settings.flip = !arguments.has("no-flip");
    settings.threshold = arguments.number("threshold");
    settings.cache_dir = arguments.text("cache-dir");
    settings.max_unreadable_fraction = arguments.number("max-unreadable");
    settings.stop_after_batches = arguments.integer("stop-after");
    const std::string statistics = arguments.text("bn-statistics");
    if (statistics != "global" && statistics != "per-rank")
      throw Error("--bn-statistics expects global or per-rank, got '" + statistics + "'");
    settings.synchronized_batch_norm = statistics == "global";
    settings.tf32 = arguments.choice("tf32", {"on", "off"}) == "on";
    settings.precision = parse_precision(arguments.choice("precision", {"fp32", "bf16"}));
    settings.cudnn = arguments.choice("cudnn", {"heuristic", "find", "deterministic"});
    settings.inspect_every = arguments.integer("inspect-every");
    settings.gradient_bucket_mb = arguments.number("gradient-buckets");
    outcome = run_training(settings, false);
  }
  return outcome.interrupted ? 130 : 0;
}

}  // namespace pneumo::cli
