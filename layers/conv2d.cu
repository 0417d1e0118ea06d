// Conv2d on the GPU: cuDNN's legacy convolution API on NHWC tensors and a (K,R,S,C) NHWC filter.
// Descriptors and algorithms are built once per (geometry, allow_tf32) and cached; the workspace
// is the context's shared grow-only one. The bias gradient is a cuBLAS GEMV against a ones
// vector (Caffe's bias multiplier), which accumulates with beta = 1 like the cuDNN calls.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "engine/cuda_check.h"
#include "engine/cuda_resources.h"
#include "engine/memory.h"
#include "kernels/bf16_cuda.h"
#include "layers/conv2d_cudnn_algorithm.h"
#include "layers/conv2d_cuda.h"

namespace pneumo {

namespace {

struct Conv2dCudaPlan {
  CudnnTensorDescriptor input;   // (N,C,H,W) dims, NHWC layout
  CudnnTensorDescriptor output;  // (N,K,H,W) dims, NHWC layout
  CudnnTensorDescriptor bias;    // (1,K,1,1)
  CudnnFilterDescriptor filter;  // (K,C,R,S) dims, NHWC layout = (K,R,S,C) in memory
  CudnnConvolutionDescriptor convolution;
  cudnnConvolutionFwdAlgo_t forward_algorithm{};
  cudnnConvolutionBwdDataAlgo_t backward_data_algorithm{};
  cudnnConvolutionBwdFilterAlgo_t backward_filter_algorithm{};
  cudnnMathType_t forward_math{}, backward_data_math{}, backward_filter_math{};
  size_t forward_workspace = 0, backward_data_workspace = 0, backward_filter_workspace = 0;
  Memory ones;  // (N*H*W) ones for the bias-gradient GEMV; allocated on first use
};

// Algorithms needing more workspace than this are passed over: the workspace is shared by the
// whole network and never shrinks.
constexpr size_t kMaxWorkspaceBytes = size_t{1} << 30;

ConvAlgorithmMath algorithm_math(cudnnMathType_t math) {
  switch (math) {
    case CUDNN_FMA_MATH: return ConvAlgorithmMath::Fma;
    case CUDNN_TENSOR_OP_MATH: return ConvAlgorithmMath::TensorOp;
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return ConvAlgorithmMath::TensorOpConversion;
    default: return ConvAlgorithmMath::Default;
  }
}

// The math type the descriptor carries while running a candidate: its own with TF32 allowed,
// full fp32 (FMA) otherwise.
cudnnMathType_t math_for(cudnnMathType_t candidate_math, bool allow_tf32) {
  return allow_tf32 ? candidate_math : CUDNN_FMA_MATH;
}

std::string geometry_string(const Conv2dGeometry& g) {
  return "input (" + std::to_string(g.N) + "," + std::to_string(g.H) + "," + std::to_string(g.W) + "," +
         std::to_string(g.C) + ") K=" + std::to_string(g.K) + " kernel=" + std::to_string(g.kernel_size);
}

int to_int(int64_t value, const char* what) {
  PNEUMO_REQUIRE(value > 0 && value <= INT_MAX,
                 std::string("Conv2d CUDA: ") + what + " does not fit cuDNN's int dimensions");
  return static_cast<int>(value);
}

// The three directions differ only in their cuDNN entry points and algorithm enums; each is a
// traits struct for choose_algorithm below.
struct ForwardDirection {
  using Algorithm = cudnnConvolutionFwdAlgo_t;
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  static constexpr const char* kName = "forward";
  static cudnnStatus_t max_count(cudnnHandle_t cudnn, int* count) {
    return cudnnGetConvolutionForwardAlgorithmMaxCount(cudnn, count);
  }
  static cudnnStatus_t heuristic(cudnnHandle_t cudnn, const Conv2dCudaPlan& plan, int count, int* returned,
                                 Perf* results) {
    return cudnnGetConvolutionForwardAlgorithm_v7(cudnn, plan.input.get(), plan.filter.get(), plan.convolution.get(),
                                                  plan.output.get(), count, returned, results);
  }
  static cudnnStatus_t find(cudnnHandle_t cudnn, const Conv2dCudaPlan& plan, int count, int* returned, Perf* results) {
    return cudnnFindConvolutionForwardAlgorithm(cudnn, plan.input.get(), plan.filter.get(), plan.convolution.get(),
                                                plan.output.get(), count, returned, results);
  }
  static cudnnStatus_t workspace(cudnnHandle_t cudnn, const Conv2dCudaPlan& plan, Algorithm algorithm, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(cudnn, plan.input.get(), plan.filter.get(), plan.convolution.get(),
                                                   plan.output.get(), algorithm, bytes);
  }
  static const char* algorithm_name(Algorithm algorithm) {
    static const char* const names[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
                                        "WINOGRAD",      "WINOGRAD_NONFUSED"};
    const int index = static_cast<int>(algorithm);
    return index >= 0 && index < 8 ? names[index] : "FWD_ALGO";
  }
};

struct BackwardDataDirection {
  using Algorithm = cudnnConvolutionBwdDataAlgo_t;
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  static constexpr const char* kName = "backward-data";
  static cudnnStatus_t max_count(cudnnHandle_t cudnn, int* count) {
    return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnn, count);
  }
  static cudnnStatus_t heuristic(cudnnHandle_t cudnn, const Conv2dCudaPlan& plan, int count, int* returned,
                                 Perf* results) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnn, plan.filter.get(), plan.output.get(),
                                                       plan.convolution.get(), plan.input.get(), count, returned,
                                                       results);
  }
  static cudnnStatus_t find(cudnnHandle_t cudnn, const Conv2dCudaPlan& plan, int count, int* returned, Perf* results) {
    return cudnnFindConvolutionBackwardDataAlgorithm(cudnn, plan.filter.get(), plan.output.get(),
                                                     plan.convolution.get(), plan.input.get(), count, returned,
                                                     results);
  }
  static cudnnStatus_t workspace(cudnnHandle_t cudnn, const Conv2dCudaPlan& plan, Algorithm algorithm, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn, plan.filter.get(), plan.output.get(),
                                                        plan.convolution.get(), plan.input.get(), algorithm, bytes);
  }
  static const char* algorithm_name(Algorithm algorithm) {
    static const char* const names[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    const int index = static_cast<int>(algorithm);
    return index >= 0 && index < 6 ? names[index] : "BWD_DATA_ALGO";
  }
};

