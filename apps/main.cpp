// pneumo: the command-line front end. `pneumo <command> [options]`; `pneumo <command> --help`.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "engine/blas_setup.h"
#include "data/input/dicom.h"
#include "engine/check.h"
#include "kernels/cpu/cpu_isa.h"
#include "layers/conv_selection.h"

namespace {

struct CommandEntry {
  const char* name;
  pneumo::cli::Command run;
  const char* summary;
};

const CommandEntry commands[] = {
    {"demo", pneumo::cli::run_demo,
     "the whole pipeline on a synthetic dataset: synth, train, predict, evaluate, pictures"},
    {"train", pneumo::cli::run_train, "train the notebook's network on a dataset in the RSNA layout"},
    {"predict", pneumo::cli::run_predict, "predict boxes for a folder of DICOMs and write a Kaggle submission"},
    {"evaluate", pneumo::cli::run_evaluate, "score a submission against labels with the competition metric"},
    {"explore", pneumo::cli::run_explore, "label statistics and charts of a dataset (the notebook's exploration)"},
    {"show", pneumo::cli::run_show, "render a DICOM to PNG with label and predicted boxes"},
    {"synth", pneumo::cli::run_synth, "write a synthetic dataset in the RSNA layout"},
    {"summary", pneumo::cli::run_summary, "print the model table (layers, shapes, parameters, FLOPs)"},
    {"tune", pneumo::cli::run_tune,
     "time the CPU convolution algorithms on the network's shapes, write the tuning file"},
    {"version", pneumo::cli::run_version, "version, build and machine report for a bug report (also --version)"},
    {"inspect", pneumo::cli::run_inspect,
     "one training step drawn layer by layer as an HTML page (or --run: layer statistics)"},
    {"dump-batches", pneumo::cli::run_dump_batches,
     "write training batches and initial weights for comparing frameworks"},
#ifdef PNEUMO_HAVE_ONNX
    {"export", pneumo::cli::run_export, "write a checkpoint's network as an ONNX model (built with libonnx)"},
#endif
};

void print_usage(FILE* stream) {
  std::fprintf(stream,
               "usage: pneumo <command> [options]   (pneumo <command> --help for its options)\n"
               "       pneumo --version             (version, back ends and this machine, for bug reports)\n\n"
               "commands:\n");
  for (const auto& command : commands) std::fprintf(stream, "  %-10s %s\n", command.name, command.summary);
  std::fprintf(stream,
               "\noptions of every command (CPU convolutions, layers/conv2d.md \"Algorithms\"):\n"
               "  --conv-algo NAME[,NAME...]  fast, reference, gemm, direct, winograd2, winograd4 or auto\n"
               "                              (also PNEUMO_CONV_ALGO); a list takes the first that runs a\n"
               "                              layer; default fast (a fixed rule per shape and instruction\n"
               "                              set); direct,gemm sums exactly; auto times them per process\n"
               "  --conv-tuning FILE          the tuning file auto reads its choices from (pneumo tune\n"
               "                              writes one; also PNEUMO_CONV_TUNING); none by default\n"
               "  --show-conv-algos           print each convolution's algorithm choice when made\n"
               "                              (pneumo summary --conv-algos: every choice up front)\n");
}

// The CPU convolution policy of this process, built once: the environment's
// (PNEUMO_CONV_ALGO, PNEUMO_CONV_TUNING, PNEUMO_CONV_ALGO_REPORT), then the options any command
// accepts, which win; they are taken out of `arguments`. The command gets the value.
pneumo::ConvPolicy take_conv_options(std::vector<std::string>& arguments) {
  pneumo::ConvPolicy policy = pneumo::conv_policy_from_environment();
  std::vector<std::string> rest;
  for (size_t i = 0; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    if (argument == "--show-conv-algos") {
      policy.report = true;
      continue;
    }
    std::string option, value;
    for (const std::string name : {"--conv-algo", "--conv-tuning"}) {
      if (argument == name) {
        if (i + 1 >= arguments.size())
          throw pneumo::Error(name + " needs a value, e.g. " + name +
                              (name == "--conv-algo" ? " direct" : " conv-tuning.txt"));
        option = name;
        value = arguments[++i];
      } else if (argument.rfind(name + "=", 0) == 0) {
        option = name;
        value = argument.substr(name.size() + 1);
      }
    }
    if (option == "--conv-algo") {
      policy.algorithms = pneumo::parse_conv_algorithms(value);
      policy.origin = "--conv-algo";
    } else if (option == "--conv-tuning") {
      if (value.empty()) throw pneumo::cli::UsageError("--conv-tuning: expected a FILE, got an empty path");
      policy.tuning_file = value;
      policy.tuning_origin = "--conv-tuning";
    } else {
      rest.push_back(argument);
    }
  }
  arguments = rest;
  return policy;
}

// An error is printed as one line whatever it quotes: a path holding a newline or a terminal
// escape is shown with \xNN escapes instead of breaking the line or driving the terminal.
std::string one_line(const char* message) {
  std::string text;
  for (const char* c = message; *c; ++c) {
    const unsigned char byte = static_cast<unsigned char>(*c);
    if (byte < 0x20 || byte == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\x%02x", byte);
      text += escape;
    } else {
      text += *c;
    }
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  // First of all: this build's arithmetic may be compiled for AVX2+FMA (kernels/cpu/cpu_isa.h);
  // on a CPU without them only the version report and the usage (x86-64 baseline code) run.
  const bool version_or_help = argc >= 2 && (!std::strcmp(argv[1], "version") || !std::strcmp(argv[1], "--version") ||
                                             !std::strcmp(argv[1], "-V") || !std::strcmp(argv[1], "--help") ||
                                             !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help"));
  if (!pneumo::cpu_runs_compiled_arithmetic() && !version_or_help) {
    std::fprintf(stderr,
                 "pneumo: this CPU lacks AVX2 or FMA, and this build compiles its CPU arithmetic for %s "
                 "(x86-64-v3: Intel Haswell, AMD Excavator or newer); `pneumo version` reports what this "
                 "CPU offers. Build on this machine with -DPNEUMO_NATIVE=ON for its own instruction set.\n",
                 pneumo::compiled_arithmetic_isa());
    return 1;
  }
  pneumo::select_openblas_kernels(argc, argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::vector<std::string> arguments(argv + 2, argv + argc);
  const char* name = !std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "-V") ? "version" : argv[1];
  // --max-image-pixels N (any command that reads DICOMs): the decoder's size limit (data/input/dicom.h).
  for (size_t i = 0; i < arguments.size(); ++i)
    if (arguments[i] == "--max-image-pixels") {
      try {
        if (i + 1 >= arguments.size()) throw pneumo::Error("--max-image-pixels needs a value");
        size_t used = 0;
        long long value = std::stoll(arguments[i + 1], &used);
        if (used != arguments[i + 1].size()) throw pneumo::Error("--max-image-pixels expects an integer");
        pneumo::set_max_image_pixels(value);
      } catch (const std::exception& error) {
        std::fprintf(stderr, "pneumo: %s\n", error.what());
        return 2;
      }
      arguments.erase(arguments.begin() + static_cast<long>(i), arguments.begin() + static_cast<long>(i) + 2);
      break;
    }
  for (const auto& command : commands) {
    if (std::strcmp(name, command.name) != 0) continue;
    try {
      const pneumo::ConvPolicy conv_policy = take_conv_options(arguments);
      return command.run(arguments, conv_policy);
    } catch (const pneumo::cli::UsageError& error) {
      std::fprintf(stderr, "pneumo %s: error: %s\n", command.name, one_line(error.what()).c_str());
      return 2;
    } catch (const std::exception& error) {
      std::fprintf(stderr, "pneumo %s: error: %s\n", command.name, one_line(error.what()).c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "pneumo: unknown command '%s'\n", argv[1]);
  print_usage(stderr);
  return 2;
}
