#include "zoo/system/resident_memory.h"

#include <sys/resource.h>

#include <atomic>
#include <fstream>
#include <string>

#include "zoo/system/heap_policy.h"
#include "zoo/system/keyed_text.h"

namespace nasoa::zoo {
namespace {

std::atomic<bool> peak_mark_reset{false};

// A "kB" field of /proc/self/status, in bytes.
std::optional<std::int64_t> status_bytes(const std::string& key) {
  const std::optional<std::string> value = keyed_value("/proc/self/status", key);
  if (!value) return std::nullopt;
  try {
    return std::int64_t(std::stoll(*value)) * 1024;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::optional<std::int64_t> resident_bytes() { return status_bytes("VmRSS"); }

bool start_peak_measurement() {
  give_back_freed_memory();
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