struct BackwardFilterDirection {
  using Algorithm = cudnnConvolutionBwdFilterAlgo_t;
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  static constexpr const char* kName = "backward-filter";
  static cudnnStatus_t max_count(cudnnHandle_t cudnn, int* count) {
    return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnn, count);
  }
  static cudnnStatus_t heuristic(cudnnHandle_t cudnn, const Conv2dCudaPlan& plan, int count, int* returned,
                                 Perf* results) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnn, plan.input.get(), plan.output.get(),
                                                         plan.convolution.get(), plan.filter.get(), count, returned,
                                                         results);
  }
  static cudnnStatus_t find(cudnnHandle_t cudnn, const Conv2dCudaPlan& plan, int count, int* returned, Perf* results) {
    return cudnnFindConvolutionBackwardFilterAlgorithm(cudnn, plan.input.get(), plan.output.get(),
                                                       plan.convolution.get(), plan.filter.get(), count, returned,
                                                       results);
  }
  static cudnnStatus_t workspace(cudnnHandle_t cudnn, const Conv2dCudaPlan& plan, Algorithm algorithm, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn, plan.input.get(), plan.output.get(),
                                                          plan.convolution.get(), plan.filter.get(), algorithm, bytes);
  }
  static const char* algorithm_name(Algorithm algorithm) {
    static const char* const names[] = {"ALGO_0",    "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                        "FFT_TILING"};
    const int index = static_cast<int>(algorithm);
    return index >= 0 && index < 7 ? names[index] : "BWD_FILTER_ALGO";
  }
};

// What one direction of a plan runs with.
template <typename Direction>
struct ChosenAlgorithm {
  typename Direction::Algorithm algorithm{};
  cudnnMathType_t math{};
  size_t workspace = 0;
};

