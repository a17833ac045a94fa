// runtime/adapt/planner.h: the one-shot schedule generator, which picks the
// zoo model and training regime a task should be fine-tuned with inside a
// budget, from predictions alone (no trial runs).
//
// For every configuration (model x learning rate x batch size x frozen
// stages) and every epoch count of the grid, the plan's cost is predicted
// from the device profile:
//
//   seconds = spent + startup + run + finishing + checkpoints * checkpoint
//     run         = epochs * (train_epoch + eval_epoch) * overheads.time_scale
//     train_epoch = predict_epoch_seconds(profile, model, train_images, batch, frozen)
//     eval_epoch  = predict_evaluation_seconds(profile, model,
//                   validation_images, batch): a per-batch and a per-image
//                   cost, through the profile's batch-1 and batch-64 figures
//     finishing   = estimated_save_seconds + kFinishingSlackSeconds, and
//     checkpoint  = estimated_checkpoint_seconds, by the model's float32
//                   weights (runtime/train/finishing_costs.h): what the
//                   fine-tuner keeps back to finish, so that the last epoch
//                   a plan counts is evaluated rather than cut
//     checkpoints = checkpoints_of_run(epochs, run, checkpoint_interval_seconds)
//   joules  = spent_joules + watts * (seconds - spent)
//     watts: the profile's measurement for that batch and frozen count, else
//     PlannerOptions::estimate_watts; without either, joules are unknown.
//     Where no meter measures (PlannerOptions::unmetered) fine-tuning is
//     charged at an estimate, and so is the plan: estimate_watts, else the
//     most the model drew when profiled
//   memory  = overheads.resident_bytes + the profile's rss_increase_bytes for
//     that batch and frozen count + two copies of the weights (the model and
//     the epoch's it keeps to hand back) + overheads.unprofiled_bytes; without resident_bytes,
//     the profile's peak RSS for that batch and frozen count (a figure of the
//     profiling process) + unprofiled_bytes; unknown where the profile has
//     neither. Where train_images leave one image over (train_images > batch,
//     train_images % batch == 1), the epoch ends in a batch of batch + 1
//     (runtime/data/batching.h), and the profile's figure (rss_increase_bytes
//     or peak RSS) is scaled by (batch + 1) / batch, rounded up
//
// A plan fits when seconds <= budget.seconds * (1 - safety_margin), joules
// (when a joule budget is set) <= budget.joules * (1 - safety_margin), and
// memory (when a memory cap is set) <= memory_bytes * (1 - safety_margin);
// unknown joules or memory do not fit a budget that limits them. Fitting plans are scored by the
// predictor: score = mean - risk_aversion * std (risk_aversion 0 by default:
// the plan expected to be most accurate; 1 prefers plans the predictor is
// surer of). Ties go to the plan with more predicted seconds, then by model
// name, learning rate, batch size, frozen stages and epochs, so the result is
// a function of the inputs alone. Trees predict the same past their last
// split on epochs: a flat prediction says the experience cannot tell those
// runs apart, not that training longer gains nothing, and the fine-tuner
// hands back an annealed epoch's weights unless an earlier one was
// measurably better (runtime/train/weights_choice.h). (Fewer seconds won ties up to 0.3.2: on the
// evaluation tasks NASOA then stopped at 128 to 384 epochs of a 300 s
// budget, 66 s on average, 1.1 points below its plans that used the time.)
//
// With a cosine schedule every plan has more epochs than the base regime's
// warmup_epochs (validate() refuses a warm-up as long as the run).
//
// The alternatives are the best plans of the other configurations, so that
// they differ in more than one epoch from the best and from each other.
//
// Ownership and threads: a pure function of its arguments; the predictor is
// only read (AccuracyPredictor::predict once, with every fitting plan).
//
// Errors: nasoa::Error{kInvalidArgument} for an empty model list or grid, a
// non-positive budget or train_images, an option out of range, a joule budget
// with no way to estimate power; the same when no plan fits, saying the
// smallest budget the cheapest plan would need and for which plan, or, when
// runs fit but none longer than the base's cosine warm-up, naming
// warmup_epochs.
// Error{kNotFound} for a model the profile does not have.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nasoa/regime.h"
#include "nasoa/task.h"
#include "runtime/adapt/experience_log.h"
#include "runtime/adapt/predictor.h"
#include "runtime/profile/device_profile.h"

