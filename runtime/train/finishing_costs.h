// runtime/train/finishing_costs.h: what the fine-tuner expects its writes to
// take before it has timed them, by the size of the model's parameters.
//
// The fine-tuner evaluates an epoch only when the time left also covers
// saving the model and a checkpoint (and a little slack); the planner
// charges every plan the same writes, so that a plan that fits leaves the
// fine-tuner that reserve at its last epoch instead of losing the epoch.
// Header-only and free of LibTorch: both sides include it.
#pragma once

#include <algorithm>
#include <cmath>

namespace nasoa::runtime {

// Writing the model directory: a fixed cost (creating, syncing, renaming)
// and the weights at 50 MB/s, a cautious figure for a device's flash.
inline double estimated_save_seconds(double parameter_bytes) { return 0.5 + parameter_bytes / 50e6; }

// A checkpoint holds the weights, the kept weights and the optimiser's state
// (up to four times the model), at the same rate.
inline double estimated_checkpoint_seconds(double parameter_bytes) { return 0.25 + 4 * parameter_bytes / 50e6; }

// Kept back beyond the last evaluation, the save and the last checkpoint.
constexpr double kFinishingSlackSeconds = 0.25;

// At most how many checkpoints a run of `epochs` epochs over `run_seconds`
// writes: at the first epoch end, at an epoch end once `interval_seconds`
// have passed since the last, and at the last epoch end. `interval_seconds`
// <= 0: none (no checkpoint file).
inline int checkpoints_of_run(int epochs, double run_seconds, double interval_seconds) {
  if (epochs <= 0 || !(interval_seconds > 0)) return 0;
  if (epochs == 1) return 1;
  const double between = std::floor(std::max(0.0, run_seconds) / interval_seconds);
  return int(std::min(double(epochs), 2.0 + between));
}

}  // namespace nasoa::runtime