// Asks cuDNN for its ranked candidates (the heuristic, or with CudnnSearch::Find every
// algorithm timed on this shape), then takes the first that is usable (choose_conv_algorithm:
// status, math, determinism when asked, workspace query, workspace limit). The descriptor's math
// type is the candidate's while its workspace is queried and `requested_math` again on return.
// Throws, naming the layer, the shape and every candidate tried, when none is usable.
// A find runs once per (direction, shape, TF32) in a process: layers of the same shape share it,
// and each is reported on stderr with the times (bounded: cuDNN times each algorithm once).
template <typename Direction>
ChosenAlgorithm<Direction> choose_algorithm(Conv2dCudaPlan& plan, cudnnHandle_t cudnn, bool allow_tf32,
                                            cudnnMathType_t requested_math, const std::string& layer_name,
                                            const std::string& shape, CudnnSearch search) {
  static std::mutex found_mutex;
  static std::map<std::string, ChosenAlgorithm<Direction>> found;  // by shape: finds already run
  if (search == CudnnSearch::Find) {
    std::lock_guard<std::mutex> lock(found_mutex);
    const auto known = found.find(shape);
    if (known != found.end()) return known->second;
  }
  int count = 0, returned = 0;
  PNEUMO_CUDNN_CHECK(Direction::max_count(cudnn, &count));
  std::vector<typename Direction::Perf> results(static_cast<size_t>(std::max(count, 1)));
  const auto find_start = std::chrono::steady_clock::now();
  if (search == CudnnSearch::Find)
    PNEUMO_CUDNN_CHECK(Direction::find(cudnn, plan, count, &returned, results.data()));
  else
    PNEUMO_CUDNN_CHECK(Direction::heuristic(cudnn, plan, count, &returned, results.data()));
  results.resize(static_cast<size_t>(std::max(0, std::min(returned, count))));

  std::vector<ConvAlgorithmCandidate> candidates;
  for (const auto& perf : results) {
    ConvAlgorithmCandidate candidate;
    candidate.algorithm = static_cast<int>(perf.algo);
    candidate.algorithm_name = Direction::algorithm_name(perf.algo);
    candidate.heuristic_ok = perf.status == CUDNN_STATUS_SUCCESS;
    candidate.heuristic_status = cudnnGetErrorString(perf.status);
    candidate.math = algorithm_math(perf.mathType);
    candidate.deterministic = perf.determinism == CUDNN_DETERMINISTIC;
    if (search == CudnnSearch::Find) candidate.milliseconds = perf.time;
    candidates.push_back(candidate);
  }
  const ConvWorkspaceQuery query = [&](const ConvAlgorithmCandidate& candidate, size_t* bytes) {
    const auto& perf = results[static_cast<size_t>(&candidate - candidates.data())];
    PNEUMO_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution.get(), math_for(perf.mathType, allow_tf32)));
    const cudnnStatus_t status = Direction::workspace(cudnn, plan, perf.algo, bytes);
    PNEUMO_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution.get(), requested_math));
    return status == CUDNN_STATUS_SUCCESS ? std::string() : std::string(cudnnGetErrorString(status));
  };
  const ConvAlgorithmChoice choice =
      choose_conv_algorithm(candidates, allow_tf32, kMaxWorkspaceBytes, query, search == CudnnSearch::Deterministic);
  if (choice.index < 0) throw Error(no_conv_algorithm_message(layer_name, Direction::kName, shape, choice));
  const auto& perf = results[static_cast<size_t>(choice.index)];
  const ChosenAlgorithm<Direction> chosen{perf.algo, math_for(perf.mathType, allow_tf32), choice.workspace_bytes};
  if (search == CudnnSearch::Find) {
    const double milliseconds =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - find_start).count();
    std::fprintf(stderr, "cudnn find: %s %s: %s (%zu algorithms timed in %.0f ms)\n", Direction::kName, shape.c_str(),
                 choice.tried.back().c_str(), results.size(), milliseconds);
    std::lock_guard<std::mutex> lock(found_mutex);
    found.emplace(shape, chosen);
  }
  return chosen;
}

