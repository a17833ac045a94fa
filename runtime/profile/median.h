// runtime/profile/median.h: the median the device profile takes over a
// configuration's timed steps, and device_speed over a device's runs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace nasoa::runtime {

// Of `values` (not empty): the middle one, or the mean of the middle pair.
inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace nasoa::runtime
