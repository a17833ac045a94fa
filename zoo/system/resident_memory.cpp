#include "zoo/system/resident_memory.h"

#include <malloc.h>
#include <sys/resource.h>

#include <atomic>
#include <fstream>
#include <string>

namespace nasoa::zoo {
namespace {

std::atomic<bool> peak_mark_reset{false};

// A "kB" field of /proc/self/status, in bytes.
std::optional<std::int64_t> status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0 || line.size() <= key.size() || line[key.size()] != ':') continue;
    try {
      return std::int64_t(std::stoll(line.substr(key.size() + 1))) * 1024;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::int64_t> resident_bytes() { return status_bytes("VmRSS"); }

bool start_peak_measurement() {
  malloc_trim(0);
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  const bool reset = bool(out) && status_bytes("VmHWM").has_value();
  if (reset) peak_mark_reset = true;
  return reset;
}

std::int64_t peak_resident_bytes() {
  if (peak_mark_reset)
    if (const auto peak = status_bytes("VmHWM")) return *peak;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return std::int64_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace nasoa::zoo
