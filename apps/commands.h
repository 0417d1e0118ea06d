// The `pneumo` subcommands. Each takes the arguments after its name and the CPU convolution
// policy that apps/main.cpp built once from the options of every command (--conv-algo,
// --conv-tuning, --show-conv-algos) and the environment, returns the process exit code, and
// reports failures by throwing pneumo::Error (main prints it as one line, exit 1) or a
// UsageError for a bad command line (exit 2).
#pragma once
#include <string>
#include <vector>

#include "layers/conv_selection.h"

namespace pneumo::cli {

using Command = int (*)(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);

int run_train(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);    // apps/command_train.cpp
int run_predict(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);  // apps/command_predict.cpp
int run_evaluate(const std::vector<std::string>& arguments,
                 const ConvPolicy& conv_policy);                                            // apps/command_evaluate.cpp
int run_explore(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);  // apps/command_data.cpp
int run_show(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);     // apps/command_show.cpp
int run_synth(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);    // apps/command_data.cpp
int run_summary(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);  // apps/command_summary.cpp
int run_demo(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);     // apps/command_demo.cpp
int run_tune(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);     // apps/command_tune.cpp
int run_version(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);  // apps/command_version.cpp
int run_inspect(const std::vector<std::string>& arguments, const ConvPolicy& conv_policy);  // apps/command_inspect.cpp
int run_dump_batches(const std::vector<std::string>& arguments,
                     const ConvPolicy& conv_policy);  // apps/command_dump_batches.cpp
#ifdef PNEUMO_HAVE_ONNX
int run_export(const std::vector<std::string>& arguments,
               const ConvPolicy& conv_policy);  // apps/command_export.cpp (built with libonnx)
#endif

}  // namespace pneumo::cli
