// CUDA kernels of BatchNorm2d, then their launchers.
//
// Reductions (per-channel sums over the rows = N*H*W of an NHWC tensor) are deterministic and
// use no atomics: channel_partial_sums_kernel gives each block a fixed chunk of rows; its
// 32x8 threads walk the channels in tiles of 32 (consecutive threads read consecutive channels,
// so loads coalesce) with 8 row lanes, accumulate in double, and add the 8 lanes in a fixed
// order into one partial per (block, channel). The finishing kernels then run one block per
// channel: each thread adds a fixed, strided subset of the partials in block order and a
// shared-memory tree with a fixed pairing adds those, so the result is the same on every run. Statistics use a shifted
// two-pass scheme (the CPU takes its shift from a pilot mean instead; kernels/batch_norm_math.h).
#include <algorithm>
#include <vector>

#include "engine/cuda_resources.h"
#include "engine/distributed.h"
#include "kernels/batch_norm_math.h"
#include "layers/batch_norm.h"

namespace pneumo {

namespace {

constexpr int kChannelLanes = 32;
constexpr int kRowLanes = 8;
constexpr int64_t kMaxReductionBlocks = 1024;
constexpr int64_t kMinBlockRows = 32;

enum class SumKind {
  Input,         // first = sum x
  ShiftedInput,  // first = sum (x - shift), second = sum (x - shift)^2
  Gradient,      // first = sum dy, second = sum dy * x_hat
};

struct ReductionShape {
  int64_t block_rows;
  int64_t blocks;
};

// Depends only on rows, so the summation order (and the result) is fixed for a given shape.
ReductionShape reduction_shape(int64_t rows) {
  const int64_t block_rows = std::max(kMinBlockRows, (rows + kMaxReductionBlocks - 1) / kMaxReductionBlocks);
  return {block_rows, (rows + block_rows - 1) / block_rows};
}

// partials (blocks, 2, C). `center` is the shift (ShiftedInput) or the mean (Gradient).
template <SumKind kind>
__global__ void channel_partial_sums_kernel(double* partials, const float* input, const float* output_gradient,
                                            const float* center, const float* inv_std, int64_t rows, int64_t C,
                                            int64_t block_rows) {
  __shared__ double shared_first[kRowLanes][kChannelLanes];
  __shared__ double shared_second[kRowLanes][kChannelLanes];
  const int channel_lane = threadIdx.x, row_lane = threadIdx.y;
  const int64_t row_begin = blockIdx.x * block_rows;
  const int64_t row_end = min(rows, row_begin + block_rows);
  double* partial = partials + blockIdx.x * 2 * C;
  for (int64_t tile = 0; tile < C; tile += kChannelLanes) {
    const int64_t c = tile + channel_lane;
    double first = 0.0, second = 0.0;
    if (c < C) {
      for (int64_t row = row_begin + row_lane; row < row_end; row += kRowLanes) {
        const float x = input[row * C + c];
        if (kind == SumKind::Input) {
          first += x;
        } else if (kind == SumKind::ShiftedInput) {
          const float d = x - center[c];
          first += d;
          second += static_cast<double>(d) * d;
        } else {
          const float dy = output_gradient[row * C + c];
          const float x_hat = batch_norm_normalized(x, center[c], inv_std[c]);
          first += dy;
          second += static_cast<double>(dy) * x_hat;
        }
      }
    }
    shared_first[row_lane][channel_lane] = first;
    shared_second[row_lane][channel_lane] = second;
    __syncthreads();
    if (row_lane == 0 && c < C) {
      double block_first = 0.0, block_second = 0.0;
      for (int lane = 0; lane < kRowLanes; ++lane) {
        block_first += shared_first[lane][channel_lane];
        block_second += shared_second[lane][channel_lane];
      }
      partial[c] = block_first;
      partial[C + c] = block_second;
    }
    __syncthreads();
  }
}

constexpr int kFinishThreads = 256;  // threads of one finishing block (one channel)

// Totals of channel blockIdx.x over all partials, returned to every thread of the block.
// Thread t adds partials t, t + kFinishThreads, ... in block order; a tree with a fixed pairing
// adds the kFinishThreads sums. The order depends only on `blocks`: deterministic.
__device__ void total_of_partials(const double* partials, int64_t blocks, int64_t C, double* first, double* second) {
  __shared__ double shared_first[kFinishThreads];
  __shared__ double shared_second[kFinishThreads];
  const int64_t c = blockIdx.x;
  double sum_first = 0.0, sum_second = 0.0;
  for (int64_t block = threadIdx.x; block < blocks; block += kFinishThreads) {
    sum_first += partials[block * 2 * C + c];
    sum_second += partials[block * 2 * C + C + c];
  }
  shared_first[threadIdx.x] = sum_first;
  shared_second[threadIdx.x] = sum_second;
  __syncthreads();
  for (int stride = kFinishThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      shared_first[threadIdx.x] += shared_first[threadIdx.x + stride];
      shared_second[threadIdx.x] += shared_second[threadIdx.x + stride];
    }
    __syncthreads();
  }
  *first = shared_first[0];
  *second = shared_second[0];
}

// totals (2, C) = the per-channel sums of all partials (first, then second), in block order.
// Grid (C), block (kFinishThreads).
__global__ void channel_totals_kernel(double* totals, const double* partials, int64_t blocks, int64_t C) {
  const int64_t c = blockIdx.x;
  double first, second;
  total_of_partials(partials, blocks, C, &first, &second);
  if (threadIdx.x != 0) return;
  totals[c] = first;
  totals[C + c] = second;
}

// The finishing kernels: one thread per channel, from the totals (2, C) over `rows` rows (every
// rank's rows when the totals were summed over the ranks).

// shift (C) = float(sum x / rows): the first pass's mean.
__global__ void finish_shift_kernel(float* shift, const double* totals, int64_t rows, int64_t C) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  shift[c] = static_cast<float>(totals[c] / static_cast<double>(rows));
}

