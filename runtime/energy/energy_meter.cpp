#include "runtime/energy/energy_meter.h"

#include <cmath>
#include <sstream>

#include "nasoa/error.h"
#include "runtime/energy/meters.h"
#include "zoo/text/printable.h"

namespace nasoa::runtime {
namespace {

constexpr MeterKind kAllKinds[] = {MeterKind::kAuto, MeterKind::kJetsonHwmon, MeterKind::kJetsonIio,
                                   MeterKind::kNvml, MeterKind::kRapl,        MeterKind::kEstimate};

using Opener = std::unique_ptr<EnergyMeter> (*)(const MeterOptions&, std::string*);

Opener opener_for(MeterKind kind) {
  switch (kind) {
    case MeterKind::kJetsonHwmon: return open_jetson_hwmon;
    case MeterKind::kJetsonIio: return open_jetson_iio;
    case MeterKind::kNvml: return open_nvml;
    case MeterKind::kRapl: return open_rapl;
    case MeterKind::kAuto:
    case MeterKind::kEstimate: break;
  }
  return nullptr;
}

}  // namespace

const char* to_string(MeterKind kind) noexcept {
  switch (kind) {
    case MeterKind::kAuto: return "auto";
    case MeterKind::kJetsonHwmon: return "jetson-hwmon";
    case MeterKind::kJetsonIio: return "jetson-iio";
    case MeterKind::kNvml: return "nvml";
    case MeterKind::kRapl: return "rapl";
    case MeterKind::kEstimate: return "estimate";
  }
  return "unknown";
}

MeterKind parse_meter_kind(std::string_view name) {
  std::string accepted;
  for (const MeterKind kind : kAllKinds) {
    if (name == to_string(kind)) return kind;
    accepted += accepted.empty() ? "" : ", ";
    accepted += to_string(kind);
  }
  throw Error(ErrorCode::kInvalidArgument,
              "energy meter '" + std::string(name) + "' is not one of: " + accepted);
}

EnergyMeter::~EnergyMeter() = default;

double EnergyMeter::read_watts() {
  throw Error(ErrorCode::kInternal, name() + ": read_watts() called on an energy counter");
}

std::vector<std::uint64_t> EnergyMeter::read_counters_uj() {
  throw Error(ErrorCode::kInternal, name() + ": read_counters_uj() called on a power meter");
}

std::vector<std::uint64_t> EnergyMeter::counter_ranges_uj() const { return {}; }

std::uint64_t counter_delta_uj(std::uint64_t before, std::uint64_t now, std::uint64_t range_uj) noexcept {
  if (now >= before) return now - before;
  // A "before" beyond the range is not a wrap of this counter; trust nothing.
  if (range_uj == 0 || before > range_uj) return 0;
  return now + (range_uj - before);
}

namespace {

// Why `meter`'s first reading fails, "" when it reads. An opener checks that
// the files are there and hold numbers; only a reading checks the value (a
// rail of -2 W or 100 kW reads as a number), and a meter that never reads
// would leave every joule uncounted and an energy budget unenforced.
std::string first_reading_problem(EnergyMeter& meter) {
  try {
    if (meter.quantity() == MeterQuantity::kPower) {
      // The monitor refuses what no machine draws; so must the first reading.
      const double watts = meter.read_watts();
      if (!(watts >= 0 && watts <= kMaxPlausibleWatts))
        return "its first reading failed: " + zoo::shown_number(watts) + " W is outside [0, " +
               zoo::shown_number(kMaxPlausibleWatts) + "] W";
    } else {
      meter.read_counters_uj();
    }
    return {};
  } catch (const Error& e) {
    return std::string("its first reading failed: ") + e.what();
  }
}

}  // namespace

std::unique_ptr<EnergyMeter> detect_energy_meter(const MeterOptions& options) {
  if (!(options.estimate_watts >= 0 && options.estimate_watts <= kMaxPlausibleWatts)) {
    std::ostringstream out;
    out << "estimate_watts: must be a number of watts in [0, " << kMaxPlausibleWatts
        << "] (0: no device profile), got " << options.estimate_watts;
    throw Error(ErrorCode::kInvalidArgument, out.str());
  }
  if (options.kind == MeterKind::kEstimate) return make_estimated_meter(options.estimate_watts);
  if (options.kind != MeterKind::kAuto) {
    std::string why_not;
    if (auto meter = opener_for(options.kind)(options, &why_not)) {
      why_not = first_reading_problem(*meter);
      if (why_not.empty()) return meter;
    }
    throw Error(ErrorCode::kNotFound,
                std::string("energy meter '") + to_string(options.kind) + "' requested but " + why_not);
  }
  std::string skipped;
  for (const MeterKind kind : kAllKinds) {
    const Opener open = opener_for(kind);
    if (open == nullptr) continue;
    if (kind == MeterKind::kNvml && !options.gpu_job) {
      skipped += "; nvml: not for a job on the CPU (it measures the GPU)";
      continue;
    }
    // A GPU job whose NVML could not be read would otherwise land here, and
    // the packages would be reported as measured while the GPU, drawing most
    // of the power, went uncounted: an energy budget would pass several times
    // its joules. The estimate at least says it is a guess.
    if (kind == MeterKind::kRapl && options.gpu_job) {
      skipped += "; rapl: not for a job on the GPU (it measures only the CPU packages)";
      continue;
    }
    std::string why_not;
    try {
      if (auto meter = open(options, &why_not)) {
        why_not = first_reading_problem(*meter);
        if (why_not.empty()) return meter;
      }
    } catch (const Error& e) {
      // Auto-detection must survive odd hardware; the next meter may work.
      why_not = e.what();
    }
    skipped += std::string("; ") + to_string(kind) + ": " + why_not;
  }
  if (options.estimate_watts > 0) return make_estimated_meter(options.estimate_watts);
  throw Error(ErrorCode::kNotFound,
              "no energy meter can be read on this machine and no estimate_watts from a device "
              "profile was given" + skipped);
}

}  // namespace nasoa::runtime
