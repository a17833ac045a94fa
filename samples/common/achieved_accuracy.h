// samples/common/achieved_accuracy.h: the accuracy a run achieved, as the
// planner's predictor predicts it.
#pragma once

#include <nasoa/nasoa.h>

#include <algorithm>
#include <optional>

namespace nasoa_samples {

// The run's highest validation accuracy, over its epochs and the weights it
// saved (mid-epoch weights of a run the budget cut are evaluated apart);
// nothing when none was evaluated. This is the predictor's target (the
// device's records teach it the highest), while the saved weights are the
// epoch AdapterOptions::hand_back chose, up to a standard error lower.
inline std::optional<double> highest_validation_accuracy(const nasoa::Result& r) {
  double highest = r.validation_accuracy;
  for (const nasoa::EpochResult& e : r.epochs) highest = std::max(highest, e.validation_accuracy);
  if (highest < 0) return std::nullopt;
  return highest;
}

}  // namespace nasoa_samples
