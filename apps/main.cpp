// pneumo: the command-line front end. `pneumo <command> [options]`; `pneumo <command> --help`.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "engine/blas_setup.h"
#include "engine/check.h"

namespace {

struct CommandEntry {
  const char* name;
  pneumo::cli::Command run;
  const char* summary;
};

const CommandEntry commands[] = {
    {"demo", pneumo::cli::run_demo, "the whole pipeline on a synthetic dataset: synth, train, predict, evaluate, pictures"},
    {"train", pneumo::cli::run_train, "train the notebook's network on a dataset in the RSNA layout"},
    {"predict", pneumo::cli::run_predict, "predict boxes for a folder of DICOMs and write a Kaggle submission"},
    {"evaluate", pneumo::cli::run_evaluate, "score a submission against labels with the competition metric"},
    {"explore", pneumo::cli::run_explore, "label statistics and charts of a dataset (the notebook's exploration)"},
    {"show", pneumo::cli::run_show, "render a DICOM to PNG with label and predicted boxes"},
    {"synth", pneumo::cli::run_synth, "write a synthetic dataset in the RSNA layout"},
    {"summary", pneumo::cli::run_summary, "print the model table (layers, shapes, parameters, FLOPs)"},
    {"dump-batches", pneumo::cli::run_dump_batches, "write training batches and initial weights for comparing frameworks"},
#ifdef PNEUMO_HAVE_ONNX
    {"export", pneumo::cli::run_export, "write a checkpoint's network as an ONNX model (built with libonnx)"},
#endif
};

void print_usage(FILE* stream) {
  std::fprintf(stream, "usage: pneumo <command> [options]   (pneumo <command> --help for its options)\n\ncommands:\n");
  for (const auto& command : commands) std::fprintf(stream, "  %-10s %s\n", command.name, command.summary);
}

}  // namespace

int main(int argc, char** argv) {
  pneumo::select_openblas_kernels(argc, argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::vector<std::string> arguments(argv + 2, argv + argc);
  for (const auto& command : commands) {
    if (std::strcmp(argv[1], command.name) != 0) continue;
    try {
      return command.run(arguments);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "pneumo %s: error: %s\n", command.name, error.what());
      return 1;
    }
  }
  std::fprintf(stderr, "pneumo: unknown command '%s'\n", argv[1]);
  print_usage(stderr);
  return 2;
}
