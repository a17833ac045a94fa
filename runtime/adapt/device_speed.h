// runtime/adapt/device_speed.h: how fast this device's own fine-tunes ran
// against what its device profile predicted for them, so that the planner
// costs the next plan at the speed the device shows rather than at the
// speed of the few seconds it was profiled in.
//
// A profile is measured once, and the machine it describes changes: another
// process shares the cores, the CPU is throttled, or the profile was taken
// while something else ran (then every plan is too long or too short, for
// good). Each device record carries the profile's step time for its
// configuration (ModelFeatures::step_seconds, which Adapter::record stamps
// only from a profile timed on the device and with the compute threads the
// run used) and its epochs' elapsed seconds. A record made on the profile's
// device whose step time is what `profile` predicts for that configuration
// was made under this very profile. For it, the median seconds between
// consecutive evaluated epochs (at least kLeastGaps of them; a checkpoint's
// or a resume's extra time falls in one gap, start-up in none) over the
// profile's seconds per epoch (training steps and a validation pass) is one
// observation: how long the run's epochs took, data loading included, for
// each second the planner costs them at. Records under another profile (one
// measured again, say) do not count.
//
// The scale is the median of the last `kRecentRuns` observations, bounded
// to [1/4, 4]. A median slower than the profile is planned at whole: a plan
// that overruns is stopped by the budget guard before its learning-rate
// schedule has decayed, which costs more than the seconds a plan too short
// leaves unused. A faster one is believed over runs: the median's log is
// shrunk towards 0 by n / (n + 1) (one fast run halves it).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "runtime/adapt/experience_log.h"
#include "runtime/profile/device_profile.h"

namespace nasoa::runtime {

struct DeviceSpeed {
  double time_scale = 1.0;      // what the profile's epoch seconds are multiplied by
  std::size_t runs = 0;         // observations it rests on (0: none; time_scale is 1)
  double observed_ratio = 1.0;  // their median ratio, before shrinking
};

inline constexpr std::size_t kRecentRuns = 5;
inline constexpr std::size_t kLeastGaps = 3;

// `records` in the order they were stored (the last most recent); only
// device records count. Never throws: a record the profile cannot cost is
// left out.
DeviceSpeed device_speed(const std::vector<ExperienceRecord>& records, const DeviceProfile& profile);

// A plan's note for `speed`, e.g. "this device's last 3 fine-tunes under its
// profile took 1.42x the profile's time per epoch (median): planned at
// 1.30x"; empty when there is no observation.
std::string device_speed_note(const DeviceSpeed& speed);

}  // namespace nasoa::runtime
