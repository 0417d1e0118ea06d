#include "layers/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "engine/distributed.h"
#include "kernels/activation_math.h"
#include "kernels/batch_norm_math.h"

namespace pneumo {

namespace {

constexpr int64_t kRowsPerChunk = 256;    // smallest parallel_for chunk of rows, elementwise passes
constexpr int64_t kChannelTile = 64;      // channels summed together in float registers
constexpr int64_t kRowsPerFloatSum = 16;  // rows summed in float before adding into double
constexpr int64_t kPilotRows = 256;       // evenly spaced rows whose mean shifts the statistics

// Grow-only per-thread scratch for the block partials (no allocation per call in steady state).
double* partials_scratch(size_t count) {
  thread_local std::vector<double> scratch;
  if (scratch.size() < count) scratch.resize(count);
  return scratch.data();
}

// Per-channel sums over rows, in double, deterministic: the rows are cut into fixed blocks of
// about 16K elements (depending only on C, not on the thread count); each block's partial sums
// are computed by one thread and the partials are added in block order.
// add_block(row_begin, row_end, first, second) OVERWRITES first (C) and second (C) with the
// block's sums.
template <typename AddBlock>
void sum_over_rows(double* first, double* second, int64_t rows, int64_t C, const AddBlock& add_block) {
  const int64_t block_rows = std::max<int64_t>(1, 16384 / C);
  const int64_t blocks = (rows + block_rows - 1) / block_rows;
  double* partials = partials_scratch(static_cast<size_t>(blocks * 2 * C));  // (blocks, 2, C)
  parallel_for(blocks, 1, [&](int64_t block_begin, int64_t block_end) {
    for (int64_t block = block_begin; block < block_end; ++block) {
      double* partial = partials + block * 2 * C;
      add_block(block * block_rows, std::min(rows, (block + 1) * block_rows), partial, partial + C);
    }
  });
  std::fill(first, first + C, 0.0);
  std::fill(second, second + C, 0.0);
  for (int64_t block = 0; block < blocks; ++block) {
    const double* partial = partials + block * 2 * C;
    for (int64_t c = 0; c < C; ++c) {
      first[c] += partial[c];
      second[c] += partial[C + c];
    }
  }
}

// One block's sums over rows [row_begin, row_end) of a (rows, C) tensor, channel tile by channel
// tile: first (C) = sum f, second (C) = sum f * g with f = a - a_center, g = b - b_center per
// element (a, b are (rows, C); centers (C)). Runs of kRowsPerFloatSum rows are summed in float
// (vector registers), each run's sums then added into double, so rounding stays at float
// precision of 16 terms while the loop runs at float vector speed.
void block_product_sums(double* __restrict first, double* __restrict second, const float* __restrict a,
                        const float* __restrict a_center, const float* __restrict b, const float* __restrict b_center,
                        int64_t row_begin, int64_t row_end, int64_t C) {
  for (int64_t c0 = 0; c0 < C; c0 += kChannelTile) {
    const int64_t width = std::min(kChannelTile, C - c0);
    double first_tile[kChannelTile] = {}, second_tile[kChannelTile] = {};
    for (int64_t run = row_begin; run < row_end; run += kRowsPerFloatSum) {
      const int64_t run_end = std::min(row_end, run + kRowsPerFloatSum);
      float first_run[kChannelTile] = {}, second_run[kChannelTile] = {};
      for (int64_t row = run; row < run_end; ++row) {
        const float* a_row = a + row * C + c0;
        const float* b_row = b + row * C + c0;
        for (int64_t k = 0; k < width; ++k) {
          const float f = a_row[k] - a_center[c0 + k];
          const float g = b_row[k] - b_center[c0 + k];
          first_run[k] += f;
          second_run[k] += f * g;
        }
      }
      for (int64_t k = 0; k < width; ++k) {
        first_tile[k] += first_run[k];
        second_tile[k] += second_run[k];
      }
    }
    for (int64_t k = 0; k < width; ++k) {
      first[c0 + k] = first_tile[k];
      second[c0 + k] = second_tile[k];
    }
  }
}

}  // namespace

BatchNorm2d::BatchNorm2d(int64_t channels, float momentum, float epsilon)
    : channels_(channels), momentum_(momentum), epsilon_(epsilon) {
  if (channels < 1) throw Error("BatchNorm2d: channels must be positive, got " + std::to_string(channels));
  if (!(momentum >= 0.0f && momentum <= 1.0f))
    throw Error("BatchNorm2d: momentum must be in [0, 1], got " + std::to_string(momentum));
  if (!(epsilon > 0.0f)) throw Error("BatchNorm2d: epsilon must be positive, got " + std::to_string(epsilon));
}

Shape BatchNorm2d::output_shape(const std::vector<Shape>& inputs) const {
  require_input_count(*this, inputs);
  require_nhwc(inputs[0], "BatchNorm2d input");
  if (inputs[0][3] != channels_)
    throw Error("BatchNorm2d: expected " + std::to_string(channels_) + " channels, got input " +
                shape_string(inputs[0]));
  return inputs[0];
}

int64_t BatchNorm2d::forward_flops(const std::vector<Shape>& inputs) const {
  return 4 * shape_count(output_shape(inputs));
}

std::vector<ParameterSpec> BatchNorm2d::parameter_specs() const {
  return {{"gamma", {channels_}, Initializer::Ones, true},
          {"beta", {channels_}, Initializer::Zeros, true},
          {"running_mean", {channels_}, Initializer::Zeros, false},
          {"running_var", {channels_}, Initializer::Ones, false}};
}

void BatchNorm2d::bind_parameters(const ParameterStore& store, const std::string& prefix) {
  const ParameterEntry& gamma = store.entry(prefix + ".gamma");
  const ParameterEntry& beta = store.entry(prefix + ".beta");
  const ParameterEntry& running_mean = store.entry(prefix + ".running_mean");
  const ParameterEntry& running_var = store.entry(prefix + ".running_var");
  const Shape shape = {channels_};
  require_shape(gamma.value, shape, "BatchNorm2d gamma");
  require_shape(beta.value, shape, "BatchNorm2d beta");
  require_shape(running_mean.value, shape, "BatchNorm2d running_mean");
  require_shape(running_var.value, shape, "BatchNorm2d running_var");
  PNEUMO_REQUIRE(!gamma.gradient.empty() && !beta.gradient.empty(),
                 "BatchNorm2d " + prefix + ": gamma and beta must be trainable");
  gamma_ = gamma.value;
  beta_ = beta.value;
  gamma_gradient_ = gamma.gradient;
  beta_gradient_ = beta.gradient;
  running_mean_ = running_mean.value;
  running_var_ = running_var.value;
}

std::vector<Layer::HeldTensor> BatchNorm2d::held_tensors() const {
  return {{&gamma_, "gamma"},
          {&beta_, "beta"},
          {&gamma_gradient_, "gamma gradient"},
          {&beta_gradient_, "beta gradient"},
          {&running_mean_, "running_mean"},
          {&running_var_, "running_var"}};
}

void BatchNorm2d::prepare_forward(Device device, const Tensor& input, bool training) {
  if (training && input.N() * input.H() * input.W() < 2)
    throw Error("BatchNorm2d: training needs more than one value per channel, got input " +
                shape_string(input.shape()));
  if (saved_mean_.empty() || saved_mean_.device() != device) {
    saved_mean_ = Tensor(device, {channels_});
    saved_inv_std_ = Tensor(device, {channels_});
  }
  saved_training_ = training;
}

void BatchNorm2d::require_saved(Device device) const {
  if (saved_mean_.empty() || saved_mean_.device() != device)
    throw Error("BatchNorm2d: backward without a forward on this device");
}

void BatchNorm2d::forward_cpu(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output,
                              bool training) {
  const Tensor& input = *inputs[0];
  prepare_forward(context.device(), input, training);
  const int64_t rows = input.N() * input.H() * input.W(), C = channels_;
  if (training)
    batch_norm_training_statistics_cpu(saved_mean_.data(), saved_inv_std_.data(), running_mean_.data(),
                                       running_var_.data(), input.data(), rows, C, momentum_, epsilon_, communicator_);
  else
    batch_norm_inference_statistics_cpu(saved_mean_.data(), saved_inv_std_.data(), running_mean_.data(),
                                        running_var_.data(), C, epsilon_);
  batch_norm_normalize_cpu(output.data(), input.data(), saved_mean_.data(), saved_inv_std_.data(), gamma_.data(),
                           beta_.data(), rows, C, fused_slope_);
}

void BatchNorm2d::backward_cpu(Context& context, const std::vector<const Tensor*>& inputs, const Tensor&,
                               const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  require_saved(context.device());
  const Tensor& input = *inputs[0];
  const int64_t rows = input.N() * input.H() * input.W();
  batch_norm_backward_cpu(input_gradients[0] ? input_gradients[0]->data() : nullptr, gamma_gradient_.data(),
                          beta_gradient_.data(), output_gradient.data(), input.data(), saved_mean_.data(),
                          saved_inv_std_.data(), gamma_.data(), rows, channels_, saved_training_, communicator_);
}

void batch_norm_training_statistics_cpu(float* mean, float* inv_std, float* running_mean, float* running_var,
                                        const float* input, int64_t rows, int64_t C, float momentum, float epsilon,
                                        Communicator* communicator) {
  PNEUMO_REQUIRE(rows >= 2, "batch_norm_training_statistics_cpu: needs at least two rows");
  // Synchronized: this rank holds rows [first_row, first_row + rows) of global_rows.
  const bool synchronized = communicator && communicator->size() > 1;
  const int64_t global_rows = synchronized ? rows * communicator->size() : rows;
  const int64_t first_row = synchronized ? rows * communicator->rank() : 0;
  // The shift: the mean of up to kPilotRows evenly spaced rows, close to the batch mean, so the
  // one pass below over d = x - shift does not cancel catastrophically in sum d^2 - (sum d)^2/M.
  // Synchronized, each rank adds the pilot rows it holds and the partial sums are added over
  // the ranks: the same rows as one process with the whole batch.
  const int64_t pilot_rows = std::min(global_rows, kPilotRows);
  std::vector<float> shift(static_cast<size_t>(C), 0.0f);  // (C)
  {
    std::vector<double> pilot_sum(static_cast<size_t>(C), 0.0);  // (C)
    for (int64_t i = 0; i < pilot_rows; ++i) {
      const int64_t row = i * global_rows / pilot_rows - first_row;
      if (row < 0 || row >= rows) continue;
      const float* x = input + row * C;
      for (int64_t c = 0; c < C; ++c) pilot_sum[static_cast<size_t>(c)] += x[c];
    }
    if (synchronized) communicator->allreduce_sum(pilot_sum.data(), C);
    for (int64_t c = 0; c < C; ++c)
      shift[static_cast<size_t>(c)] =
          static_cast<float>(pilot_sum[static_cast<size_t>(c)] / static_cast<double>(pilot_rows));
  }
  // One pass: sums of d = x - shift and d^2.
  std::vector<double> sum(static_cast<size_t>(C)), sum_d2(static_cast<size_t>(C));  // (C) each
  const float* shift_data = shift.data();
  sum_over_rows(sum.data(), sum_d2.data(), rows, C,
                [&](int64_t row_begin, int64_t row_end, double* first, double* second) {
                  block_product_sums(first, second, input, shift_data, input, shift_data, row_begin, row_end, C);
                });
  if (synchronized) {
    std::vector<double> both(sum);  // (2C): sum, then sum_d2, in one allreduce
    both.insert(both.end(), sum_d2.begin(), sum_d2.end());
    communicator->allreduce_sum(both.data(), 2 * C);
    std::copy(both.begin(), both.begin() + C, sum.begin());
    std::copy(both.begin() + C, both.end(), sum_d2.begin());
  }
  const double M = static_cast<double>(global_rows);
  for (int64_t c = 0; c < C; ++c) {
    const double batch_mean = batch_norm_mean(shift[c], sum[c], M);
    const double variance = batch_norm_biased_variance(sum[c], sum_d2[c], M);
    mean[c] = static_cast<float>(batch_mean);
    inv_std[c] = batch_norm_inverse_std(variance, epsilon);
    running_mean[c] = batch_norm_running_update(running_mean[c], batch_mean, momentum);
    running_var[c] = batch_norm_running_update(running_var[c], variance * M / (M - 1.0), momentum);
  }
}

void batch_norm_inference_statistics_cpu(float* mean, float* inv_std, const float* running_mean,
                                         const float* running_var, int64_t C, float epsilon) {
  for (int64_t c = 0; c < C; ++c) {
    mean[c] = running_mean[c];
    inv_std[c] = batch_norm_inverse_std(running_var[c], epsilon);
  }
}

void batch_norm_normalize_cpu(float* output, const float* input, const float* mean, const float* inv_std,
                              const float* gamma, const float* beta, int64_t rows, int64_t C,
                              std::optional<float> fused_slope) {
  std::vector<float> scale(static_cast<size_t>(C));  // (C) gamma * inv_std
  for (int64_t c = 0; c < C; ++c) scale[c] = gamma[c] * inv_std[c];
  const float* scale_data = scale.data();
  if (fused_slope) {
    const float slope = *fused_slope;
    parallel_for(rows, kRowsPerChunk, [=](int64_t row_begin, int64_t row_end) {
      for (int64_t row = row_begin; row < row_end; ++row) {
        const float* x = input + row * C;
        float* y = output + row * C;
        for (int64_t c = 0; c < C; ++c)
          y[c] = leaky_relu(batch_norm_output(x[c], mean[c], scale_data[c], beta[c]), slope);
      }
    });
    return;
  }
  parallel_for(rows, kRowsPerChunk, [=](int64_t row_begin, int64_t row_end) {
    for (int64_t row = row_begin; row < row_end; ++row) {
      const float* x = input + row * C;
      float* y = output + row * C;
      for (int64_t c = 0; c < C; ++c) y[c] = batch_norm_output(x[c], mean[c], scale_data[c], beta[c]);
    }
  });
}

void batch_norm_backward_cpu(float* input_gradient, float* gamma_gradient, float* beta_gradient,
                             const float* output_gradient, const float* input, const float* mean, const float* inv_std,
                             const float* gamma, int64_t rows, int64_t C, bool training, Communicator* communicator) {
  // Synchronized (training only: inference statistics do not depend on the batch): the two
  // per-channel sums are those of all ranks' rows together.
  const bool synchronized = training && communicator && communicator->size() > 1;
  // Pass 1: per-channel sum(dy) and sum(dy * (x - mean)); times inv_std that is sum(dy * x_hat).
  std::vector<double> sum_dy(static_cast<size_t>(C)), sum_dy_x_hat(static_cast<size_t>(C));
  std::vector<float> zeros(static_cast<size_t>(C), 0.0f);  // (C) dy is not shifted
  const float* zeros_data = zeros.data();
  sum_over_rows(sum_dy.data(), sum_dy_x_hat.data(), rows, C,
                [&](int64_t row_begin, int64_t row_end, double* first, double* second) {
                  block_product_sums(first, second, output_gradient, zeros_data, input, mean, row_begin, row_end, C);
                });
  for (int64_t c = 0; c < C; ++c) sum_dy_x_hat[static_cast<size_t>(c)] *= inv_std[c];
  // This rank's own sums go into the gamma and beta gradients (the gradient allreduce of the
  // training step adds the ranks' parts); the input gradient needs the global batch's sums.
  for (int64_t c = 0; c < C; ++c) {
    gamma_gradient[c] += static_cast<float>(sum_dy_x_hat[c]);
    beta_gradient[c] += static_cast<float>(sum_dy[c]);
  }
  if (synchronized) {
    std::vector<double> both(sum_dy);  // (2C): sum dy, then sum dy * x_hat, in one allreduce
    both.insert(both.end(), sum_dy_x_hat.begin(), sum_dy_x_hat.end());
    communicator->allreduce_sum(both.data(), 2 * C);
    std::copy(both.begin(), both.begin() + C, sum_dy.begin());
    std::copy(both.begin() + C, both.end(), sum_dy_x_hat.begin());
  }
  const double M = static_cast<double>(synchronized ? rows * communicator->size() : rows);
  std::vector<float> scale(static_cast<size_t>(C)), mean_dy(static_cast<size_t>(C)),
      mean_dy_x_hat(static_cast<size_t>(C));  // (C) each
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = gamma[c] * inv_std[c];
    mean_dy[c] = training ? static_cast<float>(sum_dy[c] / M) : 0.0f;
    mean_dy_x_hat[c] = training ? static_cast<float>(sum_dy_x_hat[c] / M) : 0.0f;
  }
  if (!input_gradient) return;
  // Pass 2: the input gradient.
  const float* scale_data = scale.data();
  const float* mean_dy_data = mean_dy.data();
  const float* mean_dy_x_hat_data = mean_dy_x_hat.data();
  parallel_for(rows, kRowsPerChunk, [=](int64_t row_begin, int64_t row_end) {
    for (int64_t row = row_begin; row < row_end; ++row) {
      const float* x = input + row * C;
      const float* dy = output_gradient + row * C;
      float* dx = input_gradient + row * C;
      for (int64_t c = 0; c < C; ++c) {
        const float x_hat = batch_norm_normalized(x[c], mean[c], inv_std[c]);
        dx[c] += batch_norm_input_gradient(dy[c], x_hat, scale_data[c], mean_dy_data[c], mean_dy_x_hat_data[c]);
      }
    }
  });
}

LayerFunctions BatchNorm2d::functions(Device device, const std::vector<Shape>&, bool) const {
  const std::string b = device == Device::CPU ? "_cpu" : "_cuda";
  return {"BatchNorm2d::forward" + b + " -> batch_norm_training_statistics" + b +
              " (batch_norm_mean, batch_norm_biased_variance, batch_norm_inverse_std, batch_norm_running_update) + "
              "batch_norm_normalize" +
              b + " (batch_norm_output)",
          "BatchNorm2d::backward" + b + " -> batch_norm_backward" + b + " (batch_norm_input_gradient)",
          "layers/batch_norm.md"};
}

}  // namespace pneumo