// bf16: input, filter and output descriptors in bfloat16 with fp32 compute (cuDNN's
// BFLOAT16_CONFIG), tensor-core math allowed (TF32 does not apply to bf16 data).
void build_plan(Conv2dCudaPlan& plan, cudnnHandle_t cudnn, const Conv2dGeometry& g, bool allow_tf32, CudnnSearch search,
                const std::string& layer_name, bool bf16) {
  const int N = to_int(g.N, "N"), H = to_int(g.H, "H"), W = to_int(g.W, "W");
  const int C = to_int(g.C, "C"), K = to_int(g.K, "K"), R = g.kernel_size, pad = g.padding();
  to_int(g.pixels() * std::max(g.C, g.K), "tensor size");
  const cudnnDataType_t data = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  PNEUMO_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan.input.get(), CUDNN_TENSOR_NHWC, data, N, C, H, W));
  PNEUMO_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan.output.get(), CUDNN_TENSOR_NHWC, data, N, K, H, W));
  PNEUMO_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan.bias.get(), CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, K, 1, 1));
  PNEUMO_CUDNN_CHECK(cudnnSetFilter4dDescriptor(plan.filter.get(), data, CUDNN_TENSOR_NHWC, K, C, R, R));
  PNEUMO_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(plan.convolution.get(), pad, pad, 1, 1, 1, 1,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  allow_tf32 = allow_tf32 || bf16;  // from here: whether tensor-core math may be used
  const cudnnMathType_t requested_math = allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  PNEUMO_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution.get(), requested_math));
  const std::string shape = geometry_string(g) + (bf16         ? " (bf16, fp32 compute)"
                                                  : allow_tf32 ? " (TF32 allowed)"
                                                               : " (fp32)");

  const auto forward =
      choose_algorithm<ForwardDirection>(plan, cudnn, allow_tf32, requested_math, layer_name, shape, search);
  plan.forward_algorithm = forward.algorithm;
  plan.forward_math = forward.math;
  plan.forward_workspace = forward.workspace;
  const auto backward_data =
      choose_algorithm<BackwardDataDirection>(plan, cudnn, allow_tf32, requested_math, layer_name, shape, search);
  plan.backward_data_algorithm = backward_data.algorithm;
  plan.backward_data_math = backward_data.math;
  plan.backward_data_workspace = backward_data.workspace;
  const auto backward_filter =
      choose_algorithm<BackwardFilterDirection>(plan, cudnn, allow_tf32, requested_math, layer_name, shape, search);
  plan.backward_filter_algorithm = backward_filter.algorithm;
  plan.backward_filter_math = backward_filter.math;
  plan.backward_filter_workspace = backward_filter.workspace;
}

}  // namespace

class Conv2dCudaPlans {
 public:
  explicit Conv2dCudaPlans(std::string layer_name) : layer_name_(std::move(layer_name)) {}
  void set_search(CudnnSearch search) { search_ = search; }
  Conv2dCudaPlan& get(CudaResources& resources, const Conv2dGeometry& g, bool allow_tf32, bool bf16) {
    const auto key =
        std::make_tuple(g.N, g.H, g.W, g.C, g.K, g.kernel_size, allow_tf32, static_cast<int>(search_), bf16);
    auto found = plans_.find(key);
    if (found != plans_.end()) return *found->second;
    auto plan = std::make_unique<Conv2dCudaPlan>();
    build_plan(*plan, resources.cudnn(), g, allow_tf32, search_, layer_name_, bf16);
    return *plans_.emplace(key, std::move(plan)).first->second;
  }

 private:
  std::string layer_name_;  // for errors, e.g. "block1_1.conv1"
  CudnnSearch search_ = CudnnSearch::Heuristic;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int, bool, int, bool>,
           std::unique_ptr<Conv2dCudaPlan>>
      plans_;
};

std::shared_ptr<Conv2dCudaPlans> make_conv2d_cuda_plans(const std::string& layer_name) {
  return std::make_shared<Conv2dCudaPlans>(layer_name);
}

void set_conv2d_cuda_search(Conv2dCudaPlans& plans, CudnnSearch search) { plans.set_search(search); }

