// nasoa/adapter.h: fine-tuning a zoo model on a task, inside a budget.
//
// The Adapter fine-tunes the model a Regime names on a Task, on the best
// device there is (CUDA when LibTorch has it, else the CPU), and saves the
// result as a self-contained, verified model directory that
// nasoa::Classifier loads. The budget is enforced: the whole call (what the
// Task's ingestion already used, counted through Budget::spent_seconds,
// training, final evaluation, saving) ends within seconds x 1.05 + 2 s; the
// loop stops mid-epoch when need be and hands back the model it kept
// (AdapterOptions::hand_back).
// A budget of energy alone (no seconds) is kept the same way in joules: the
// fine-tune's energy, as the meter reads it or as estimated, on top of what
// Budget::spent_joules (and a plan's planning_joules) counted before it.
//
// A checkpoint is kept beside the output directory (OUT.checkpoint) while
// training; fine_tune(..., resume = true) continues from it after a crash or
// kill, counting the time already spent. It is removed once the model is
// saved, and when a run started without resume begins training (that run
// replaces it). While a run lasts, a lock file beside it (OUT.lock, removed
// at the end) refuses a second run into the same directory, from this
// process or another, with Error{kInvalidArgument}.
//
// Online adaption (NASOA's schedule generator and its performance predictor,
// docs/adaption.md): plan() picks the model and regime for a task and a
// budget in one shot, from the bundle's shipped experience and this device's
// own; fine_tune(task, plan, ...) trains it; record() feeds the outcome back,
// so that the next plan is better informed. What the device learns lives in
// a state directory (AdapterOptions::state_dir), one subfolder per zoo:
//
//   STATE/<zoo name>-<16 hex digits>/   the digits: a digest of the zoo's models
//     experience.log                    (names, encodings, input sizes, weights),
//     predictor.json                    so another zoo, or a model retrained,
//     device-profile-<cpu|cuda>.json    never mixes with this one's experience
//
// experience.log holds the device's records (append-only, a checksum per
// line), predictor.json the predictor fitted on the shipped experience (on
// the device's records when the bundle ships none), device-profile-*.json
// the step times measured on this device (see calibrate()), one file per
// setting that changes them: the device, on the CPU "-<N>-threads" for N
// compute threads, and "-untuned-heap" for tune_heap off
// (device-profile-cpu-1-threads-untuned-heap.json). The predictor is
// calibrated to the device's records each time they change or the folder is
// opened (docs/adaption.md). A kill at any instant leaves the folder usable:
// an append is all or nothing and the predictor is refitted on open when
// stale. The zoo bundle's files are never written to. A new shipped
// experience in an updated bundle of the same models keeps the device's
// records.
//
// Ownership: the Adapter keeps a copy of the Zoo (a Zoo is a shared handle),
// so the Zoo it was made from may be moved or destroyed.
// Thread-safety: one call at a time per Adapter; Adapters of several
// processes may share a state directory (appends are serialised by a lock).
// Process-wide state: fine_tune(), and plan() when it measures the device
// profile or runs the probe, set LibTorch's intra-op thread count (to
// AdapterOptions::threads, or their own choice) and leave it so, and
// fine_tune() seeds LibTorch's global generator with Regime::seed;
// Adapters working at once in one process share both, so give them the
// same threads, and expect a run to repeat bit for bit only alone.
// fine_tune() and plan() also restart the measurement of the process's peak
// resident memory (Linux's VmHWM, which is process-wide): one Adapter's
// memory cap and Result::peak_memory_bytes hold only while no other call
// of the process measures beside it. On a GPU, fine_tune() and profiling
// set cuDNN's autotuning flag for the process. Two fine_tune() calls must
// not write the same out_dir at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nasoa/export.h"
#include "nasoa/plan.h"
#include "nasoa/regime.h"
#include "nasoa/task.h"
#include "nasoa/zoo.h"

