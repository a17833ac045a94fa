// runtime/train/fine_tuner.h: fine-tunes one network on one task under hard limits.
//
// The loop trains, evaluates on the validation split after every epoch and
// keeps the weights the job's WeightsChoice picks (weights_choice.h). It stops
// early, mid-epoch if need be, when the time left (or energy left) would not
// cover the next step plus the final evaluation and saving, or when resident
// memory passes its cap (the process's peak since fine_tune() started,
// zoo/system/resident_memory.h); it then hands back the weights it kept. The next step's time is the profile's
// prediction when the job has one, else a running average of the steps
// measured; a call's first step, which sets kernels up, is not taken for a
// typical one. Without a prediction or a killed run's measurement, the first
// step (on the CPU, of more than 16 images) is reckoned from a trial: two
// forward and backward passes on 8 images, which leave the weights and
// BatchNorm statistics as they were. When nothing was evaluated yet, the final evaluation may use
// half of the grace the budget guarantee allows (Limits::grace_seconds()). A
// checkpoint is written at the first epoch end of a call that has written
// none yet, then whenever `checkpoint_interval_seconds` have passed since the
// last one (checked after every step and at epoch ends), and at the run's end
// (its last epoch, or a stop), so that a killed run can be resumed and loses
// at most that interval of training.
//
// When the epochs prove dearer than the limits leave room for (a device
// slower than its profile), the learning-rate schedule is fitted at an
// epoch end to end sooner, so that the run anneals rather than being cut
// with its rate near the peak (runtime/train/schedule_fit.h).
//
// Runs on CUDA when the LibTorch build has it and the options allow, with bf16
// autocast on GPUs that support it and cuDNN autotuning when at least
// kCudnnAutotuneSeconds are left; otherwise on the CPU with the intra-op
// threads set by the caller. On the CPU the network trains in the memory
// layout that is faster for it (runtime/train/memory_layout.h): the job's, as
// the device profile measured it, or else the one a LayoutTrial picks over
// the run's first steps.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "nasoa/error.h"
#include "nasoa/regime.h"
#include "runtime/data/image_store.h"
#include "runtime/data/split.h"
#include "runtime/train/checkpoint.h"
#include "runtime/train/memory_layout.h"
#include "runtime/train/weights_choice.h"
#include "zoo/builder/network.h"

namespace nasoa::runtime {

// cuDNN's autotuning searches every convolution shape's algorithms on its
// first use: seconds for a small network on a large GPU (measured on an
// H200), repaid only over many steps, and a first step no budget guard can
// cut short. So a run autotunes only with this much time left (and, under a
// joule budget, the joules for that long at the predicted power).
inline constexpr double kCudnnAutotuneSeconds = 120;

// Wall-clock and energy limits of a whole adapt call.
class Limits {
 public:
  // `seconds` for the whole call, `spent` of which are already used (ingestion,
  // earlier runs of a resumed fine-tune). `joules` 0 means no energy limit.
  Limits(double seconds, double spent, double joules = 0,
         std::function<double()> joules_so_far = {}, std::int64_t memory_bytes = 0);
  double elapsed() const;  // spent + time since construction
  double seconds_left() const { return seconds_ - elapsed(); }
  // What the guarantee allows past the budget (it ends within budget x 1.05
  // + 2 s): only finishing may use it.
  double grace_seconds() const { return 0.05 * seconds_ + 2.0; }
  double joules() const { return joules_so_far_ ? joules_so_far_() : 0.0; }
  bool has_joules_limit() const { return joules_limit_ > 0; }
  double joules_left() const { return has_joules_limit() ? joules_limit_ - joules() : 1e300; }
  std::int64_t memory_bytes() const { return memory_bytes_; }