namespace {

// The bf16 operands of one call, rounded into the context's staging area (bfloat16 bits).
struct Bf16Staging {
  uint16_t* input;   // (N,H,W,C)
  uint16_t* weight;  // (K,R,S,C)
  uint16_t* output;  // (N,H,W,K): the forward's result or the output gradient
  uint16_t* result;  // (N,H,W,C) input gradient, then reused for the (K,R,S,C) weight gradient
};

Bf16Staging bf16_staging(CudaResources& resources, const Conv2dGeometry& g) {
  const int64_t input = g.pixels() * g.C, weight = g.K * g.kernel_size * g.kernel_size * g.C;
  const int64_t output = g.pixels() * g.K, result = std::max(input, weight);
  auto* base = static_cast<uint16_t*>(
      resources.staging(static_cast<size_t>(input + weight + output + result) * sizeof(uint16_t)));
  return {base, base + input, base + input + weight, base + input + weight + output};
}

}  // namespace

void conv2d_forward_cuda(Context& context, Conv2dCudaPlans& plans, const Conv2dGeometry& geometry, bool allow_tf32,
                         float* output, const float* input, const float* weight, const float* bias,
                         Precision precision) {
  CudaResources& resources = context.cuda();
  const bool bf16 = precision == Precision::Bf16;
  Conv2dCudaPlan& plan = plans.get(resources, geometry, allow_tf32, bf16);
  const float one = 1.0f, zero = 0.0f;
  void* workspace = plan.forward_workspace ? resources.workspace(plan.forward_workspace) : nullptr;
  PNEUMO_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution.get(), plan.forward_math));
  if (bf16) {
    const Bf16Staging staged = bf16_staging(resources, geometry);
    round_to_bf16_cuda(staged.input, input, geometry.pixels() * geometry.C);
    round_to_bf16_cuda(staged.weight, weight, geometry.K * geometry.kernel_size * geometry.kernel_size * geometry.C);
    // staged output (N,H,W,K) bf16 = conv(staged input, staged weight), fp32 accumulation
    PNEUMO_CUDNN_CHECK(cudnnConvolutionForward(resources.cudnn(), &one, plan.input.get(), staged.input,
                                               plan.filter.get(), staged.weight, plan.convolution.get(),
                                               plan.forward_algorithm, workspace, plan.forward_workspace, &zero,
                                               plan.output.get(), staged.output));
    // output (N,H,W,K) = float(staged output) + bias (K)
    bf16_to_float_add_bias_cuda(output, staged.output, bias, geometry.pixels(), geometry.K);
    return;
  }
  // output (N,H,W,K) = conv(input (N,H,W,C), weight (K,R,S,C))
  PNEUMO_CUDNN_CHECK(cudnnConvolutionForward(resources.cudnn(), &one, plan.input.get(), input, plan.filter.get(),
                                             weight, plan.convolution.get(), plan.forward_algorithm, workspace,
                                             plan.forward_workspace, &zero, plan.output.get(), output));
  // output (N,H,W,K) += bias (1,K,1,1), broadcast
  if (bias)
    PNEUMO_CUDNN_CHECK(cudnnAddTensor(resources.cudnn(), &one, plan.bias.get(), bias, &one, plan.output.get(), output));
  PNEUMO_CUDA_CHECK_LAUNCH();  // with PNEUMO_CUDA_SYNC=1, faults are reported here
}