namespace nasoa {

struct Budget {
  // Wall-clock limit of the whole adapt; 0 or +infinity: none. A budget needs
  // a limit: seconds > 0, or joules > 0 and finite for one of energy alone.
  double seconds = 0;
  double joules = 0;             // energy limit; 0 or +infinity: none (plan() needs it finite)
  // Resident memory cap: the process's peak while it fine-tunes (from the
  // start of training to the saved model, the task's images included); 0: none.
  std::int64_t memory_mib = 0;
  // Already used before the call (ingestion, say); counts against `seconds`.
  // plan() counts its own time on top of it, and fine_tune(task, plan, ...)
  // adds the plan's planning_seconds: give both the same Budget.
  double spent_seconds = 0;
  // The same in joules, against `joules`: plan() counts its own energy on
  // top of it, and fine_tune(task, plan, ...) adds the plan's
  // planning_joules. What the caller spent before (reading the task, say)
  // only it can tell (an EnergyWatch, below, measures it): 0 counts nothing.
  double spent_joules = 0;
};

enum class DevicePreference { kAuto, kCpu, kCuda };

// "auto", "cpu", "cuda" and back; parse_device_preference() throws
// Error{kInvalidArgument} naming the value and the accepted names.
NASOA_API const char* to_string(DevicePreference device);
NASOA_API DevicePreference parse_device_preference(const std::string& name);

// The memory layout a network trains in on the CPU. kAuto: the faster one for
// the model on this device, as the device profile measured it, or else as a
// trial of both over a run's first steps finds (those steps train for real).
// Both compute the same function; GPUs always train channels-first.
enum class MemoryLayoutPreference { kAuto, kChannelsFirst, kChannelsLast };

// "auto", "channels-first", "channels-last" and back; the parser throws
// Error{kInvalidArgument} naming the value and the accepted names.
NASOA_API const char* to_string(MemoryLayoutPreference layout);
NASOA_API MemoryLayoutPreference parse_memory_layout_preference(const std::string& name);

// Which of a run's evaluated weights fine_tune() saves
// (AdapterOptions::hand_back): the epoch of the highest validation accuracy,
// the latest epoch within one binomial standard error of it, or the last
// epoch evaluated.
enum class WeightsChoice { kBestValidated, kLatestWithinNoise, kLast };

// "best-validated", "latest-within-noise", "last" and back; the parser
// throws Error{kInvalidArgument} naming the value and the accepted names.
NASOA_API const char* to_string(WeightsChoice choice);
NASOA_API WeightsChoice parse_weights_choice(const std::string& name);

struct AdapterOptions {
  DevicePreference device = DevicePreference::kAuto;
  // bfloat16 autocast on GPUs with native bfloat16 (Ampere/Orin and newer).
  bool mixed_precision = true;
  MemoryLayoutPreference memory_layout = MemoryLayoutPreference::kAuto;
  // 0 chooses: on the CPU, a quarter of the cores (at least one) build
  // batches and the rest compute, so that the two never oversubscribe them.
  int threads = 0;                           // intra-op (compute) threads
  int loader_threads = 0;                    // batch-building threads
  double checkpoint_interval_seconds = 30;   // at most this much training is lost to a kill
  // Fine-tuning and profiling set glibc's heap to keep freed memory for the
  // next step rather than hand it back to the kernel and fault it in again
  // (on a 2-core virtual machine 1.75x faster end to end; bench/README.md).
  // The setting is process-wide and lasts; what is kept goes back as each
  // fine-tune ends. Left alone anyway where GLIBC_TUNABLES sets glibc.malloc
  // tunables or a MALLOC_* variable is set. An app that sets mallopt()
  // itself turns this off.
  bool tune_heap = true;
  // Whether fine_tune() may end the learning-rate schedule sooner than the
  // regime's epochs when they prove slower than the budget leaves room for
  // (Result::schedule_note). Off: the regime is followed as given until the
  // budget cuts it, its rate wherever it had got to; a resumed run keeps a
  // fit its checkpoint holds (its rates so far were fitted ones).
  bool fit_schedule = true;
  // Which of a run's evaluated weights fine_tune() saves. The highest
  // validation accuracy of a run is the best of many noisy readings of one
  // small split: it flatters the epoch that reached it and may pick an early,
  // unannealed one over the final weights by less than the split can tell
  // apart. kLatestWithinNoise takes the latest epoch within one binomial
  // standard error of the highest accuracy instead; kLast, the last one
  // evaluated. Weights trained after the last evaluation (a run the budget
  // cut mid-epoch) compete as the latest when there is time to evaluate them.
  WeightsChoice hand_back = WeightsChoice::kLatestWithinNoise;
  double estimate_watts = 0;                 // power to assume when no meter reads; 0: none
  // A device profile (nasoa-profile's JSON) measured on this device with this
  // zoo: it predicts step times for the plans and the budget checks and, when
  // no meter reads and estimate_watts is 0, gives the power to assume (one
  // measured for other models is refused, kInvalidArgument; one measured on
  // another device, with other threads, with the heap set otherwise or in an
  // older format is used, and each plan notes why its times may not hold).
  // Empty: plan() uses the one it keeps in the state directory (measured on
  // first use, and again when it no longer fits), and
  // fine_tune(task, regime, ...) the one kept there when it fits, else none
  // (it never measures one).
  std::string device_profile;
  std::string sysfs_root = "/sys";           // where energy meters are looked for
  // Where the device keeps what it learns (see the top of this file). Empty:
  // default_state_dir(). plan(), record() and calibrate() use it;
  // fine_tune(task, regime, ...) only reads the device profile kept there.
  std::string state_dir;
  // Whether plan() scores each model's frozen features on a sample of the
  // task with LogME (a few forward passes per model, counted against the
  // budget) and gives the predictor that score as a feature. The probe starts
  // no model's score after a quarter of the time left to train has passed
  // (the one it is scoring then finishes): models it has not reached are
  // planned without a score, and a note says so.
  bool probe = false;
  // Images per class the probe looks at, >= 1: as many as nasoa-gather's
  // probes of the shipped experience, since a LogME score shifts with the
  // sample's size and the predictor learned the shipped scores.
  int probe_per_class = 20;
  // Evaluated experience records (shipped and device together) the
  // predictor needs before plan() follows it; below, plan() gives the
  // default plan with the predictor's estimates beside it. A boosted-tree
  // ensemble fitted on a handful of runs predicts about the same accuracy for
  // every plan, so the planner's tie-break, not evidence, would choose.
  int min_experience = 10;
};

// $XDG_STATE_HOME/nasoa when XDG_STATE_HOME is an absolute path, else
// $HOME/.local/state/nasoa, with HOME from the environment or else the user
// database. Throws Error{kNotFound} when there is no home directory to use
// (set AdapterOptions::state_dir then).
NASOA_API std::string default_state_dir();

// Measures the energy used from its creation on, so that what a caller
// spends before plan() or fine_tune() (reading the task, say) can count in
// Budget::spent_joules:
//
//   nasoa::EnergyWatch watch(options);   // the Adapter's options
//   nasoa::Task task = nasoa::Task::from_folder(dir, task_options);
//   budget.spent_joules = watch.joules();
//
// It reads the meter fine_tune() reads for these options (on a GPU job, the
// GPU's where NVML measures it) from its creation on. Where no meter
// measures, it estimates options.estimate_watts for the seconds since
// `estimate_from` (a process's start, say: what no meter read cannot be
// measured afterwards, but an estimate can go back); where estimate_watts is
// 0 too, it counts nothing (joules() 0, meter() "none"): plan() then takes a
// profile's watts for its own time only. Throws Error{kInvalidArgument} for
// options the Adapter would refuse, and for `estimate_from` in the future.
// Its sampling thread stops with it; joules() may be called from any thread.
class NASOA_API EnergyWatch {
 public:
  explicit EnergyWatch(const AdapterOptions& options,
                       std::chrono::steady_clock::time_point estimate_from = std::chrono::steady_clock::now());
  EnergyWatch(EnergyWatch&&) noexcept;
  EnergyWatch& operator=(EnergyWatch&&) noexcept;
  EnergyWatch(const EnergyWatch&) = delete;
  EnergyWatch& operator=(const EnergyWatch&) = delete;
  ~EnergyWatch();

