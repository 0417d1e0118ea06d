// See layers/conv2d_cudnn_algorithm.h. Compiled into every build (no cuDNN needed), so the selection
// logic is tested on the CPU.
#include "layers/conv2d_cudnn_algorithm.h"

#include <cstdio>

#include "engine/check.h"

namespace pneumo {

namespace {

std::string label(const ConvAlgorithmCandidate& candidate) {
  const std::string name = candidate.algorithm_name.empty() ? "algorithm" : candidate.algorithm_name;
  return name + " (" + std::to_string(candidate.algorithm) + ")";
}

std::string bytes_text(size_t bytes) { return std::to_string(bytes) + " bytes"; }

}  // namespace

const char* cudnn_search_name(CudnnSearch search) {
  switch (search) {
    case CudnnSearch::Find: return "find";
    case CudnnSearch::Deterministic: return "deterministic";
    default: return "heuristic";
  }
}

CudnnSearch parse_cudnn_search(const std::string& name) {
  for (CudnnSearch search : {CudnnSearch::Heuristic, CudnnSearch::Find, CudnnSearch::Deterministic})
    if (name == cudnn_search_name(search)) return search;
  throw Error("cuDNN algorithm search: expected heuristic, find or deterministic, got " + quoted(name));
}

ConvAlgorithmChoice choose_conv_algorithm(const std::vector<ConvAlgorithmCandidate>& candidates, bool allow_tf32,
                                          size_t max_workspace_bytes, const ConvWorkspaceQuery& workspace_query,
                                          bool require_deterministic) {
  ConvAlgorithmChoice choice;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const ConvAlgorithmCandidate& candidate = candidates[i];
    const std::string name = label(candidate);
    if (!candidate.heuristic_ok) {
      choice.tried.push_back(name + ": heuristic status " + candidate.heuristic_status);
      continue;
    }
    if (candidate.math == ConvAlgorithmMath::TensorOpConversion) {
      choice.tried.push_back(name + ": skipped, fp16 down-conversion math");
      continue;
    }
    if (!allow_tf32 && candidate.math == ConvAlgorithmMath::TensorOp) {
      choice.tried.push_back(name + ": skipped, tensor-op (TF32) math while TF32 is off");
      continue;
    }
    if (require_deterministic && !candidate.deterministic) {
      choice.tried.push_back(name + ": skipped, not deterministic");
      continue;
    }
    size_t bytes = 0;
    const std::string failure = workspace_query(candidate, &bytes);
    if (!failure.empty()) {
      choice.tried.push_back(name + ": workspace query failed with " + failure);
      continue;
    }
    if (bytes > max_workspace_bytes) {
      choice.tried.push_back(name + ": needs " + bytes_text(bytes) + " of workspace, over the " +
                             bytes_text(max_workspace_bytes) + " limit");
      continue;
    }
    char timed[48] = "";
    if (candidate.milliseconds >= 0) std::snprintf(timed, sizeof timed, ", timed %.3f ms", candidate.milliseconds);
    choice.tried.push_back(name + ": chosen, workspace " + bytes_text(bytes) + timed);
    choice.index = static_cast<int>(i);
    choice.workspace_bytes = bytes;
    return choice;
  }
  return choice;
}

std::string no_conv_algorithm_message(const std::string& layer_name, const std::string& direction,
                                      const std::string& shape, const ConvAlgorithmChoice& choice) {
  std::string message = "cuDNN has no usable " + direction + " convolution algorithm for Conv2d " +
                        (layer_name.empty() ? std::string("(unnamed)") : layer_name) + " " + shape + "; tried ";
  if (choice.tried.empty()) message += "nothing (the heuristic returned no candidates)";
  for (size_t i = 0; i < choice.tried.size(); ++i) message += (i ? "; " : "") + choice.tried[i];
  return message;
}

}  // namespace pneumo
