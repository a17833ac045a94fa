// runtime/energy/meters.h: the meter implementations, one opener per kind.
//
// Used by detect_energy_meter() and by tests that target one layout. Each
// opener looks for its hardware under options.sysfs_root (or loads its
// library), reads it once and returns the meter; when the hardware is absent
// or unreadable it returns nullptr and sets `why_not` to a sentence naming the
// paths it looked at, so that auto-detection can move on and a forced kind
// can throw that sentence. The caller owns the returned meter.
#pragma once

#include <memory>
#include <string>

#include "runtime/energy/energy_meter.h"

namespace nasoa::runtime {

// Rail selection for both INA3221 layouts: one labelled input rail, else the
// sum of every rail. See jetson_ina3221.cpp for the boards behind it.
std::unique_ptr<EnergyMeter> open_jetson_hwmon(const MeterOptions& options, std::string* why_not);
std::unique_ptr<EnergyMeter> open_jetson_iio(const MeterOptions& options, std::string* why_not);

std::unique_ptr<EnergyMeter> open_nvml(const MeterOptions& options, std::string* why_not);

std::unique_ptr<EnergyMeter> open_rapl(const MeterOptions& options, std::string* why_not);

// Throws Error{kInvalidArgument} when `watts` is not finite and > 0.
std::unique_ptr<EnergyMeter> make_estimated_meter(double watts);

}  // namespace nasoa::runtime