  double joules() const;
  // As Result::energy_meter: the meter's name, "estimate:<watts>W", or "none".
  std::string meter() const;
  // True only when a meter measures (an estimate is not a measurement).
  bool measured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What a fine-tune reports to its progress callback: after every training
// step, and after every end-of-epoch evaluation (then `evaluated` is true,
// step == steps_per_epoch and validation_accuracy is that evaluation's; the
// epoch's last step reports the same step with the evaluation before).
struct Progress {
  int epoch = 0;
  int epochs = 0;  // where the run ends: the regime's, or sooner once its schedule is fitted
                   // (Result::scheduled_epochs), which may change at any epoch end
  std::int64_t step = 0, steps_per_epoch = 0;
  double loss = 0, train_accuracy = 0;
  double validation_accuracy = -1;  // latest (a resumed run's included); -1 before the first evaluation
  double elapsed_seconds = 0, eta_seconds = 0, joules = 0;
  bool evaluated = false;  // this report is an end-of-epoch evaluation's
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
  // The rule that chose them: AdapterOptions::hand_back, or a resumed run's
  // own (a run keeps the rule it started with, as it keeps its layout).
  WeightsChoice hand_back = WeightsChoice::kLatestWithinNoise;
  std::vector<EpochResult> epochs;
  std::int64_t steps = 0;
  double wall_seconds = 0;          // whole call, spent_seconds included
  double joules = 0;                // whole call, spent_joules included
  std::string energy_meter;         // which meter measured (or "estimate:...", or "none")
  bool energy_measured = false;
  // "" when every reading of the meter succeeded; otherwise how many failed
  // and the last reason. Gaps are spanned by the readings around them, or
  // carried at the last good power (or the mean so far, where higher) while
  // none came, so `joules` stays an estimate of the whole run rather than a
  // silent shortfall.
  std::string energy_note;
  // "" when every checkpoint was written; otherwise why one was not (a full
  // disk, say). Training then went on without checkpoints, and the model was
  // still saved: a kill after that point would have resumed from the last
  // checkpoint written, if any.
  std::string checkpoint_note;
  // The epochs the run was to end after: regime.epochs, unless its epochs
  // proved slower (or dearer in energy) than the budget left room for. Then
  // the learning-rate schedule was fitted at an epoch end to end sooner,
  // annealing in the time there was rather than being cut near its peak
  // rate, and schedule_note says when and why ("" when the schedule was
  // never fitted; a run fitted, then given its epochs back by a device that
  // sped up, keeps its note). A run ends after at most regime.epochs: a
  // device faster than planned ends early.
  int scheduled_epochs = 0;
  std::string schedule_note;
  // "" when the validation images hold every class; otherwise which classes
  // they lack (a class of one image trains on it; a validation folder may
  // have no folder of a class): validation_accuracy does not cover those.
  std::string validation_note;
  bool stopped_early = false;
  std::string stop_reason;          // "completed", "time budget", "energy budget", "memory cap",
                                    // "energy budget: ..." (a meter that read no energy in 5 s of
                                    // training: the budget could not be kept),
                                    // "diverged: ..." (a non-finite loss; the weights kept from its
                                    // evaluations are handed back), or "failed: ..." (an error once
                                    // weights were evaluated: an image of a streamed task that no longer
                                    // decodes, memory running out; the same)
  std::string device;               // "cpu", "cuda:0", or "cuda:0 (bf16 autocast)"
  // The memory layout the network trained in, "channels-first" or
  // "channels-last": on the CPU the faster one for the model, from the device
  // profile or tried on the first steps. The saved model is the same either way.
  std::string memory_layout;
  bool resumed = false;
  std::int64_t peak_memory_bytes = 0;  // the process's peak resident memory while it fine-tuned
  // What the budget had counted before training (Budget::spent_seconds,
  // plus the plan's planning seconds for fine_tune(task, plan, ...)), and
  // for a resumed run the same of each run before it; part of wall_seconds
  // and of each epoch's elapsed_seconds. wall_seconds - spent_seconds is
  // the time training took.
  double spent_seconds = 0;
  // The same in joules (Budget::spent_joules, plus the plan's
  // planning_joules): part of `joules` and of each epoch's joules.
  // joules - spent_joules is the energy training took.
  double spent_joules = 0;
};

class NASOA_API Adapter {
 public:
  // Throws Error{kInvalidArgument} for options out of range: threads above
  // the cores this process may use (its CPU affinity and cgroup CPU limit),
  // threads or loader threads negative or above 4096, a checkpoint interval
  // not above 0, estimate_watts negative, not finite or above 100,000 W,
  // min_experience negative, probe_per_class below 1 with probe on.
  // A moved-from `zoo` throws Error{kInvalidArgument}.
  explicit Adapter(const Zoo& zoo, AdapterOptions options = {});
  // A moved-from Adapter may only be assigned to or destroyed; any other
  // call throws Error{kInvalidArgument}.
  Adapter(Adapter&&) noexcept;
  Adapter& operator=(Adapter&&) noexcept;
  Adapter(const Adapter&) = delete;
  Adapter& operator=(const Adapter&) = delete;
  ~Adapter();