// mean (C) holds the shift on entry and the batch mean on exit.
__global__ void finish_statistics_kernel(float* mean, float* inv_std, float* running_mean, float* running_var,
                                         const double* totals, int64_t rows, int64_t C, float momentum, float epsilon) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const double sum_d = totals[c], sum_d2 = totals[C + c];
  const double M = static_cast<double>(rows);
  const double batch_mean = batch_norm_mean(mean[c], sum_d, M);
  const double variance = batch_norm_biased_variance(sum_d, sum_d2, M);
  mean[c] = static_cast<float>(batch_mean);
  inv_std[c] = batch_norm_inverse_std(variance, epsilon);
  running_mean[c] = batch_norm_running_update(running_mean[c], batch_mean, momentum);
  running_var[c] = batch_norm_running_update(running_var[c], variance * M / (M - 1.0), momentum);
}

__global__ void inference_statistics_kernel(float* mean, float* inv_std, const float* running_mean,
                                            const float* running_var, int64_t C, float epsilon) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  mean[c] = running_mean[c];
  inv_std[c] = batch_norm_inverse_std(running_var[c], epsilon);
}

template <typename Index>
__global__ void normalize_kernel(float* output, const float* input, const float* mean, const float* inv_std,
                                 const float* gamma, const float* beta, Index count, Index C) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>()) {
    const Index c = i % C;
    output[i] = batch_norm_output(input[i], mean[c], gamma[c] * inv_std[c], beta[c]);
  }
}

// gamma_gradient, beta_gradient (C) += this rank's sum(dy * x_hat), sum(dy): totals (2, C).
__global__ void parameter_gradients_kernel(float* gamma_gradient, float* beta_gradient, const double* totals,
                                           int64_t C) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  gamma_gradient[c] += static_cast<float>(totals[C + c]);
  beta_gradient[c] += static_cast<float>(totals[c]);
}

// The per-channel coefficients of the input gradient from the totals (2, C) over `rows` rows:
// coefficients (3, C) = scale, mean_dy, mean_dy_x_hat.
__global__ void gradient_coefficients_kernel(float* coefficients, const float* gamma, const float* inv_std,
                                             const double* totals, int64_t rows, int64_t C, bool training) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const double M = static_cast<double>(rows);
  coefficients[c] = gamma[c] * inv_std[c];
  coefficients[C + c] = training ? static_cast<float>(totals[c] / M) : 0.0f;
  coefficients[2 * C + c] = training ? static_cast<float>(totals[C + c] / M) : 0.0f;
}

