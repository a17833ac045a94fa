// nasoa/adapter.h: fine-tuning a zoo model on a task, inside a budget.
//
// The Adapter fine-tunes the model a Regime names on a Task, on the best
// device there is (CUDA when LibTorch has it, else the CPU), and saves the
// result as a self-contained, verified model directory that
// nasoa::Classifier loads. The budget is enforced: the whole call (what the
// Task's ingestion already used, counted through Budget::spent_seconds,
// training, final evaluation, saving) ends within seconds x 1.05 + 2 s; the
// loop stops mid-epoch when need be and hands back the best model it has.
//
// A checkpoint is kept beside the output directory (OUT.checkpoint) while
// training; fine_tune(..., resume = true) continues from it after a crash or
// kill, counting the time already spent. It is removed once the model is saved.
//
// Ownership: the Adapter keeps a reference to the Zoo, which must outlive it.
// Thread-safety: one fine_tune at a time per Adapter.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nasoa/export.h"
#include "nasoa/regime.h"
#include "nasoa/task.h"
#include "nasoa/zoo.h"

namespace nasoa {

struct Budget {
  double seconds = 0;            // wall-clock limit of the whole call; required, > 0
  double joules = 0;             // energy limit; 0: none
  std::int64_t memory_mib = 0;   // resident memory cap; 0: none
  double spent_seconds = 0;      // already used (ingestion, say); counts against `seconds`
};

enum class DevicePreference { kAuto, kCpu, kCuda };

struct AdapterOptions {
  DevicePreference device = DevicePreference::kAuto;
  // bfloat16 autocast on GPUs with native bfloat16 (Ampere/Orin and newer).
  bool mixed_precision = true;
  // 0 chooses: on the CPU, a quarter of the cores (at least one) build
  // batches and the rest compute, so that the two never oversubscribe them.
  int threads = 0;                           // intra-op (compute) threads
  int loader_threads = 0;                    // batch-building threads
  double checkpoint_interval_seconds = 30;   // at most this much training is lost to a kill
  double estimate_watts = 0;                 // power to assume when no meter reads; 0: none
  // A device profile (nasoa-profile's JSON) measured on this device with this
  // zoo: it predicts step times for the budget checks and, when no meter
  // reads and estimate_watts is 0, gives the power to assume. Empty: none.
  std::string device_profile;
  std::string sysfs_root = "/sys";           // where energy meters are looked for
};

struct Progress {
  int epoch = 0, epochs = 0;
  std::int64_t step = 0, steps_per_epoch = 0;
  double loss = 0, train_accuracy = 0;
  double validation_accuracy = -1;  // latest; -1 before the first evaluation
  double elapsed_seconds = 0, eta_seconds = 0, joules = 0;
};
using ProgressCallback = std::function<void(const Progress&)>;

struct EpochResult {
  int epoch = 0;
  double train_loss = 0, train_accuracy = 0;
  double validation_accuracy = -1;  // -1: not evaluated (budget)
  double elapsed_seconds = 0, joules = 0;
};

struct Result {
  std::string model_dir;            // the saved model, for nasoa::Classifier::open
  Regime regime;
  double validation_accuracy = -1;  // of the saved model; -1 if the budget left no time to evaluate
  int best_epoch = 0;               // epoch whose weights were saved; 0: mid-epoch weights
  std::vector<EpochResult> epochs;
  std::int64_t steps = 0;
  double wall_seconds = 0;          // whole call, spent_seconds included
  double joules = 0;
  std::string energy_meter;         // which meter measured (or "estimate:...", or "none")
  bool energy_measured = false;
  bool stopped_early = false;
  std::string stop_reason;          // "completed", "time budget", "energy budget", "memory cap"
  std::string device;               // "cpu", "cuda:0", or "cuda:0 (bf16 autocast)"
  bool resumed = false;
  std::int64_t peak_memory_bytes = 0;
};

class NASOA_API Adapter {
 public:
  explicit Adapter(const Zoo& zoo, AdapterOptions options = {});
  Adapter(Adapter&&) noexcept;
  Adapter& operator=(Adapter&&) noexcept;
  Adapter(const Adapter&) = delete;
  Adapter& operator=(const Adapter&) = delete;
  ~Adapter();

  // Fine-tunes regime.model on `task` and saves it to `out_dir` (replacing a
  // model directory there). Throws Error{kInvalidArgument} for an invalid
  // regime or budget, or one too small for even one step; Error{kNotFound}
  // for an unknown model, or resume without a checkpoint; Error{kCorrupt}
  // for a checkpoint of another task or regime.
  Result fine_tune(const Task& task, const Regime& regime, const Budget& budget,
                   const std::string& out_dir, const ProgressCallback& on_progress = {},
                   bool resume = false);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nasoa
