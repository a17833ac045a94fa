#include "runtime/adapt/device_speed.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <vector>

#include "nasoa/error.h"
#include "runtime/profile/median.h"

namespace nasoa::runtime {

namespace {

// The observed over the predicted seconds per epoch of `r` under `profile`,
// or nothing where `r` was not made under it or cannot tell.
std::optional<double> speed_ratio(const ExperienceRecord& r, const DeviceProfile& profile) {
  if (r.source != ExperienceSource::kDevice || !r.model.step_seconds || !(*r.model.step_seconds > 0)) return {};
  // "cuda:0 (bf16 autocast)" ran on the profile's "cuda:0".
  if (r.device.substr(0, r.device.find(' ')) != profile.device.device) return {};
  const Regime& g = r.regime;
  double predicted = 0;
  try {
    const double step = predict_step_seconds(profile, r.model.name, g.batch_size, g.frozen_stages);
    // Written from the profile in use when the run was recorded: equal (to
    // JSON's round trip) only when that profile is this one.
    if (!(std::fabs(step - *r.model.step_seconds) <= 1e-9 * step)) return {};
    const std::int64_t train = effective_train_images(r);
    const std::int64_t validation = std::max<std::int64_t>(0, r.task.images - train);
    predicted = predict_epoch_seconds(profile, r.model.name, train, g.batch_size, g.frozen_stages) +
                predict_evaluation_seconds(profile, r.model.name, validation, g.batch_size);
  } catch (const Error&) {
    return {};
  }
  // The median of the gaps between consecutive evaluated epochs: a gap
  // that also holds a checkpoint (after the first epoch, then every
  // interval; the planner charges those apart) or a resume's lost work and
  // set-up is an outlier, and the first epoch's start-up is in no gap.
  std::vector<double> gaps;
  const EpochPoint* previous = nullptr;
  for (const EpochPoint& p : r.history) {
    if (p.validation_accuracy < 0) continue;
    if (previous && p.epoch > previous->epoch)
      gaps.push_back((p.elapsed_seconds - previous->elapsed_seconds) / double(p.epoch - previous->epoch));
    previous = &p;
  }
  if (gaps.size() < kLeastGaps) return {};
  const double observed = median(gaps);
  if (!(observed > 0) || !std::isfinite(observed) || !(predicted > 0) || !std::isfinite(predicted)) return {};
  return observed / predicted;
}

}  // namespace

DeviceSpeed device_speed(const std::vector<ExperienceRecord>& records, const DeviceProfile& profile) {
  std::vector<double> logs;
  for (auto it = records.rbegin(); it != records.rend() && logs.size() < kRecentRuns; ++it)
    if (const std::optional<double> ratio = speed_ratio(*it, profile)) logs.push_back(std::log(*ratio));
  DeviceSpeed speed;
  speed.runs = logs.size();
  if (logs.empty()) return speed;
  const double middle = median(logs);
  const double n = double(logs.size());
  speed.observed_ratio = std::exp(middle);
  const double bound = std::log(4.0);
  // A slower median is taken whole: a plan that overruns is cut by the
  // budget guard before its schedule has decayed. Faster is earned over runs.
  const double shrunk = middle > 0 ? middle : middle * n / (n + 1);
  speed.time_scale = std::exp(std::clamp(shrunk, -bound, bound));
  return speed;
}

std::string device_speed_note(const DeviceSpeed& speed) {
  if (speed.runs == 0) return {};
  char text[200];
  std::snprintf(text, sizeof text,
                "this device's last %zu fine-tune%s under its profile took %.2fx the profile's time per epoch%s: "
                "planned at %.2fx",
                speed.runs, speed.runs == 1 ? "" : "s", speed.observed_ratio, speed.runs > 1 ? " (median)" : "",
                speed.time_scale);
  return text;
}

}  // namespace nasoa::runtime
