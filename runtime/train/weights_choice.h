// runtime/train/weights_choice.h: which of a run's evaluated weights it
// hands back.
//
// The fine-tuner evaluates the weights on the validation split after every
// epoch. The highest of those accuracies is the maximum of many noisy
// readings of one small split: it flatters the epoch that reached it, and
// picks an early, unannealed epoch over the final weights by a difference
// the split cannot resolve (with 100 images, one image is a point and the
// standard error of 90 % is three). So the fine-tuner keeps, as the run
// goes, the weights a rule chooses:
//
//   kBestValidated      the epoch of the highest accuracy (the earliest of
//                       equal ones);
//   kLatestWithinNoise  the latest epoch whose accuracy is within one
//                       binomial standard error, sqrt(p (1 - p) / n), of
//                       the highest p on the split's n images (Breiman's
//                       one-standard-error rule, applied to time);
//   kLast               the last evaluated epoch, whatever its accuracy.
//
// Each is decided online, one evaluation at a time, with one set of weights
// kept, and comes out as the rule's choice over the whole run: the epoch of
// the run's highest accuracy is kept when it is reached (it is within its
// own noise), and every epoch after it is judged against that highest. A
// resumed run keeps the rule its checkpoint was written under.
//
// Free of LibTorch: the fine-tuner and its tests include it.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace nasoa::runtime {

enum class WeightsChoice { kBestValidated, kLatestWithinNoise, kLast };

// "best-validated", "latest-within-noise", "last" and back (nothing for
// another name).
const char* to_string(WeightsChoice choice);
std::optional<WeightsChoice> parse_weights_choice(std::string_view name);

// One binomial standard error of an accuracy measured on `images` images
// (0 when there are none).
double accuracy_standard_error(double accuracy, std::size_t images);

// Whether the weights just evaluated, at `accuracy`, replace the kept ones
// (at `kept_accuracy`, -1 when none are kept), `highest` being the highest
// accuracy of the run so far, this one included, on `images` images.
// Weights not evaluated (`accuracy` -1: an empty validation split) never
// replace any.
bool replaces_kept(WeightsChoice choice, double accuracy, double kept_accuracy, double highest,
                   std::size_t images);

}  // namespace nasoa::runtime
