// runtime/train/checkpoint.h: crash-safe training state.
//
// One file holds everything needed to continue a fine-tune: progress and
// history (JSON), the current weights, the weights kept to hand back
// (weights_choice.h) and the optimiser state (our weights format), sealed with a SHA-256:
//
//   "NASOACK1" | u64 JSON length | JSON | weights archive | SHA-256 of all before
//
// It is written atomically (temporary file, fsync, rename), so a kill at any
// instant leaves the previous checkpoint or the new one, never a torn file;
// a damaged file is refused with Error{kCorrupt} rather than half-loaded.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/train/memory_layout.h"
#include "runtime/train/schedule_fit.h"
#include "runtime/train/weights_choice.h"
#include "zoo/bundle/weights_file.h"

namespace nasoa::runtime {

struct EpochRecord {
  int epoch = 0;  // 1-based
  double train_loss = 0;
  double train_accuracy = 0;
  double validation_accuracy = -1;  // -1: not evaluated
  double elapsed_seconds = 0;       // since the adapt call began, resumed runs included
  double joules = 0;
};

struct TrainingState {
  std::string fingerprint;     // task and regime this state belongs to
  int epoch = 0;               // epoch in progress (0-based)
  std::int64_t step = 0;       // next batch of that epoch
  // The epoch in progress so far (its first `step` batches): summed loss
  // (times batch size), correct predictions and images, so that a resumed
  // epoch reports the loss and accuracy of all its batches.
  double epoch_loss_sum = 0;
  std::int64_t epoch_correct = 0;
  std::int64_t epoch_seen = 0;
  double spent_seconds = 0;    // budget time used so far, all runs included
  // The part of spent_seconds that went before training (ingestion,
  // planning) in each run so far: what an experience record leaves out of
  // the training time. 0 in checkpoints of earlier versions.
  double overhead_seconds = 0;
  double joules = 0;           // budget energy used so far, all runs included
  // The part of joules that went before training (planning's, and what the
  // caller counted as spent) in each run so far; 0 in checkpoints up to 0.3.4.
  double overhead_joules = 0;
  // The weights kept to hand back ("best.*"), as the run's WeightsChoice
  // chose them (weights_choice.h): their accuracy and epoch. The highest
  // accuracy of the run is the history's.
  double best_accuracy = -1;   // -1: nothing evaluated yet
  int best_epoch = 0;
  // The rule that chose them: a resumed run keeps it, so that the weights it
  // hands back are that rule's choice over the whole run. Checkpoints up to
  // 0.3.3 have no field; their rule was the highest-validated.
  WeightsChoice weights_choice = WeightsChoice::kBestValidated;
  std::vector<EpochRecord> history;
  // The layout training settled on, once it had: a resumed run keeps it, so
  // that it continues exactly as the killed one would have.
  std::optional<MemoryLayout> layout;
  // What a step and a validation pass took when measured (0: not yet, or a
  // checkpoint of an earlier version): a resumed run without a device
  // profile guards even its first step with them.
  double step_seconds = 0, evaluation_seconds = 0;
  // Where the run's schedule ends, once fitted to the time it had
  // (schedule_fit.h): a resumed run goes on along the same rates.
  ScheduleFit schedule;
  zoo::NamedTensors weights;       // "model.*", "best.*" and "optimizer.*" tensors
};

void save_checkpoint(const std::string& path, const TrainingState& state);
// Throws Error{kNotFound} when absent, Error{kCorrupt} when damaged.
TrainingState load_checkpoint(const std::string& path);

// The budget a run had used by its last heartbeat. A checkpoint is written
// every so often (it holds the weights); the time and energy used since the
// last one would be lost to a kill and never counted against the budget of
// the resumed run. So the fine-tuner also writes this small file beside the
// checkpoint (CHECKPOINT.clock) about once a second. It is replaced by a
// rename without flushes to storage (zoo::replace_file_lightly): a kill
// leaves a whole file; a power loss may lose it, and the checkpoint's own
// figures then stand.
struct CheckpointClock {
  double spent_seconds = 0;
  double joules = 0;
};
void save_checkpoint_clock(const std::string& checkpoint_path, const std::string& fingerprint,
                           const CheckpointClock& clock);
// The clock of the run `fingerprint` identifies; nothing when it is absent,
// damaged or another run's (it only ever adds to what the checkpoint says).
std::optional<CheckpointClock> load_checkpoint_clock(const std::string& checkpoint_path,
                                                     const std::string& fingerprint);
// What the runs before a resume spent: the checkpoint's own figures, raised
// to its heartbeat's when that is later and written under one of
// `fingerprints` (the checkpoint's, and the resuming run's when a checkpoint
// of an earlier version is resumed and may have been stamped anew).
CheckpointClock spent_before_resume(const std::string& checkpoint_path, const TrainingState& state,
                                    const std::vector<std::string>& fingerprints);
// Removes the clock and any temporary file a heartbeat killed mid-write left.
void remove_checkpoint_clock(const std::string& checkpoint_path);
// Removes the checkpoint `path` and its clock (remove_checkpoint_clock);
// nothing when they are absent.
void remove_checkpoint(const std::string& path);

}  // namespace nasoa::runtime
