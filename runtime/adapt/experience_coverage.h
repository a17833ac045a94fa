// runtime/adapt/experience_coverage.h: where a regime lies outside what the
// experience shows.
//
// A plan chooses the model, learning rate, epochs, batch size and frozen
// stages; the rest of the regime (optimiser, augmentation, ...) is the
// caller's base, and the predictor scores plans as if it trained the way the
// experience did. Where every run of the experience shares one value and the
// base has another, the prediction says nothing about that difference, and
// the plan should say so.
#pragma once

#include <string>
#include <vector>

#include "nasoa/regime.h"
#include "runtime/adapt/experience_log.h"

namespace nasoa::runtime {

// One line per regime field a plan does not choose on which `base` differs
// from the value every evaluated record (best_accuracy >= 0) of `records`
// shares, naming the field (as nasoa::Regime does), both values and the
// count of records. Fields the records disagree on are left out (the
// experience shows their effect), and so is everything when no record was
// evaluated. Fields, in this order: optimizer, momentum, weight_decay,
// schedule, warmup_epochs, label_smoothing, random_resized_crop,
// horizontal_flip.
std::vector<std::string> regime_outside_experience(const Regime& base, const std::vector<ExperienceRecord>& records);

}  // namespace nasoa::runtime
