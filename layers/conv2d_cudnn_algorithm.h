// Choosing a cuDNN convolution algorithm from the heuristic's ranked list, as a pure function
// that knows nothing of cuDNN (so it is tested on the CPU with fabricated lists). layers/conv2d.cu
// turns cuDNN's perf results into ConvAlgorithmCandidate and passes a callback that asks cuDNN
// for the candidate's workspace size. Data flow: ranked candidates in -> the first usable one
// (and a record of every candidate tried) out.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace pneumo {

// The math a candidate runs with. Without TF32 only full-fp32 FMA kernels are acceptable;
// fp16 down-conversion (TensorOpConversion) never is.
enum class ConvAlgorithmMath { Default, Fma, TensorOp, TensorOpConversion };

// How cuDNN's candidates are ranked (`--cudnn`, bench_network, config.txt's cudnn):
//   heuristic      cuDNN's heuristic (cudnnGet*Algorithm_v7): no timing, the default
//   find           cuDNN times every algorithm on the real shape once per process
//                  (cudnnFind*Algorithm, like PyTorch's cudnn.benchmark=True) and ranks by time
//   deterministic  the heuristic's ranking, keeping only algorithms that give the same bits every
//                  run (perf.determinism): a resumed GPU run then repeats an uninterrupted one
enum class CudnnSearch { Heuristic, Find, Deterministic };
const char* cudnn_search_name(CudnnSearch search);  // "heuristic", "find", "deterministic"
// Parses those names; pneumo::Error listing them otherwise.
CudnnSearch parse_cudnn_search(const std::string& name);

// One entry of the heuristic's ranked list (cudnnConvolution*AlgoPerf_t).
struct ConvAlgorithmCandidate {
  int algorithm = 0;             // the cuDNN enum value
  std::string algorithm_name;    // e.g. "IMPLICIT_PRECOMP_GEMM"
  bool heuristic_ok = true;      // perf.status == CUDNN_STATUS_SUCCESS
  std::string heuristic_status;  // perf.status's name, e.g. "CUDNN_STATUS_NOT_SUPPORTED"
  ConvAlgorithmMath math = ConvAlgorithmMath::Fma;
  bool deterministic = true;  // perf.determinism == CUDNN_DETERMINISTIC
  double milliseconds = -1;   // perf.time from a find (-1: the heuristic, untimed)
};

// Asks the library for the candidate's workspace. Returns "" and sets *bytes on success, or the
// library's status name (e.g. "CUDNN_STATUS_NOT_SUPPORTED") on failure. May throw for errors
// that are not about the candidate (those propagate).
using ConvWorkspaceQuery = std::function<std::string(const ConvAlgorithmCandidate&, size_t* bytes)>;

struct ConvAlgorithmChoice {
  int index = -1;  // into the candidate list; -1 when none is usable
  size_t workspace_bytes = 0;
  std::vector<std::string> tried;  // one line per candidate examined: "NAME (n): outcome"
};

// Walks the candidates in their order (the heuristic's rank, or a find's times) and returns the
// first whose status is success, whose math is acceptable (allow_tf32, see ConvAlgorithmMath),
// that is deterministic when require_deterministic, whose workspace query succeeds and whose
// workspace fits max_workspace_bytes. Candidates that fail are recorded in `tried` with the
// reason and skipped (as PyTorch does), never thrown on.
ConvAlgorithmChoice choose_conv_algorithm(const std::vector<ConvAlgorithmCandidate>& candidates, bool allow_tf32,
                                          size_t max_workspace_bytes, const ConvWorkspaceQuery& workspace_query,
                                          bool require_deterministic = false);

// The error message when no candidate is usable: names the layer, the direction ("forward",
// "backward-data", "backward-filter"), the shape and every candidate tried with its outcome.
std::string no_conv_algorithm_message(const std::string& layer_name, const std::string& direction,
                                      const std::string& shape, const ConvAlgorithmChoice& choice);

}  // namespace pneumo
