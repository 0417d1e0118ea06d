// Conv2d: 2-D convolution, stride 1, 'same' zero padding, kernel 1x1 or 3x3, optional bias.
// Data flows input (N,H,W,C) -> output (N,H,W,K) with weight (K,R,S,C) = (out, kh, kw, in), the
// cuDNN NHWC filter layout. Forward overwrites the output; backward ACCUMULATES into the input
// gradient (when non-null), the weight gradient and the bias gradient.
// CPU path (this file's free functions, layers/conv2d.cpp): one explicit algorithm per direction
// (ConvAlgorithm: reference loops, im2col + GEMM, direct AVX2/AVX-512 kernels, Winograd F(2x2,3x3)
// and F(4x4,3x3)), forced for the process (PNEUMO_CONV_ALGO, --conv-algo) or chosen per shape by
// `auto`, which times the candidates once per shape (or reads the tuning file of `pneumo tune`).
// CUDA path: cuDNN (layers/conv2d_cuda.h, layers/conv2d.cu). See layers/conv2d.md, "Algorithms".
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layers/conv2d_cudnn_algorithm.h"
#include "layers/layer.h"

namespace pneumo {

// The sizes of one convolution call: input (N,H,W,C), weight (K,R,S,C) with R = S = kernel_size,
// output (N,H,W,K).
struct Conv2dGeometry {
  int64_t N = 0, H = 0, W = 0, C = 0, K = 0;
  int kernel_size = 1;
  int padding() const { return kernel_size / 2; }
  int64_t pixels() const { return N * H * W; }
};

// ---- CPU convolution algorithms -------------------------------------------------------------

// Auto: choose per shape and direction (timed once, or from the tuning file). The others are the
// concrete algorithms; an algorithm that cannot run a shape on this CPU throws pneumo::Error.
enum class ConvAlgorithm { Auto, Reference, Gemm, Direct, Winograd2, Winograd4 };
// The three computations of a convolution, each with its own algorithm.
enum class ConvDirection { Forward, InputGradient, WeightGradient };

const char* conv_algorithm_name(ConvAlgorithm algorithm);  // "reference", "winograd4", ...
const char* conv_direction_name(ConvDirection direction);  // "forward", "input-gradient", ...
// Throws pneumo::Error listing the names when `name` is not one of them.
ConvAlgorithm parse_conv_algorithm(const std::string& name);
// Every concrete algorithm (not Auto), in a fixed order: reference, gemm, direct, winograd2,
// winograd4.
std::vector<ConvAlgorithm> concrete_conv_algorithms();
std::string describe_geometry(const Conv2dGeometry& geometry);  // "8x128x128x64 -> 64, 3x3"

// Empty when `algorithm` (concrete) runs `direction` of `geometry` on this CPU (and under
// PNEUMO_CPU_ISA); otherwise why not, e.g. "winograd4 runs 3x3 convolutions only".
std::string conv_algorithm_unsupported_reason(ConvAlgorithm algorithm, ConvDirection direction,
                                              const Conv2dGeometry& geometry);

// The algorithms the CPU Conv2d layers run unless a layer sets its own: a preference list, the
// first entry that can run a layer's shape and direction is used (Auto always can); when none can,
// the layer throws with every entry's reason. A single name is strict: "--conv-algo winograd4"
// fails on a 1x1 layer, "--conv-algo winograd4,direct,gemm" uses Winograd where it can.
// Initially PNEUMO_CONV_ALGO (read on first use), else {Direct, Gemm}: a fixed rule per shape, so
// two runs compute the same (auto's timing can choose differently in each process). The CLI's
// --conv-algo sets it, with `origin` "--conv-algo".
std::vector<ConvAlgorithm> default_conv_algorithms();
void set_default_conv_algorithms(const std::vector<ConvAlgorithm>& algorithms,
                                 const std::string& origin = "set_default_conv_algorithms");
// Where the list comes from, with the list: "the default direct,gemm", "PNEUMO_CONV_ALGO=auto",
// "--conv-algo winograd4,direct,gemm".
std::string default_conv_algorithms_origin();
// "winograd4,direct" -> {Winograd4, Direct}; throws pneumo::Error on an unknown or empty name.
std::vector<ConvAlgorithm> parse_conv_algorithms(const std::string& names);
std::string conv_algorithms_name(const std::vector<ConvAlgorithm>& algorithms);  // "a,b"
// The first of `preferences` that runs `direction` of `geometry` (Auto if reached), or throws
// pneumo::Error naming the shape and every preference's reason.
ConvAlgorithm first_runnable_conv_algorithm(const std::vector<ConvAlgorithm>& preferences, ConvDirection direction,
                                            const Conv2dGeometry& geometry);
// When on, every Conv2d's choice is printed to stderr when first made, once per layer, direction
// and shape (not batch): "conv: NAME DIRECTION SHAPE ALGORITHM WHY", WHY as in
// ConvAlgorithmDecision (forced, first runnable of a list, auto's tuning file or its timings).
// The CLI's --show-conv-algos (or PNEUMO_CONV_ALGO_REPORT=1) sets it.
void set_conv_algorithm_report(bool report);

// auto's memory: one choice per (direction, shape, threads, instruction set). On first use it is
// filled from the tuning file (PNEUMO_CONV_TUNING, default ~/.cache/pneumo/conv-tuning.txt) when
// it exists; a shape not found there is timed: each supported algorithm but reference runs twice
// on the layer's real data and the faster second run wins. A file entry whose algorithm cannot
// run its shape is timed again, and said on stderr once per entry (file, entry, reason).
struct ConvTuningRecord {
  ConvDirection direction;
  Conv2dGeometry geometry;
  int threads;
  std::string isa;
  ConvAlgorithm algorithm;
  double milliseconds;     // the winner's time
  std::string source;      // "timed" or the tuning file's path
  std::string candidates;  // "direct 4.1 ms, gemm 9.3 ms, ..." when timed
};
// auto's answer for one call and what it went by: the record of this shape, of the same layer at
// another batch size (record.geometry.N differs: after a run's first step nothing is timed
// again), or of timing each candidate with run_candidate now (timed_now).
struct ConvAutoChoice {
  ConvTuningRecord record;
  bool timed_now = false;
};
ConvAutoChoice conv_auto_choice(ConvDirection direction, const Conv2dGeometry& geometry,
                                const std::function<void(ConvAlgorithm)>& run_candidate);
// conv_auto_choice(...).record.algorithm.
ConvAlgorithm conv_auto_algorithm(ConvDirection direction, const Conv2dGeometry& geometry,
                                  const std::function<void(ConvAlgorithm)>& run_candidate);
std::vector<ConvTuningRecord> conv_tuning_records();
void clear_conv_tuning(bool read_tuning_file);  // forget every choice; whether to read the file
// Adds the records of a tuning file (a missing file adds none), replacing those of the same key:
// a training run reloads the choices it saved so that a resumed run computes the same. Throws a
// one-line pneumo::Error naming the file (quoted) when it is a folder, FIFO or device, larger
// than 1 MiB, or has a malformed line (its number and text, escaped); so does auto's own read.
void load_conv_tuning_file(const std::string& path);
std::string conv_tuning_file_path();
// Writes every record (the file's previous records for other shapes are kept). Throws
// pneumo::Error naming the file when it cannot be written.
void write_conv_tuning_file(const std::string& path);

// output (N,H,W,K) = conv(input (N,H,W,C), weight (K,R,S,C)) + bias (K); OVERWRITES output.
// bias may be null. `algorithm` is concrete (throws when it cannot run the shape). `scratch` is
// a grow-only host buffer reused between calls (im2col columns, padded input, packed filter).
// `prepared`: null, or the filter conv2d_prepare_filter_cpu made for this algorithm from this
// weight (constant weights), which is then read instead of preparing it again.
void conv2d_forward_cpu(float* output, const float* input, const float* weight, const float* bias,
                        const Conv2dGeometry& geometry, ConvAlgorithm algorithm, std::vector<float>& scratch,
                        const float* prepared = nullptr);

// The forward's filter as `algorithm` reads it, made ahead of the run: the Winograd transform U
// ((m+2)^2, K/OB, C, OB) or the direct kernels' packed layout (K*R*S*C). 0 floats for reference
// and gemm, which read the weight as it is, and for the one-channel direct kernel.
int64_t conv2d_prepared_filter_floats(const Conv2dGeometry& geometry, ConvAlgorithm algorithm);
// prepared (conv2d_prepared_filter_floats) = that filter, from weight (K,R,S,C). Threaded.
void conv2d_prepare_filter_cpu(float* prepared, const float* weight, const Conv2dGeometry& geometry,
                               ConvAlgorithm algorithm);

// input_gradient (N,H,W,C) += d/d input given output_gradient (N,H,W,K). ACCUMULATES.
void conv2d_input_gradient_cpu(float* input_gradient, const float* output_gradient, const float* weight,
                               const Conv2dGeometry& geometry, ConvAlgorithm algorithm, std::vector<float>& scratch);

// weight_gradient (K,R,S,C) += d/d weight and bias_gradient (K) += d/d bias (when non-null),
// given output_gradient (N,H,W,K) and the forward's input (N,H,W,C). ACCUMULATES.
void conv2d_weight_gradient_cpu(float* weight_gradient, float* bias_gradient, const float* output_gradient,
                                const float* input, const Conv2dGeometry& geometry, ConvAlgorithm algorithm,
                                std::vector<float>& scratch);

// Floats of `scratch` that `algorithm` grows in `direction` for this geometry (padded copies,
// im2col columns, packed or transformed filters, per-thread partial sums). Mirrors the three
// functions above; the memory budget (layers/network.h) is built on it.
int64_t conv2d_cpu_scratch_floats(const Conv2dGeometry& geometry, ConvDirection direction, ConvAlgorithm algorithm);
// Every CPU Conv2d of a thread shares one grow-only scratch buffer (the layers run one after
// another), so it is as large as the largest single need. Its size, and a release (tests).
int64_t conv2d_cpu_shared_scratch_capacity();
void conv2d_release_cpu_scratch();

class Conv2dCudaPlans;  // cuDNN descriptors and algorithms per input shape (layers/conv2d.cu)

// A CPU Conv2d's algorithm for one direction of one input shape, and why: "forced (--conv-algo
// winograd4)", "first runnable of the default direct,gemm (direct forward needs ...)",
// "auto: timed now: direct 4.10 ms, gemm 9.30 ms", "auto: tuning file PATH (2.100 ms)", ...
struct ConvAlgorithmDecision {
  Conv2dGeometry geometry;
  ConvAlgorithm algorithm;  // concrete
  std::string reason;
};

class Conv2d : public Layer {
 public:
  // kernel_size must be 1 or 3; throws pneumo::Error otherwise.
  Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, bool bias);