template <typename Index>
__global__ void input_gradient_kernel(float* input_gradient, const float* output_gradient, const float* input,
                                      const float* mean, const float* inv_std, const float* coefficients, Index count,
                                      Index C) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>()) {
    const Index c = i % C;
    const float x_hat = batch_norm_normalized(input[i], mean[c], inv_std[c]);
    input_gradient[i] += batch_norm_input_gradient(output_gradient[i], x_hat, coefficients[c], coefficients[C + c],
                                                   coefficients[2 * C + c]);
  }
}

// Scratch layout: partials (blocks, 2, C) doubles, totals (2, C) doubles, then coefficients
// (3, C) floats.
double* scratch_partials(Memory& scratch, int64_t blocks, int64_t C) {
  const size_t bytes =
      static_cast<size_t>((blocks + 1) * 2 * C) * sizeof(double) + static_cast<size_t>(3 * C) * sizeof(float);
  if (scratch.device() != Device::CUDA || scratch.bytes() < bytes) scratch = Memory(Device::CUDA, bytes);
  return static_cast<double*>(scratch.data());
}

template <SumKind kind>
void launch_partial_sums(double* partials, const float* input, const float* output_gradient, const float* center,
                         const float* inv_std, int64_t rows, int64_t C, const ReductionShape& shape) {
  channel_partial_sums_kernel<kind><<<static_cast<unsigned>(shape.blocks), dim3(kChannelLanes, kRowLanes)>>>(
      partials, input, output_gradient, center, inv_std, rows, C, shape.block_rows);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

int channel_grid(int64_t C) { return static_cast<int>((C + 255) / 256); }

// One block per channel for the totals.
unsigned totals_grid(int64_t C) {
  PNEUMO_REQUIRE(C > 0 && C <= INT32_MAX, "BatchNorm2d CUDA: channel count out of range");
  return static_cast<unsigned>(C);
}

// totals (2, C) from the partials; with a communicator of several ranks (synchronized batch
// norm) summed over the ranks: 2C doubles copied to the host, allreduced, copied back (the
// copies are explicit here and tiny next to the layer).
void channel_totals(double* totals, const double* partials, int64_t blocks, int64_t C, Communicator* communicator) {
  channel_totals_kernel<<<totals_grid(C), kFinishThreads>>>(totals, partials, blocks, C);
  PNEUMO_CUDA_CHECK_LAUNCH();
  if (!communicator || communicator->size() == 1) return;
  std::vector<double> host(static_cast<size_t>(2 * C));  // (2, C)
  const size_t bytes = host.size() * sizeof(double);
  copy_bytes(host.data(), Device::CPU, totals, Device::CUDA, bytes);
  communicator->allreduce_sum(host.data(), 2 * C);
  copy_bytes(totals, Device::CUDA, host.data(), Device::CPU, bytes);
}

}  // namespace

