// Comparing float results with their references, shared by the test files: one CHECK per
// comparison that reports how many elements are off and the worst one.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace pneumo::testing {

// Every |actual - expected| <= absolute + relative * |expected| (expected in float or double);
// reports the count outside the tolerance and the worst element.
template <typename Expected>
void check_close(const std::vector<float>& actual, const std::vector<Expected>& expected, double absolute,
                 double relative, const std::string& what) {
  REQUIRE(actual.size() == expected.size());
  size_t failures = 0, worst = 0;
  double worst_excess = -1e300;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double excess = std::fabs(actual[i] - static_cast<double>(expected[i])) -
                          (absolute + relative * std::fabs(static_cast<double>(expected[i])));
    if (!(excess <= 0)) ++failures;  // NaN counts as a failure
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  INFO(what << ": " << failures << " of " << actual.size() << " outside tolerance; worst at " << worst << ": "
            << (actual.empty() ? 0.0 : actual[worst]) << " vs "
            << (expected.empty() ? 0.0 : static_cast<double>(expected[worst])));
  CHECK(failures == 0);
}

// The pneumo::Error message thrown by `action`, or "" when nothing was thrown (other exceptions
// propagate and fail the test).
std::string error_of(const std::function<void()>& action);

// max |a[i] - b[i]| (the sizes must agree) and max |values[i]|.
double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b);
double max_abs(const std::vector<float>& values);

}  // namespace pneumo::testing