  // Fine-tunes regime.model on `task` and saves it to `out_dir` (replacing a
  // model directory there). Throws Error{kInvalidArgument} for an invalid
  // regime or budget, or one too small for even one step, an `out_dir`
  // check_out_dir() refuses, a memory cap below what the process holds
  // when training starts, and a run that diverges (its
  // loss or weights become NaN or infinite) before any weights were
  // evaluated; after that, a diverged run stops with the weights kept from
  // its evaluations (Result::stop_reason "diverged: ..."). Error{kNotFound}
  // for an unknown model, or resume without a checkpoint; Error{kCorrupt}
  // for a checkpoint of another model, regime or task (a task's images count
  // by path, label, size and modification time: rewritten images are
  // another task), except Error{kInvalidArgument} for a checkpoint whose run
  // flipped images where this one does not (the default before 0.3.1),
  // saying to resume with Regime::horizontal_flip on. `on_progress` runs on the
  // calling thread between steps, and its time is the budget's: the guard
  // reckons each next step with the last call's time, so a slow callback
  // means fewer steps, not a later end (a single call longer than the
  // budget's grace still overruns it). An exception it throws (of any type) stops the run and
  // reaches the caller unchanged, with `out_dir` left as it was: the way to
  // cancel a run. A checkpoint written before (`out_dir`.checkpoint) stays,
  // so that resume=true can continue the run later.
  Result fine_tune(const Task& task, const Regime& regime, const Budget& budget,
                   const std::string& out_dir, const ProgressCallback& on_progress = {},
                   bool resume = false);

