// runtime/adapt/experience_coverage.h: what an experience covers, in a
// summary small enough to ship inside the predictor, and where a plan would
// lie outside it.
//
// A plan chooses the model, learning rate, epochs, batch size and frozen
// stages; the rest of the regime (optimiser, augmentation, ...) is the
// caller's base, and the predictor scores plans as if it trained the way the
// experience did. Where every run of the experience shares one value and the
// base has another, the prediction says nothing about that difference, and
// the plan should say so. Batch sizes are planned, but the experience may
// hold only some of them, and the trees cannot tell what another would do.
//
// The summary exists so that planning need not read the records: parsing a
// full grid's experience (4,032 runs, 9.6 MB) takes longer than the rest of
// an Adapter's first plan, and the predictor fitted on it carries its
// summary (Predictor::experience()).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "nasoa/regime.h"
#include "runtime/adapt/experience_log.h"

namespace nasoa::runtime {

// The regime fields a plan does not choose, named as nasoa::Regime names
// them, in the order notes list them: optimizer, momentum, weight_decay,
// schedule, warmup_epochs, label_smoothing, random_resized_crop,
// horizontal_flip.
const std::vector<std::string>& unplanned_regime_fields();

struct ExperienceSummary {
  std::size_t record_count = 0;     // all of them
  std::size_t evaluated_count = 0;  // those with best_accuracy >= 0: what a predictor learns from
  std::vector<int> batch_sizes;     // of the evaluated records; ascending, distinct
  // The most epochs of an evaluated record; 0 when none was evaluated, or
  // in a summary saved before it was kept.
  int longest_epochs = 0;
  // The same per model name, of the models with an evaluated record; empty
  // in a summary saved before it was kept.
  std::map<std::string, int> longest_epochs_by_model;
  // The same per model name and frozen stage count, of the counts a model
  // has an evaluated record at; empty in a summary saved before it was kept.
  std::map<std::string, std::map<int, int>> longest_epochs_by_frozen;
  // The unplanned fields every evaluated record agrees on (in the order of
  // unplanned_regime_fields()), and a regime holding those values: the first
  // evaluated record's, whose other fields (model, learning rate, ...) mean
  // nothing here. Empty and default when none was evaluated.
  std::vector<std::string> shared_fields;
  Regime shared_regime;

  // Equal counts, sizes and shared fields, and the same values of those.
  bool operator==(const ExperienceSummary& other) const;
  bool operator!=(const ExperienceSummary& other) const { return !(*this == other); }
};

// The summary of `records` and `more` together (two lists, so that shipped
// and device records need not be copied into one).
ExperienceSummary summarize_experience(const std::vector<ExperienceRecord>& records,
                                       const std::vector<ExperienceRecord>& more = {});

// One line per field of `experience.shared_fields` on which `base` differs,
// naming the field, both values and the count of evaluated records; nothing
// when none was evaluated. Values are compared exactly and shown in their
// shortest round-trip form, so that two values that differ never read alike.
std::vector<std::string> regime_outside_experience(const Regime& base, const ExperienceSummary& experience);

// The batch sizes a predictor's plans may use: those of `profiled` (what the
// device profile measured) that the experience has evaluated runs of,
// ascending. When there are none, the result is empty and `*note` says so
// (otherwise it is cleared); the caller then plans over `profiled` on no
// evidence of what the sizes do.
std::vector<int> batch_sizes_with_evidence(const ExperienceSummary& experience, const std::vector<int>& profiled,
                                           std::string* note);

// Epoch counts a predictor plans over whatever its experience holds: the
// plan grid went this far before experience of longer runs was gathered.
constexpr int kEpochsPlannedWithoutLongerRuns = 32;

// The epoch counts of `grid` a predictor's plans may use: up to the longest
// run the experience holds, or up to kEpochsPlannedWithoutLongerRuns when it
// holds none that long, and that cap itself when it falls between two of
// the grid's steps (appended). Past its longest run the trees see only step
// counts that other tasks reached in fewer epochs, which is no evidence of
// what more epochs do on this one. Keeps `grid`'s order.
std::vector<int> epochs_with_evidence(const ExperienceSummary& experience, const std::vector<int>& grid);

// The same per model, for the models of `models` whose own runs stop short
// of the largest of epochs_with_evidence(experience, grid): model name to the
// most epochs its plans may use, max(kEpochsPlannedWithoutLongerRuns, its
// longest run), or kEpochsPlannedWithoutLongerRuns for a model the
// experience never evaluated. Empty when the summary keeps no per-model
// figures (saved before they were kept). Runs of one model to 512 epochs are
// no evidence of what 512 epochs do to another.
std::map<std::string, int> model_epoch_caps(const ExperienceSummary& experience, const std::vector<std::string>& models,
                                            const std::vector<int>& grid);

// The same per frozen stage count: for each model named in `frozen` and
// each of its counts there (model name to counts) whose own runs stop short of the
// model's cap (model_epoch_caps, or the largest of epochs_with_evidence),
// the most epochs its plans may use, max(kEpochsPlannedWithoutLongerRuns,
// its longest run at that count). Empty when the summary keeps no
// per-count figures (saved before they were kept). Runs of a model with
// nothing frozen to 512 epochs are no evidence of what 512 epochs do with
// its first stage frozen.
std::map<std::string, std::map<int, int>> frozen_epoch_caps(const ExperienceSummary& experience,
                                                            const std::map<std::string, std::vector<int>>& frozen,
                                                            const std::vector<int>& grid);

// Why plans stop at `cap` epochs, as a plan's `why` says it
// (PlanGrid::epoch_cap_reason and epoch_caps_by_model): "the longest run of
// the predictor's experience" when the experience's longest run (of
// `model`, when one is named) is `cap`, else "the most epochs planned
// without evidence of longer runs" (a cap at kEpochsPlannedWithoutLongerRuns
// above shorter runs, or a summary that keeps no such figure), "... of
// MODEL" for a model.
std::string epoch_cap_reason(const ExperienceSummary& experience, int cap, const std::string& model = {});

// The same for a model's plans with `frozen` stages frozen (frozen_epoch_caps):
// "... of MODEL with F frozen stage(s)".
std::string epoch_cap_reason(const ExperienceSummary& experience, int cap, const std::string& model, int frozen);

// "1 frozen stage", "2 frozen stages": as notes and errors name a count.
std::string frozen_stages_text(int frozen);

// "16, 32, 64": batch sizes as notes list them.
std::string listed_batch_sizes(const std::vector<int>& sizes);

}  // namespace nasoa::runtime
