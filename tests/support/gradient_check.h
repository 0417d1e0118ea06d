// The one shared finite-difference gradient checker (CPU, double-precision arithmetic). Every
// layer and the loss are tested through it.
//
// Usage: the test defines a scalar objective L(x) (usually sum(output * probe) for a fixed random
// probe, accumulated in double) as a callable that reruns the forward pass, computes the analytic
// gradient dL/dx with the code under test (for the probe objective: backward with
// output_gradient = probe), then calls check_gradient on each input and parameter tensor.
// Each element x_i is perturbed to x_i +- step and dL/dx_i ~ (L(x+h) - L(x-h)) / (2h), with the
// perturbed value rounded to float and h taken as the difference actually stored, so the
// estimate is exact up to the curvature term and the float rounding inside the forward pass.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace pneumo::testing {

struct GradientCheckOptions {
  double step = 1e-2;  // perturbation h
  double absolute_tolerance = 2e-3;
  double relative_tolerance = 2e-2;  // |analytic - numeric| <= abs + rel * max(|a|, |n|)
  int64_t max_elements = 400;        // check at most this many elements (spread evenly); 0 = all
};

struct GradientCheckResult {
  bool ok = true;
  int64_t checked = 0;
  int64_t failures = 0;
  int64_t worst_index = -1;
  double worst_analytic = 0, worst_numeric = 0, worst_excess = 0;  // at the worst element
  std::string message;                                             // human-readable summary of the worst element
};

// `values` is a CPU tensor that `objective` reads (an input, or a parameter view); `analytic` is
// the CPU tensor holding dL/dvalues from the code under test. values are restored afterwards.
GradientCheckResult check_gradient(const std::function<double()>& objective, Tensor& values, const Tensor& analytic,
                                   const std::string& what, const GradientCheckOptions& options = {});

// sum(output * probe) in double: the usual objective, whose d/d output is `probe`.
double probe_objective(const Tensor& output, const Tensor& probe);

// A CPU tensor of the given shape filled with uniform values in [low, high) from `generator`.
Tensor random_tensor(const Shape& shape, std::mt19937_64& generator, float low = -1.0f, float high = 1.0f);

}  // namespace pneumo::testing