  std::string kind() const override { return "Conv2d"; }
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  int64_t forward_flops(const std::vector<Shape>& inputs) const override;
  // Backward reads the input and the weights, never the output.
  bool backward_reads_output() const override { return false; }
  std::vector<ParameterSpec> parameter_specs() const override;
  void bind_parameters(const ParameterStore& store, const std::string& prefix) override;

  // CUDA only: let cuDNN use TF32 tensor cores (faster, ~1e-3 relative error). Off by default, so
  // the GPU computes in full fp32 like the CPU path.
  void set_allow_tf32(bool allow);
  // CUDA only: how cuDNN's algorithm is chosen per shape (heuristic, find = timed like PyTorch's
  // cudnn.benchmark, deterministic = the same bits every run); layers/conv2d_cudnn_algorithm.h.
  void set_cudnn_search(CudnnSearch search) { cudnn_search_ = search; }
  void configure(const LayerSettings& settings) override {
    set_allow_tf32(settings.allow_tf32);
    set_cudnn_search(settings.cudnn_search);
  }
  CudnnSearch cudnn_search() const { return cudnn_search_; }
  // CPU only: run this layer's `direction` (or every direction) with `algorithm` (Auto
  // included) instead of default_conv_algorithms(); throws at run time if it cannot.
  void set_conv_algorithm(ConvDirection direction, ConvAlgorithm algorithm) {
    algorithms_[static_cast<int>(direction)] = algorithm;
  }
  void set_conv_algorithm(ConvAlgorithm algorithm) {
    for (auto& chosen : algorithms_) chosen = algorithm;
  }
  bool allow_tf32() const { return allow_tf32_; }

  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  int kernel_size() const { return kernel_size_; }
  bool has_bias() const { return has_bias_; }
  // CPU: the largest conv2d_cpu_scratch_floats of the directions a training step runs, with the
  // algorithms this layer would use (auto: the hungriest it may pick); CUDA: 0 (cuDNN's workspace
  // is the context's, shared by every layer).
  int64_t scratch_floats(const std::vector<Shape>& inputs, Device device, bool input_gradient) const override;
  // The algorithm this layer (bound, on the CPU) would run `direction` with for `input` (N,H,W,C),
  // decided exactly as forward/backward decide it, and why. auto is resolved as at run time:
  // a shape it has no record of is timed now (and remembered), each candidate on random data of
  // the real shape with this layer's weights. Throws, naming the layer, where the run would.
  ConvAlgorithmDecision explain_algorithm(ConvDirection direction, const Shape& input) const;
  // Constant weights (Layer::set_constant_weights): the CPU forward prepares its filter
  // (conv2d_prepare_filter_cpu) once per algorithm and keeps it in `prepared_`.
  void set_constant_weights(bool constant) override;
  // Floats kept for constant weights now (0 when off, or before the first forward).
  int64_t prepared_filter_floats() const { return static_cast<int64_t>(prepared_.size()); }

