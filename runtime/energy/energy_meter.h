// runtime/energy/energy_meter.h: where the runtime's joules come from.
//
// An EnergyMeter reads one source of energy information on this machine:
//   - Jetson INA3221 rails through hwmon (JetPack 5/6) or iio (JetPack 4),
//   - NVML on a discrete NVIDIA GPU (libnvidia-ml loaded with dlopen, so there
//     is no link dependency and machines without the driver still run),
//   - Linux powercap/RAPL package counters,
//   - or, when none can be read, an estimate from the device profile's watts.
// Some sources give instantaneous power (MeterQuantity::kPower), others a
// cumulative energy counter (kEnergyCounter); EnergyMonitor turns either into
// joules. Every sysfs path is taken under MeterOptions::sysfs_root, so tests
// run against fake trees.
//
// detect_energy_meter() hands back a meter the caller owns. A meter is used by
// one thread at a time (the monitor's sampling thread); name(), kind(),
// quantity() and measured() never change after creation and may be called
// from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nasoa::runtime {

enum class MeterKind {
  kAuto,         // only in MeterOptions: try the others in the order below
  kJetsonHwmon,  // INA3221 through hwmon, JetPack 5/6
  kJetsonIio,    // INA3221 through iio, JetPack 4
  kNvml,         // NVIDIA driver's management library
  kRapl,         // Linux powercap, intel-rapl package zones
  kEstimate,     // the device profile's watts, nothing measured
};

// Stable names: "auto", "jetson-hwmon", "jetson-iio", "nvml", "rapl", "estimate".
const char* to_string(MeterKind kind) noexcept;
// The inverse of to_string(); throws Error{kInvalidArgument} naming `name`
// and the accepted names.
MeterKind parse_meter_kind(std::string_view name);

enum class MeterQuantity {
  kPower,          // read_watts(): instantaneous power
  kEnergyCounter,  // read_counters_uj(): cumulative energy, may wrap
};

class EnergyMeter {
 public:
  virtual ~EnergyMeter();

  // For the report, stable across runs on the same machine, e.g.
  // "jetson-ina3221-hwmon:VDD_IN", "rapl:package-0+package-1", "estimate:12.5W".
  virtual std::string name() const = 0;
  virtual MeterKind kind() const = 0;
  virtual MeterQuantity quantity() const = 0;
  // False only for the estimate: its joules are a guess, not a measurement.
  virtual bool measured() const = 0;

  // kPower meters: watts now. Throws Error (kNotFound, kIo, kCorrupt) naming
  // the file or call that failed; the meter stays usable for the next read.
  // The default throws Error{kInternal}: it is a bug to call it on a counter.
  virtual double read_watts();

  // kEnergyCounter meters: one cumulative reading in microjoules per counter,
  // always in the same order and count. Throws as read_watts().
  virtual std::vector<std::uint64_t> read_counters_uj();
  // Per counter, the largest value before it wraps back to zero (RAPL's
  // max_energy_range_uj); 0 when it does not wrap within any realistic run.
  virtual std::vector<std::uint64_t> counter_ranges_uj() const;
};

// No device this SDK runs on draws 100 kW: a power reading, an implied
// counter power or a profile's watts above it is a fault (a sensor glitch, a
// counter reset, a hand-edited file), and would make joules overflow.
inline constexpr double kMaxPlausibleWatts = 100000;
// One energy counter measures one CPU package or one GPU, and none draws
// 5 kW: a counter's step implying more is a reset or a glitch of that
// counter (a package's reset, seen as a wrap, implies tens of kW over the
// seconds a starved sampler may take between readings).
inline constexpr double kMaxPlausibleCounterWatts = 5000;

struct MeterOptions {
  // Where sysfs is mounted; tests point it at a fake tree.
  std::string sysfs_root = "/sys";
  // Which GPU NVML measures: the one with this PCI bus id when it is set (the
  // GPU a job trains on: see cuda_device.h), else the index nvidia-smi shows.
  std::string gpu_pci_bus_id;
  unsigned nvml_gpu_index = 0;
  // The library NVML is loaded from; tests name one that does not exist to
  // stay independent of the machine's driver.
  std::string nvml_library = "libnvidia-ml.so.1";
  // The device profile's power draw while training, for the estimate. 0 means
  // "no profile": then the estimate is unavailable. Must be in
  // [0, kMaxPlausibleWatts].
  double estimate_watts = 0;
  // kAuto picks the first readable meter in the order of MeterKind that suits
  // the job (see gpu_job); any other kind demands that meter.
  MeterKind kind = MeterKind::kAuto;
  // Whether the job being measured runs on a discrete NVIDIA GPU. kAuto takes
  // NVML only for such a job: for one on the CPU, NVML would measure an idle
  // GPU and miss the CPU, so RAPL or the estimate come first. Conversely kAuto
  // takes RAPL only for a job on the CPU: for one on the GPU, RAPL would miss
  // the GPU's draw yet call it measured, so without NVML the estimate is used.
  // (A Jetson's rails cover the whole board and are chosen either way.)
  bool gpu_job = false;
};

// Picks and opens a meter as `options` says. Each candidate is opened and read
// once, so the meter returned has been seen to work. Throws
// Error{kInvalidArgument} for bad options (watts outside [0, kMaxPlausibleWatts], a
// forced estimate without watts); Error{kNotFound} when a forced meter is
// absent or unreadable, naming the paths it looked at, and in auto mode when
// nothing can be read and there are no estimate watts (listing why each
// meter was skipped).
std::unique_ptr<EnergyMeter> detect_energy_meter(const MeterOptions& options);

// Energy between two readings of a counter that wraps to 0 after `range_uj`:
// `now - before`, or `now + range_uj - before` when the counter went back.
// A counter that goes back without a range (a driver reset) gives 0, because
// the energy used across the reset is unknown and a huge bogus value would
// wreck the total.
std::uint64_t counter_delta_uj(std::uint64_t before, std::uint64_t now, std::uint64_t range_uj) noexcept;

}  // namespace nasoa::runtime
