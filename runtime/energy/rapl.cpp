// Linux powercap exposes Intel (and AMD) RAPL as zones under
// class/powercap/intel-rapl:N, each with subzones intel-rapl:N:M (core,
// uncore, dram) that are already part of their package's count. Only the
// top-level zones named package-N are summed: a top-level "psys" zone covers
// the whole platform and would count the packages twice.
//
// energy_uj is root-only on kernels since 5.10 (a side channel), so a zone that
// cannot be read means "no RAPL for this process", not an error.
#include <cstdint>
#include <string>
#include <vector>

#include "nasoa/error.h"
#include "runtime/energy/meters.h"
#include "runtime/energy/sysfs.h"

namespace nasoa::runtime {
namespace {

struct Zone {
  std::string name;
  std::string energy_path;
  std::uint64_t range_uj = 0;
};

class RaplMeter final : public EnergyMeter {
 public:
  explicit RaplMeter(std::vector<Zone> zones) : zones_(std::move(zones)) {
    name_ = "rapl:";
    for (std::size_t i = 0; i < zones_.size(); ++i) name_ += (i ? "+" : "") + zones_[i].name;
  }

  std::string name() const override { return name_; }
  MeterKind kind() const override { return MeterKind::kRapl; }
  MeterQuantity quantity() const override { return MeterQuantity::kEnergyCounter; }
  bool measured() const override { return true; }

  std::vector<std::uint64_t> read_counters_uj() override {
    std::vector<std::uint64_t> values;
    values.reserve(zones_.size());
    for (const Zone& zone : zones_) values.push_back(sysfs::read_uint(zone.energy_path));
    return values;
  }

  std::vector<std::uint64_t> counter_ranges_uj() const override {
    std::vector<std::uint64_t> ranges;
    ranges.reserve(zones_.size());
    for (const Zone& zone : zones_) ranges.push_back(zone.range_uj);
    return ranges;
  }

 private:
  std::vector<Zone> zones_;
  std::string name_;
};

// "intel-rapl:0" is a zone; "intel-rapl:0:1" is one of its subzones.
bool is_top_level_zone(const std::string& entry) {
  const std::string prefix = "intel-rapl:";
  if (entry.size() <= prefix.size() || entry.compare(0, prefix.size(), prefix) != 0) return false;
  for (std::size_t i = prefix.size(); i < entry.size(); ++i) {
    if (entry[i] < '0' || entry[i] > '9') return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<EnergyMeter> open_rapl(const MeterOptions& options, std::string* why_not) {
  const std::string powercap = options.sysfs_root + "/class/powercap";
  std::vector<Zone> zones;
  std::string unreadable;
  for (const std::string& entry : sysfs::list_dir(powercap)) {
    if (!is_top_level_zone(entry)) continue;
    const std::string dir = powercap + "/" + entry;
    Zone zone;
    zone.energy_path = dir + "/energy_uj";
    try {
      zone.name = sysfs::read_text(dir + "/name");
      if (zone.name.rfind("package", 0) != 0) continue;
      zone.range_uj = sysfs::read_uint(dir + "/max_energy_range_uj");
      sysfs::read_uint(zone.energy_path);
    } catch (const Error& e) {
      if (unreadable.empty()) unreadable = e.what();
      continue;
    }
    zones.push_back(std::move(zone));
  }
  if (!unreadable.empty()) {
    // Summing only the readable packages would under-count the machine.
    *why_not = "RAPL zone not readable (" + unreadable + ")";
    return nullptr;
  }
  if (zones.empty()) {
    *why_not = "no RAPL package zone (intel-rapl:N named package-N) under " + powercap;
    return nullptr;
  }
  return std::make_unique<RaplMeter>(std::move(zones));
}

}  // namespace nasoa::runtime
