#include "runtime/train/weights_choice.h"

#include <algorithm>
#include <cmath>

namespace nasoa::runtime {

const char* to_string(WeightsChoice choice) {
  switch (choice) {
    case WeightsChoice::kBestValidated: return "best-validated";
    case WeightsChoice::kLatestWithinNoise: return "latest-within-noise";
    case WeightsChoice::kLast: return "last";
  }
  return "unknown";
}

std::optional<WeightsChoice> parse_weights_choice(std::string_view name) {
  for (const WeightsChoice c : {WeightsChoice::kBestValidated, WeightsChoice::kLatestWithinNoise, WeightsChoice::kLast})
    if (name == to_string(c)) return c;
  return std::nullopt;
}

double accuracy_standard_error(double accuracy, std::size_t images) {
  if (images == 0) return 0;
  const double p = std::clamp(accuracy, 0.0, 1.0);
  return std::sqrt(p * (1 - p) / double(images));
}

bool replaces_kept(WeightsChoice choice, double accuracy, double kept_accuracy, double highest,
                   std::size_t images) {
  if (accuracy < 0) return false;      // not evaluated (an empty validation split): nothing to keep
  if (kept_accuracy < 0) return true;  // anything evaluated beats nothing
  switch (choice) {
    case WeightsChoice::kBestValidated: return accuracy > kept_accuracy;
    case WeightsChoice::kLatestWithinNoise:
      // A margin below the bound for the rounding of accuracies that are
      // ratios of whole images.
      return accuracy >= highest - accuracy_standard_error(highest, images) - 1e-12;
    case WeightsChoice::kLast: return true;
  }
  return false;
}

}  // namespace nasoa::runtime
