// Adam optimizer (Keras's defaults and update form) and the notebook's cosine learning-rate
// schedule. Data flows ParameterStore gradients -> Adam moments and values, updated in place by
// ONE loop (CPU) or ONE kernel (CUDA) over the store's flat buffers. See layers/adam.md.
#pragma once
#include <cstdint>

#include "engine/context.h"
#include "engine/parameters.h"
#include "kernels/adam_math.h"

namespace pneumo {

struct AdamConfig {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-7;  // Keras's K.epsilon(), not PyTorch's 1e-8
};

class Adam {
 public:
  explicit Adam(AdamConfig config = {});

  // One update of every trainable parameter from store.gradients() (which it only reads):
  //   t += 1; lr_t = learning_rate * sqrt(1 - beta2^t) / (1 - beta1^t)
  //   m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2; w -= lr_t m / (sqrt(v) + eps)
  // The store must live on context.device(). Non-trainable state is untouched.
  void step(Context& context, ParameterStore& store, float learning_rate);

  int64_t step_count() const { return step_count_; }
  void set_step_count(int64_t step_count);  // e.g. when resuming from a checkpoint
  const AdamConfig& config() const { return config_; }

  // The scalars step() uses for step number t (counted from 1).
  AdamStepScalars scalars_for_step(int64_t t, float learning_rate) const;

 private:
  AdamConfig config_;
  int64_t step_count_ = 0;
};

// The notebook's schedule: base * (cos(pi * epoch / epochs) + 1) / 2, epoch counted from 0 as
// the Keras LearningRateScheduler passes it.
double cosine_annealing(double epoch, double base_learning_rate = 1e-3, int epochs = 25);

// Back-end loops underneath Adam::step (pointers on the named device; count = P).
void adam_step_cpu(float* values, const float* gradients, float* adam_m, float* adam_v, int64_t count,
                   AdamStepScalars scalars);
#ifdef PNEUMO_HAVE_CUDA
void adam_step_cuda(float* values, const float* gradients, float* adam_m, float* adam_v, int64_t count,
                    AdamStepScalars scalars);  // layers/adam.cu
#endif

}  // namespace pneumo
