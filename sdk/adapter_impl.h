// sdk/adapter_impl.h: what a nasoa::Adapter holds, and what its fine-tuning
// (adapter_api.cpp) and online-adaption (online_api.cpp) halves share.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nasoa/adapter.h"
#include "runtime/adapt/experience_log.h"
#include "runtime/adapt/predictor.h"
#include "runtime/data/split.h"
#include "runtime/energy/energy_monitor.h"
#include "runtime/profile/device_profile.h"

namespace nasoa {

struct Adapter::Impl {
  Zoo zoo;  // a copy: it shares the opened bundle, so the app's Zoo may go
  AdapterOptions options;
  // The profile the planner used, kept so that fine_tune() seeds its step
  // estimate and record() its step seconds from the same measurement.
  std::optional<runtime::DeviceProfile> profile;
  // The bundle's shipped experience, read once.
  std::optional<runtime::ShippedExperience> shipped;
};

namespace sdk {

// Whether fine-tuning will run on a GPU, and the threads it will use there,
// so that profiling and probing measure what training then does.
bool uses_gpu(const AdapterOptions& options);
// Error{kInvalidArgument} when `options` ask for CUDA and there is none: a
// plan or profile made for the CPU instead could never run as asked.
void check_device_available(const AdapterOptions& options);
int loader_threads(const AdapterOptions& options, bool on_gpu);
int compute_threads(const AdapterOptions& options, bool on_gpu);

// The energy meter fine_tune() will find measuring here, already sampling,
// or null where none does. Where none does, its joules are the estimate's
// (AdapterOptions::estimate_watts, else the most the model drew when
// profiled), and plan() costs plans at the same power, so that a plan that
// fits a joule budget is not refused. plan() reads its own energy from it.
std::unique_ptr<runtime::EnergyMonitor> start_measuring_meter(const AdapterOptions& options);

// Error{kInvalidArgument} naming AdapterOptions::estimate_watts when it is
// negative, not finite or above runtime::kMaxPlausibleWatts: the Adapter's
// and the EnergyWatch's check.
void check_estimate_watts(const AdapterOptions& options);

// Refuses a budget out of range with Error{kInvalidArgument} naming the
// field and its value: seconds negative or NaN, joules, spent_seconds or
// spent_joules negative or NaN, memory_mib negative or above 2^30 (a PiB),
// or no limit of time or energy at all. With `finite` (plan(): a plan
// records its budget as JSON, which has no infinity) infinite joules and
// spent seconds or joules are refused too; fine_tune() takes infinite
// joules as no limit. Infinite seconds are no time limit for both, as 0 is.
void check_budget(const Budget& budget, bool finite);

// The budget's time limit: its seconds, or infinity when it has none
// (Budget::seconds 0 or infinity).
double time_limit_seconds(const Budget& budget);

// The train/validation split fine_tune() makes of `task` for `regime`.
runtime::Split task_split(const Task& task, const Regime& regime);

// AdapterOptions::device_profile, loaded: the caller's choice of device and
// threads is theirs, and it may measure only some models, but a profile of
// other networks is refused (Error{kInvalidArgument}): it would plan and
// time what those networks do.
runtime::DeviceProfile load_given_device_profile(const Adapter::Impl& impl);

// The device profile plan() keeps in the state directory, when there is one
// for this zoo, device and these settings; never measured here, and nothing
// when it is missing, damaged or measured otherwise. fine_tune() with a
// regime of the caller's uses it to guard even the first step.
std::optional<runtime::DeviceProfile> kept_device_profile(const Adapter::Impl& impl);

}  // namespace sdk
}  // namespace nasoa