void batch_norm_training_statistics_cuda(float* mean, float* inv_std, float* running_mean, float* running_var,
                                         const float* input, int64_t rows, int64_t C, float momentum, float epsilon,
                                         Memory& scratch, Communicator* communicator) {
  PNEUMO_REQUIRE(rows >= 2, "batch_norm_training_statistics_cuda: needs at least two rows");
  const ReductionShape shape = reduction_shape(rows);
  double* partials = scratch_partials(scratch, shape.blocks, C);
  double* totals = partials + shape.blocks * 2 * C;  // (2, C)
  const int64_t all_rows = communicator && communicator->size() > 1 ? rows * communicator->size() : rows;
  // Pass 1: the mean, written into `mean` as the shift of pass 2.
  launch_partial_sums<SumKind::Input>(partials, input, nullptr, nullptr, nullptr, rows, C, shape);
  channel_totals(totals, partials, shape.blocks, C, communicator);
  finish_shift_kernel<<<channel_grid(C), 256>>>(mean, totals, all_rows, C);
  PNEUMO_CUDA_CHECK_LAUNCH();
  // Pass 2: sums of x - shift and their squares.
  launch_partial_sums<SumKind::ShiftedInput>(partials, input, nullptr, mean, nullptr, rows, C, shape);
  channel_totals(totals, partials, shape.blocks, C, communicator);
  finish_statistics_kernel<<<channel_grid(C), 256>>>(mean, inv_std, running_mean, running_var, totals, all_rows, C,
                                                     momentum, epsilon);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void batch_norm_inference_statistics_cuda(float* mean, float* inv_std, const float* running_mean,
                                          const float* running_var, int64_t C, float epsilon) {
  inference_statistics_kernel<<<channel_grid(C), 256>>>(mean, inv_std, running_mean, running_var, C, epsilon);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void batch_norm_normalize_cuda(float* output, const float* input, const float* mean, const float* inv_std,
                               const float* gamma, const float* beta, int64_t rows, int64_t C) {
  const int64_t count = rows * C;
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    normalize_kernel<Index>
        <<<blocks, 256>>>(output, input, mean, inv_std, gamma, beta, static_cast<Index>(count), static_cast<Index>(C));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void batch_norm_backward_cuda(float* input_gradient, float* gamma_gradient, float* beta_gradient,
                              const float* output_gradient, const float* input, const float* mean, const float* inv_std,
                              const float* gamma, int64_t rows, int64_t C, bool training, Memory& scratch,
                              Communicator* communicator) {
  const ReductionShape shape = reduction_shape(rows);
  double* partials = scratch_partials(scratch, shape.blocks, C);
  double* totals = partials + shape.blocks * 2 * C;                // (2, C)
  float* coefficients = reinterpret_cast<float*>(totals + 2 * C);  // (3, C)
  launch_partial_sums<SumKind::Gradient>(partials, input, output_gradient, mean, inv_std, rows, C, shape);
  // The parameter gradients take this rank's sums (the gradient allreduce adds the ranks').
  channel_totals(totals, partials, shape.blocks, C, nullptr);
  parameter_gradients_kernel<<<channel_grid(C), 256>>>(gamma_gradient, beta_gradient, totals, C);
  PNEUMO_CUDA_CHECK_LAUNCH();
  // The input gradient's coefficients take the whole batch's (synchronized in training only).
  const bool synchronized = training && communicator && communicator->size() > 1;
  if (synchronized) {
    std::vector<double> host(static_cast<size_t>(2 * C));  // (2, C)
    copy_bytes(host.data(), Device::CPU, totals, Device::CUDA, host.size() * sizeof(double));
    communicator->allreduce_sum(host.data(), 2 * C);
    copy_bytes(totals, Device::CUDA, host.data(), Device::CPU, host.size() * sizeof(double));
  }
  gradient_coefficients_kernel<<<channel_grid(C), 256>>>(
      coefficients, gamma, inv_std, totals, synchronized ? rows * communicator->size() : rows, C, training);
  PNEUMO_CUDA_CHECK_LAUNCH();
  if (!input_gradient) return;
  const int64_t count = rows * C;
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    input_gradient_kernel<Index><<<blocks, 256>>>(input_gradient, output_gradient, input, mean, inv_std, coefficients,
                                                  static_cast<Index>(count), static_cast<Index>(C));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void BatchNorm2d::forward_cuda(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output,
                               bool training) {
  const Tensor& input = *inputs[0];
  prepare_forward(context.device(), input, training);
  const int64_t rows = input.N() * input.H() * input.W(), C = channels_;
  if (training)
    batch_norm_training_statistics_cuda(saved_mean_.data(), saved_inv_std_.data(), running_mean_.data(),
                                        running_var_.data(), input.data(), rows, C, momentum_, epsilon_, cuda_scratch_,
                                        communicator_);
  else
    batch_norm_inference_statistics_cuda(saved_mean_.data(), saved_inv_std_.data(), running_mean_.data(),
                                         running_var_.data(), C, epsilon_);
  batch_norm_normalize_cuda(output.data(), input.data(), saved_mean_.data(), saved_inv_std_.data(), gamma_.data(),
                            beta_.data(), rows, C);
}

void BatchNorm2d::backward_cuda(Context& context, const std::vector<const Tensor*>& inputs, const Tensor&,
                                const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  require_saved(context.device());
  const Tensor& input = *inputs[0];
  const int64_t rows = input.N() * input.H() * input.W();
  batch_norm_backward_cuda(input_gradients[0] ? input_gradients[0]->data() : nullptr, gamma_gradient_.data(),
                           beta_gradient_.data(), output_gradient.data(), input.data(), saved_mean_.data(),
                           saved_inv_std_.data(), gamma_.data(), rows, channels_, saved_training_, cuda_scratch_,
                           communicator_);
}

}  // namespace pneumo