 protected:
  PNEUMO_LAYER_BACKENDS  // forward_cpu, backward_cpu (+ forward_cuda, backward_cuda): layers/layer.h
      std::vector<HeldTensor>
      held_tensors() const override;

 private:
  Conv2dGeometry geometry_for(const Shape& input) const;
  // The layer's own algorithm for `direction`, else the first of default_conv_algorithms() that
  // runs the shape (Auto unresolved); throws, naming the layer, when none can.
  ConvAlgorithm preferred_algorithm(ConvDirection direction, const Conv2dGeometry& geometry) const;
  // The concrete algorithm for a direction: the layer's or the process's choice, auto resolved
  // (timing `run_candidate` when the shape is new); why, into *reason when non-null.
  ConvAlgorithm resolve_algorithm(ConvDirection direction, const Conv2dGeometry& geometry,
                                  const std::function<void(ConvAlgorithm)>& run_candidate,
                                  std::string* reason = nullptr) const;
  // auto's run_candidate for `direction` on these operands: a candidate writes the forward into
  // `output` (which the real run overwrites) and the gradients into `trial` (the real ones
  // accumulate). input (N,H,W,C), output_gradient and output (N,H,W,K); weights: the layer's.
  std::function<void(ConvAlgorithm)> trial_runner(ConvDirection direction, const Conv2dGeometry& geometry,
                                                  const float* input, const float* output_gradient, float* output,
                                                  std::vector<float>& trial) const;

  int64_t in_channels_, out_channels_;
  int kernel_size_;
  bool has_bias_;
  bool allow_tf32_ = false;
  CudnnSearch cudnn_search_ = CudnnSearch::Heuristic;
  std::optional<ConvAlgorithm> algorithms_[3];  // per ConvDirection; unset: the default list
  Tensor weight_, weight_gradient_;             // views (K,R,S,C)
  Tensor bias_, bias_gradient_;                 // views (K); empty without bias
  std::string name_;  // the parameter prefix, e.g. "block1_1.conv1"; names the layer in errors
  std::shared_ptr<Conv2dCudaPlans> cuda_plans_;  // created on first CUDA call
  bool constant_weights_ = false;
  // Constant weights, CPU: the forward's filter prepared for prepared_algorithm_ (Auto: none
  // yet); conv2d_prepared_filter_floats of it, e.g. Winograd's U ((m+2)^2, K/OB, C, OB).
  std::vector<float> prepared_;
  ConvAlgorithm prepared_algorithm_ = ConvAlgorithm::Auto;
};

}  // namespace pneumo