  // Throws Error{kInvalidArgument} when fine_tune() would refuse `out_dir`:
  // an existing file or folder that is not a model directory (a zoo bundle
  // of several models, the zoo being adapted), or a parent folder that is
  // missing or cannot be written to.
  // fine_tune() checks it itself before any work; this lets a caller check
  // before planning too.
  void check_out_dir(const std::string& out_dir) const;

  // Picks the model and regime to fine-tune `task` with inside `budget`, in
  // one shot (no trial runs): for every zoo model of the task's image side,
  // learning rate {0.003, 0.01, 0.03, 0.1}, the batch sizes of the runs the
  // predictor is fitted on (the shipped experience's, 32 for the default zoo;
  // the device's own only for a bundle that ships none) that the profile
  // measured, or the profile's others when none of those fits (plan.notes
  // says so), frozen stage count and epoch count, the device profile
  // predicts the seconds (and joules, memory) and the performance predictor
  // the best validation accuracy; the plan expected to be most accurate
  // among those that fit wins. What the planner does not choose (optimiser,
  // schedule, weight decay, label smoothing, augmentation, validation
  // fraction, seed) comes from `base`. The predictor scores plans as if they
  // trained as its experience did: each of those fields that every evaluated
  // run of it shares, and `base` sets otherwise, is named in plan.notes.
  //
  // The predictor learns from the bundle's shipped experience (its
  // `experience` file, when it has one) and the device's records in the
  // state directory. With fewer than AdapterOptions::min_experience evaluated
  // records between them, the plan is the default one (source kDefault,
  // `why` says so): the largest model (by parameters) whose epoch fits,
  // learning rate 0.01, batch 32, nothing frozen, as many epochs as fit (at
  // most the planner grid's 512); its predicted accuracy is the predictor's estimate when there
  // is any experience, and empty when there is none.
  //
  // The budget counts all of plan()'s time: reading the state, the probe,
  // and, the first time on a device, measuring the device profile (a few
  // seconds: steps at batch 16, 32 and the shipped experience's batch
  // sizes with every frozen stage count, per
  // model). That profile comes from AdapterOptions::device_profile when set,
  // else from the state directory, else it is measured and cached there;
  // calibrate() measures it ahead of time, outside any budget. A first
  // plan() whose budget runs out while measuring keeps the models measured so
  // far in the state directory; the next call measures only the rest. The
  // profile's seconds per epoch are scaled by how long the epochs of the
  // device's own recorded runs under that same profile took against it (the
  // median of the last five: whole when slower, shrunk towards 1 when
  // faster; plan.notes says so), since a profile measured once goes stale
  // when the machine's load or clock changes. Plans fit
  // when their predicted seconds stay within 90 % of budget.seconds (and
  // their joules within 90 % of budget.joules), which keeps a tenth back for
  // estimate error; fine_tune's guard enforces the budget itself. An energy
  // budget counts plan()'s own energy (Plan::planning_joules) on top of
  // budget.spent_joules as the plans' joules, and a first plan's profile may
  // use what is usable of it and no more, as of a time budget. Reading the
  // task counts in joules only as the caller puts it in spent_joules (an
  // EnergyWatch started before reading measures it).
  //
  // Throws Error{kInvalidArgument} for a bad budget, CUDA asked for where
  // there is none, a task whose image side no model takes, or when no plan fits (naming the cheapest plan and the
  // budget it needs); Error{kIo} when the state directory cannot be written;
  // what opening the bundle's experience throws.
  Plan plan(const Task& task, const Budget& budget, const Regime& base = Regime{});

