// bench/bench_support.h: what every benchmark's table needs: the median of
// repeated measurements and the name of the machine's CPU.
#pragma once

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

namespace nasoa::bench {

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// /proc/cpuinfo's "model name", or "unknown CPU".
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

}  // namespace nasoa::bench