void conv2d_backward_cuda(Context& context, Conv2dCudaPlans& plans, const Conv2dGeometry& geometry, bool allow_tf32,
                          float* input_gradient, float* weight_gradient, float* bias_gradient,
                          const float* output_gradient, const float* input, const float* weight, Precision precision) {
  CudaResources& resources = context.cuda();
  const bool bf16 = precision == Precision::Bf16;
  Conv2dCudaPlan& plan = plans.get(resources, geometry, allow_tf32, bf16);
  const float one = 1.0f, zero = 0.0f;
  const int64_t input_count = geometry.pixels() * geometry.C;
  const int64_t weight_count = geometry.K * geometry.kernel_size * geometry.kernel_size * geometry.C;
  // bf16: cuDNN reads rounded copies and writes bf16 gradients (beta = 0) into the staging
  // area, which are then added to the fp32 accumulators (accumulate_bf16_cuda).
  Bf16Staging staged{};
  if (bf16) {
    staged = bf16_staging(resources, geometry);
    round_to_bf16_cuda(staged.output, output_gradient, geometry.pixels() * geometry.K);
    round_to_bf16_cuda(staged.weight, weight, weight_count);
    round_to_bf16_cuda(staged.input, input, input_count);
  }
  const void* dy = bf16 ? static_cast<const void*>(staged.output) : output_gradient;
  if (input_gradient) {
    void* workspace = plan.backward_data_workspace ? resources.workspace(plan.backward_data_workspace) : nullptr;
    PNEUMO_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution.get(), plan.backward_data_math));
    // input_gradient (N,H,W,C) += conv_transpose(output_gradient (N,H,W,K), weight (K,R,S,C))
    PNEUMO_CUDNN_CHECK(cudnnConvolutionBackwardData(
        resources.cudnn(), &one, plan.filter.get(), bf16 ? static_cast<const void*>(staged.weight) : weight,
        plan.output.get(), dy, plan.convolution.get(), plan.backward_data_algorithm, workspace,
        plan.backward_data_workspace, bf16 ? &zero : &one, plan.input.get(),
        bf16 ? static_cast<void*>(staged.result) : input_gradient));
    if (bf16) accumulate_bf16_cuda(input_gradient, staged.result, input_count);
    PNEUMO_CUDA_CHECK_LAUNCH();
  }
  {
    void* workspace = plan.backward_filter_workspace ? resources.workspace(plan.backward_filter_workspace) : nullptr;
    PNEUMO_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution.get(), plan.backward_filter_math));
    // weight_gradient (K,R,S,C) += correlation of input (N,H,W,C) with output_gradient (N,H,W,K)
    PNEUMO_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
        resources.cudnn(), &one, plan.input.get(), bf16 ? static_cast<const void*>(staged.input) : input,
        plan.output.get(), dy, plan.convolution.get(), plan.backward_filter_algorithm, workspace,
        plan.backward_filter_workspace, bf16 ? &zero : &one, plan.filter.get(),
        bf16 ? static_cast<void*>(staged.result) : weight_gradient));
    if (bf16) accumulate_bf16_cuda(weight_gradient, staged.result, weight_count);
    PNEUMO_CUDA_CHECK_LAUNCH();
  }
  if (bias_gradient) {
    const int64_t pixels = geometry.pixels();
    if (plan.ones.bytes() == 0) {
      plan.ones = Memory(Device::CUDA, static_cast<size_t>(pixels) * sizeof(float));
      const std::vector<float> host_ones(static_cast<size_t>(pixels), 1.0f);
      copy_bytes(plan.ones.data(), Device::CUDA, host_ones.data(), Device::CPU,
                 plan.ones.bytes());  // once per input shape
    }
    // bias_gradient (K) += output_gradient (P,K)^T x ones (P). Column-major cuBLAS sees the
    // row-major (P,K) gradient as a (K,P) matrix with leading dimension K.
    PNEUMO_CUBLAS_CHECK(cublasSgemv(resources.cublas(), CUBLAS_OP_N, static_cast<int>(geometry.K),
                                    static_cast<int>(pixels), &one, output_gradient, static_cast<int>(geometry.K),
                                    static_cast<const float*>(plan.ones.data()), 1, &one, bias_gradient, 1));
    PNEUMO_CUDA_CHECK_LAUNCH();
  }
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void Conv2d::forward_cuda(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  const Tensor& input = *inputs[0];
  if (!cuda_plans_) cuda_plans_ = make_conv2d_cuda_plans(name_);
  cuda_plans_->set_search(cudnn_search_);
  conv2d_forward_cuda(context, *cuda_plans_, geometry_for(input.shape()), allow_tf32_, output.data(), input.data(),
                      weight_.data(), has_bias_ ? bias_.data() : nullptr, precision_);
}

void Conv2d::backward_cuda(Context& context, const std::vector<const Tensor*>& inputs, const Tensor&,
                           const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  const Tensor& input = *inputs[0];
  if (!cuda_plans_) cuda_plans_ = make_conv2d_cuda_plans(name_);
  cuda_plans_->set_search(cudnn_search_);
  conv2d_backward_cuda(context, *cuda_plans_, geometry_for(input.shape()), allow_tf32_,
                       input_gradients[0] ? input_gradients[0]->data() : nullptr, weight_gradient_.data(),
                       has_bias_ ? bias_gradient_.data() : nullptr, output_gradient.data(), input.data(),
                       weight_.data(), precision_);
}

}  // namespace pneumo