 private:
  double seconds_, spent_, joules_limit_;
  std::function<double()> joules_so_far_;
  std::int64_t memory_bytes_;
  std::chrono::steady_clock::time_point start_;
};

struct TrainProgress {
  int epoch = 0, epochs = 0;  // 1-based epoch in progress
  std::int64_t step = 0, steps_per_epoch = 0;
  double loss = 0, train_accuracy = 0;
  double validation_accuracy = -1;  // latest, -1 before the first evaluation
  double elapsed_seconds = 0, eta_seconds = 0, joules = 0;
  bool evaluated = false;  // this report is an end-of-epoch evaluation's
};

struct FineTuneJob {
  zoo::Network network{nullptr};  // head already sized for the task's classes
  const ImageStore* store = nullptr;
  Split split;
  Regime regime;
  std::array<float, 3> mean{}, std{};
  std::string fingerprint;        // identifies task + regime in checkpoints
  std::string checkpoint_path;    // empty: no checkpoints
  double checkpoint_interval_seconds = 30;
  // Of the limits' spent seconds, those that went before training in this
  // run and the runs it resumes: kept in checkpoints (overhead_seconds). A
  // resumed run adds what it adds to the epochs of the runs before, so that
  // each epoch's elapsed_seconds holds it.
  double overhead_seconds = 0;
  // The same of the limits' joules (overhead_joules in checkpoints), added
  // to each epoch's joules alike.
  double overhead_joules = 0;
  bool use_cuda = true;           // when available
  bool mixed_precision = true;    // bf16 autocast on GPUs with native bfloat16
  int loader_workers = 2;
  // Keep freed memory in the process for the next step instead of handing
  // it back to the kernel (zoo/system/heap_policy.h; process-wide, and left
  // alone where the environment tunes the heap); what is kept goes back as
  // the run ends.
  bool keep_freed_memory = true;
  // Seconds per step predicted by the device profile, or <= 0 when unknown.
  // It seeds the step-time estimate, so that even the first step is only
  // started, and a budget only accepted, when it fits.
  double predicted_step_seconds = 0;
  // Seconds one pass over the validation split takes, predicted by the
  // device profile, or <= 0 when unknown (then guessed from the step time).
  // It is part of what finishing needs until a pass has been timed.
  double predicted_evaluation_seconds = 0;
  // Watts training draws, from the device profile or the caller's estimate,
  // or <= 0 when unknown. It is the power an energy budget is judged by
  // until the meter has measured half a second of training, so that even the
  // first step is only started, and a budget only accepted, when it fits.
  double predicted_watts = 0;
  // The layout to train in on the CPU (the device profile's choice for the
  // model); unset: a LayoutTrial picks it. GPUs train channels-first.
  std::optional<MemoryLayout> layout;
  // Whether the schedule may be fitted to end sooner when the epochs prove
  // dearer than the limits leave room for (schedule_fit.h); off, the run
  // follows the regime until a limit cuts it.
  bool fit_schedule = true;
  // Which evaluated weights are handed back (weights_choice.h); a resumed
  // run keeps its checkpoint's rule instead. The highest-validated here, as
  // the offline tools' records and manifests describe their runs; the SDK
  // passes AdapterOptions::hand_back.
  WeightsChoice weights_choice = WeightsChoice::kBestValidated;
  std::function<void(const TrainProgress&)> on_progress;
};

struct FineTuneOutcome {
  double validation_accuracy = -1;  // of the weights handed back
  int best_epoch = 0;               // epoch whose weights are handed back (0: mid-epoch)
  WeightsChoice weights_choice = WeightsChoice::kBestValidated;  // the rule that chose them
  std::vector<EpochRecord> history;
  std::int64_t steps = 0;           // optimiser steps of the run, those before a resume included
  bool stopped_early = false;
  std::string stop_reason;          // "completed", "time budget", "energy budget", "memory cap",
                                    // "energy budget: ..." (a meter that read no energy in 5 s of
                                    // training: the budget could not be kept),
                                    // or "diverged: ..." (a non-finite loss; the weights kept from
                                    // its evaluations are handed back)
  std::string device;               // "cpu" or "cuda:0"
  double evaluation_seconds = 0;    // of the last validation pass
  std::string checkpoint_note;      // "" unless a checkpoint failed to be written; then why
  // The epochs the run was to end after: the regime's, unless epochs proved
  // dearer than the limits left room for; then the learning-rate schedule
  // was fitted to end sooner (schedule_fit.h), and schedule_note says when
  // and why ("" otherwise).
  int scheduled_epochs = 0;
  std::string schedule_note;
  MemoryLayout layout = MemoryLayout::kChannelsFirst;  // what training settled on
};

// Trains job.network in place; on return it holds the weights handed back.
// `resume` continues from a checkpoint (its fingerprint must match); when
// the checkpoint has evaluated weights but the limits leave no time for a
// step, those are handed back at once (stop reason "time budget"). Throws
// Error{kInvalidArgument} when the limits cannot cover even one step and the
// final evaluation (the estimate is reported), Error{kCorrupt} for a
// checkpoint that does not match, and Error{kInvalidArgument} when the loss
// diverged before any weights were evaluated (diverged_before_evaluation).
FineTuneOutcome fine_tune(FineTuneJob& job, const Limits& limits,
                          std::optional<TrainingState> resume = std::nullopt);

// Top-1 accuracy of `network` on `indices` of the store, in eval mode, its
// batches in `layout` (the network's own, for speed).
double evaluate(zoo::NetworkImpl& network, const ImageStore& store, const std::vector<std::size_t>& indices,
                const std::array<float, 3>& mean, const std::array<float, 3>& std, int batch_size,
                const torch::Device& device, int workers, MemoryLayout layout = MemoryLayout::kChannelsFirst);

// Whether `e` is fine_tune's error for a loss that diverged before any
// weights were evaluated: the regime's outcome, not a fault of the request.
bool diverged_before_evaluation(const Error& e);

}  // namespace nasoa::runtime