namespace nasoa::runtime {

struct PlannerBudget {
  double seconds = 0;                        // > 0: the whole adapt call, spent seconds included;
                                             // infinity: no time limit (only with `joules`)
  std::optional<double> joules;              // > 0 when set
  std::optional<std::int64_t> memory_bytes;  // > 0 when set: peak resident memory
};

struct PlanGrid {
  std::vector<double> learning_rates{0.003, 0.01, 0.03, 0.1};
  std::vector<int> batch_sizes;    // empty: the profile's
  std::vector<int> frozen_stages;  // empty: 0..num_stages-1 of each model
  // Up to 512: on small tasks a budget of minutes holds hundreds of epochs,
  // and accuracy still rises past 32. nasoa::Adapter plans past 32 only as
  // far as the predictor's experience holds runs that long
  // (epochs_with_evidence in experience_coverage.h).
  std::vector<int> epochs{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
  // Also plan, per configuration, the most epochs that fit the budget (up to
  // the largest of `epochs`, or the model's cap below): budgets between the
  // grid's steps are used whole.
  bool fill_budget = true;
  // What the largest of `epochs` stands for, in a plan's `why` when it binds:
  // empty for the grid's own cap, or e.g. "the longest run of the
  // predictor's experience" when the caller cut the grid there.
  std::string epoch_cap_reason;
  // Per model name, fewer epochs than the grid's largest: that model plans
  // no epoch count above its cap (nor fills the budget past it), plans the
  // cap itself when it fits (on the grid or not), and a plan it binds says
  // `reason`. Models not named keep the grid's.
  struct EpochCap {
    int epochs = 0;  // >= 1
    std::string reason;
  };
  std::map<std::string, EpochCap> epoch_caps_by_model;
  // Per model name and frozen stage count, fewer epochs than the model's
  // cap: plans of the model at that count keep to it the same way.
  std::map<std::string, std::map<int, EpochCap>> epoch_caps_by_frozen;
};

struct PlanOverheads {
  double spent_seconds = 0;            // already used (ingestion); counts against the budget
  double spent_joules = 0;             // already used; counts against a joule budget
  std::int64_t validation_images = 0;  // evaluated after every epoch
  double startup_seconds = 0.5;        // building the model, loading weights, starting loaders
  // The fine-tuner's checkpoint interval (AdapterOptions); 0: it writes no
  // checkpoints. Saving the model is charged by the model's size.
  double checkpoint_interval_seconds = 30;
  double safety_margin = 0.1;          // share of seconds, joules and memory kept back for estimate error, [0, 1)
  // What the profile's seconds per epoch (training and evaluation) are
  // multiplied by: how fast this device's own runs went against its profile
  // (device_speed.h); 1 trusts the profile. Finite, > 0.
  double time_scale = 1.0;
  // The resident memory of the process that will fine-tune, as it stands
  // when planning (the task's images included), in bytes; 0: unknown.
  std::int64_t resident_bytes = 0;
  // What fine-tuning holds that the profile's steps on synthetic batches do
  // not: the batch loader's threads (each with its own heap arena) and
  // prefetched batches, and the evaluation passes. A plan of 176 MiB by the
  // profile peaked at 200 MiB in a real run on a 2-core x86 machine (default
  // zoo, 32 px), and the share of safety_margin did not cover it: a run
  // planned under its cap was stopped by the cap before its first epoch.
  std::int64_t unprofiled_bytes = std::int64_t(32) << 20;
};

struct PlannerOptions {
  PlanGrid grid;
  PlanOverheads overheads;
  Regime base;                 // what a plan does not choose (optimiser, weight decay, ...)
  double estimate_watts = 0;   // power to assume where the profile has none; 0: none
  bool unmetered = false;      // no meter measures here: plans are charged as estimated (above)
  double risk_aversion = 0;    // k in score = mean - k * std, >= 0
  int alternatives = 5;        // >= 0
  std::map<std::string, double> probe_scores;  // per model name, when a probe ran
};

struct PlannedRun {
  Regime regime;                     // base with model, lr, epochs, batch and frozen stages chosen
  double predicted_accuracy = 0;
  double predicted_std = 0;
  double score = 0;
  double seconds = 0;                // predicted for the whole call, spent seconds included
  double training_seconds = 0;       // all epochs
  double evaluation_seconds = 0;     // all epochs
  std::optional<double> joules;      // predicted, spent joules included
  std::optional<std::int64_t> memory_bytes;
  int max_fitting_epochs = 0;        // most epochs of this configuration that fit
  std::string why;                   // what bounds it, in a few words
};

struct Schedule {
  PlannedRun best;
  std::vector<PlannedRun> alternatives;  // best first
  PlannerBudget budget;
  double usable_seconds = 0;                // budget less the safety margin
  std::optional<double> usable_joules;
  std::size_t configurations = 0;           // model x lr x batch x frozen planned
  std::size_t plans_considered = 0;         // configurations x epoch counts (each model's, up to its cap)
  std::size_t plans_fitting = 0;            // those scored by the predictor
  double planning_seconds = 0;
};

// What a plan of a model with `parameters` weights is charged besides its
// epochs: saving the model and the finishing slack (`finishing` above)...
double finishing_seconds(std::int64_t parameters);
// ...and with starting it too: no plan of the model costs less. plan()
// refuses a budget below the cheapest model's before profiling.
double fixed_seconds(const PlanOverheads& overheads, std::int64_t parameters);

// `train_images`: images the fine-tune will train on (after the validation
// split); the validation images go in options.overheads.
Schedule generate_schedule(const TaskMeta& task, std::int64_t train_images, const PlannerBudget& budget,
                           const DeviceProfile& profile, const std::vector<ModelFeatures>& models,
                           const AccuracyPredictor& predictor, const PlannerOptions& options = {});

// `grid` as a predictor fitted on `experience` may plan it: its epochs cut
// where the experience's runs stop (epochs_with_evidence, the cut saying
// why in epoch_cap_reason), each of `models` capped at its own runs
// (model_epoch_caps, epoch_caps_by_model), and each of its frozen stage
// counts (the grid's and 0..num_stages-1) at that count's runs
// (frozen_epoch_caps, epoch_caps_by_frozen). nasoa::Adapter plans over it;
// adaption_bench plans NASOA over it the same way.
PlanGrid grid_with_evidence(const PlanGrid& grid, const ExperienceSummary& experience,
                            const std::vector<ModelFeatures>& models);

// Pretty-printed JSON, for reports and --plan-only.
std::string to_json(const PlannedRun& plan);
std::string to_json(const Schedule& schedule);

}  // namespace nasoa::runtime
