#include "tests/support/gradient_check.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/check.h"

namespace pneumo::testing {

GradientCheckResult check_gradient(const std::function<double()>& objective, Tensor& values, const Tensor& analytic,
                                   const std::string& what, const GradientCheckOptions& options) {
  require_device(values, Device::CPU, "check_gradient values");
  require_device(analytic, Device::CPU, "check_gradient analytic");
  PNEUMO_REQUIRE(values.count() == analytic.count(), "check_gradient: " + what + " count mismatch");
  GradientCheckResult result;
  const int64_t count = values.count();
  const int64_t stride = options.max_elements > 0 && count > options.max_elements ? count / options.max_elements : 1;
  float* data = values.data();
  const float* gradient = analytic.data();
  for (int64_t index = 0; index < count; index += stride) {
    const float original = data[index];
    const float plus = static_cast<float>(original + options.step);
    const float minus = static_cast<float>(original - options.step);
    data[index] = plus;
    const double objective_plus = objective();
    data[index] = minus;
    const double objective_minus = objective();
    data[index] = original;
    const double numeric =
        (objective_plus - objective_minus) / (static_cast<double>(plus) - static_cast<double>(minus));
    const double analytic_value = gradient[index];
    const double allowed = options.absolute_tolerance +
                           options.relative_tolerance * std::max(std::fabs(analytic_value), std::fabs(numeric));
    const double excess = std::fabs(analytic_value - numeric) - allowed;
    ++result.checked;
    if (excess > 0) ++result.failures;
    if (result.worst_index < 0 || excess > result.worst_excess) {
      result.worst_index = index;
      result.worst_excess = excess;
      result.worst_analytic = analytic_value;
      result.worst_numeric = numeric;
    }
  }
  result.ok = result.failures == 0 && result.checked > 0;
  std::ostringstream message;
  message << what << ": " << result.failures << " of " << result.checked << " elements outside tolerance; worst at "
          << result.worst_index << ": analytic " << result.worst_analytic << " numeric " << result.worst_numeric;
  result.message = message.str();
  return result;
}

double probe_objective(const Tensor& output, const Tensor& probe) {
  require_device(output, Device::CPU, "probe_objective output");
  PNEUMO_REQUIRE(output.count() == probe.count(), "probe_objective: count mismatch");
  double sum = 0;
  for (int64_t i = 0; i < output.count(); ++i)
    sum += static_cast<double>(output.data()[i]) * static_cast<double>(probe.data()[i]);
  return sum;
}

Tensor random_tensor(const Shape& shape, std::mt19937_64& generator, float low, float high) {
  Tensor tensor(Device::CPU, shape);
  std::uniform_real_distribution<float> uniform(low, high);
  for (int64_t i = 0; i < tensor.count(); ++i) tensor.data()[i] = uniform(generator);
  return tensor;
}

}  // namespace pneumo::testing