  // Fine-tunes plan.best.regime, as fine_tune() above does, with
  // budget.spent_seconds + plan.planning_seconds counted as spent. With
  // `resume`, the plan is the killed run's (saved with Plan::to_json) and
  // its planning_seconds are not added again: the checkpoint counts them.
  Result fine_tune(const Task& task, const Plan& plan, const Budget& budget, const std::string& out_dir,
                   const ProgressCallback& on_progress = {}, bool resume = false);

  // Stores the outcome of fine-tuning `task` as this device's experience and
  // calibrates the predictor to it, so that the next plan() learns from it
  // (durably: appended with fsync before it returns). The record holds the task's
  // meta-features, the model's features, result.regime (whatever was trained,
  // the plan's best, an alternative or a regime of the caller's), the epochs'
  // validation accuracy, seconds (spent seconds left out), joules, meter and
  // device, the budget from the plan, and the probe's score for the model
  // when the plan has one. A run a budget cut short (stop_reason other than
  // "completed" or "diverged: ...") is stored as the epochs it trained and
  // evaluated in full, with their best accuracy (and a cosine warm-up cut to
  // end before them): what it reached is not what its planned regime
  // reaches. A run whose schedule was fitted to end sooner
  // (result.scheduled_epochs below regime.epochs) is stored as a regime of
  // those epochs, the ones it annealed over (its first epochs ran at the
  // longer schedule's rates: close, not the same). Returns false, storing nothing, when this
  // very result was recorded before, or when a budget cut the run short
  // before any epoch was evaluated. Throws Error{kInvalidArgument} for an invalid
  // result.regime, Error{kNotFound} for a model the zoo lacks, Error{kIo}
  // when the state directory cannot be written, and Error{kInvalidArgument}
  // for result.scheduled_epochs outside [0, regime.epochs] or below the
  // epochs the result holds.
  bool record(const Task& task, const Plan& plan, const Result& result);

  // Measures the device profile the planner uses and caches it in the state
  // directory (again when `force`, or when the cached one does not match the
  // zoo or this device). Returns the seconds spent measuring; 0 when a
  // matching profile was there already (also when it waited for another
  // process sharing the state directory to measure it) or
  // AdapterOptions::device_profile is set.
  // Throws Error{kInvalidArgument} when CUDA is asked for where there is none.
  double calibrate(bool force = false);

  // The state directory's subfolder for this zoo (see the top of this file);
  // created by the first plan(), record() or calibrate().
  std::string state_dir() const;

  struct Impl;  // for the SDK's own use

 private:
  Impl& live() const;  // *impl_, or Error{kInvalidArgument} when moved from
  std::unique_ptr<Impl> impl_;
};

}  // namespace nasoa
