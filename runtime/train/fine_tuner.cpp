#include "runtime/train/fine_tuner.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "nasoa/error.h"
#include "runtime/data/batch_loader.h"
#include "runtime/train/autocast.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/finishing_costs.h"
#include "runtime/train/schedule_fit.h"
#include "runtime/train/weights_choice.h"
#include "zoo/system/heap_policy.h"
#include "zoo/system/resident_memory.h"
#include "zoo/text/printable.h"

namespace nasoa::runtime {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kDivergedPrefix = "training diverged: ";

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Tensors of `state` whose names start with `prefix`, with the prefix removed.
zoo::NamedTensors with_prefix(const zoo::NamedTensors& state, const std::string& prefix, bool strip) {
  zoo::NamedTensors out;
  for (const auto& [name, tensor] : state) {
    if (strip) {
      if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), tensor);
    } else {
      out.emplace_back(prefix + name, tensor);
    }
  }
  return out;
}

zoo::NamedTensors cloned(const zoo::NamedTensors& state) {
  zoo::NamedTensors out;
  for (const auto& [name, tensor] : state) out.emplace_back(name, tensor.clone());
  return out;
}

// Moving average of a duration, so that one slow step does not stop a run.
struct Average {
  double value = -1;
  void add(double x) { value = value < 0 ? x : 0.8 * value + 0.2 * x; }
};

}  // namespace

Limits::Limits(double seconds, double spent, double joules, std::function<double()> joules_so_far,
               std::int64_t memory_bytes)
    : seconds_(seconds), spent_(spent), joules_limit_(joules), joules_so_far_(std::move(joules_so_far)),
      memory_bytes_(memory_bytes), start_(Clock::now()) {}

double Limits::elapsed() const { return spent_ + seconds_since(start_); }

double evaluate(zoo::NetworkImpl& network, const ImageStore& store, const std::vector<std::size_t>& indices,
                const std::array<float, 3>& mean, const std::array<float, 3>& std, int batch_size,
                const torch::Device& device, int workers, MemoryLayout layout) {
  if (indices.empty()) return -1;
  LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.mean = mean;
  options.std = std;
  options.workers = workers;
  BatchLoader loader(store, indices, options);
  loader.start_epoch(0);
  const bool was_training = network.is_training();
  network.eval();
  torch::NoGradGuard no_grad;
  std::int64_t correct = 0;
  while (auto batch = loader.next()) {
    const torch::Tensor logits = network.forward(in_memory_layout(batch->images.to(device), layout));
    correct += logits.argmax(1).cpu().eq(batch->labels).sum().item<std::int64_t>();
  }
  network.train(was_training);
  return double(correct) / double(indices.size());
}

// Images of trial_step_seconds()'s timed pass; it runs only for larger batches.
constexpr int kTrialImages = 8;

// The first training step's time at `batch` images, reckoned on the CPU
// from two forward and backward passes on kTrialImages random images: the
// first sets kernels up for the shape, as the first step will for its own,
// and the second's time per image is scaled to the batch (at most the true
// rate: larger batches compute faster per image). Nothing (zeros) for
// batches up to twice the trial's, whose first step is cheap anyway. The
// network's BatchNorm statistics are restored and its gradients cleared;
// without an optimiser step, the weights do not change.
struct TrialStep {
  double setup_seconds = 0;    // once, in the first step
  double compute_seconds = 0;  // in every step of `batch` images
};
TrialStep trial_step(zoo::NetworkImpl& net, std::int64_t batch, int side, int classes, MemoryLayout layout) {
  if (batch <= 2 * kTrialImages) return {};
  std::vector<std::pair<torch::Tensor, torch::Tensor>> buffers;
  for (const auto& b : net.named_buffers(true)) buffers.emplace_back(b.value(), b.value().clone());
  // Made without LibTorch's random generator, which the run's own draws
  // must find as they would without a trial.
  const torch::Tensor x =
      in_memory_layout(torch::linspace(-2.0, 2.0, std::int64_t(kTrialImages) * 3 * side * side)
                           .reshape({kTrialImages, 3, side, side}),
                       layout);
  const torch::Tensor y = torch::arange(kTrialImages, torch::kLong).remainder(std::max(1, classes));
  double pass[2] = {0, 0};
  for (double& seconds : pass) {
    const Clock::time_point t0 = Clock::now();
    torch::nn::functional::cross_entropy(net.forward(x), y).backward();
    seconds = seconds_since(t0);
  }
  torch::NoGradGuard no_grad;
  for (auto& [live, saved] : buffers) live.copy_(saved);
  for (torch::Tensor& p : net.parameters())
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  return {std::max(0.0, pass[0] - pass[1]), pass[1] / kTrialImages * double(batch)};
}

// Whether every weight and buffer (BatchNorm's running statistics too) is a
// number: a step that blows up may leave the loss finite but not these.
bool all_finite(zoo::NetworkImpl& network) {
  for (const torch::Tensor& t : network.parameters())
    if (!torch::isfinite(t).all().item<bool>()) return false;
  for (const torch::Tensor& t : network.buffers())
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) return false;
  return true;
}

FineTuneOutcome fine_tune(FineTuneJob& job, const Limits& limits, std::optional<TrainingState> resume) {
  validate(job.regime);
  const Regime& regime = job.regime;
  zoo::NetworkImpl& net = *job.network;
  if (regime.frozen_stages > net.num_stages())
    throw Error(ErrorCode::kInvalidArgument,
                "regime field frozen_stages = " + std::to_string(regime.frozen_stages) + ": model '" +
                    regime.model + "' has " + std::to_string(net.num_stages()) + " stages (stem included)");
  if (job.split.train.empty())
    throw Error(ErrorCode::kInvalidArgument, "the task has no training images after the validation split");

  // The memory cap is on this run's peak: what earlier work in the process
  // peaked at (profiling every model of a zoo, say) is not this run's.
  zoo::start_peak_measurement();
  if (job.keep_freed_memory) zoo::keep_freed_memory_for_reuse();
  // However the run ends, what the heap kept goes back to the kernel (also
  // when earlier work in the process set it and this job did not ask).
  struct GiveBack {
    bool keeping;
    ~GiveBack() {
      if (keeping) zoo::give_back_freed_memory();
    }
  } give_back{zoo::keeping_freed_memory()};

  FineTuneOutcome outcome;
  const bool cuda = job.use_cuda && torch::cuda::is_available();
  const torch::Device device = cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  outcome.device = cuda ? "cuda:0" : "cpu";
  if (cuda) {
    // The autotuned first step is energy too: under a joule budget, only
    // with the joules for that long a step at the predicted power.
    const bool joules_for_it = !limits.has_joules_limit() ||
                               (job.predicted_watts > 0 &&
                                limits.joules_left() >= job.predicted_watts * kCudnnAutotuneSeconds);
    at::globalContext().setBenchmarkCuDNN(limits.seconds_left() >= kCudnnAutotuneSeconds && joules_for_it);
  }
  const bool bf16 = cuda && job.mixed_precision && cuda_bf16_usable(device);
  if (bf16) outcome.device += " (bf16 autocast)";

  net.freeze_stages(regime.frozen_stages);
  net.to(device);
  // The layout: fixed by the job (or channels-first on a GPU), or tried out
  // on this call's first steps. Every change of layout moves the weights and
  // the optimiser's buffers together.
  // A resumed run keeps the layout the killed one had settled on.
  std::optional<MemoryLayout> fixed_layout = job.layout;
  if (!fixed_layout && resume) fixed_layout = resume->layout;
  if (cuda) fixed_layout = MemoryLayout::kChannelsFirst;
  LayoutTrial trial;
  MemoryLayout layout = MemoryLayout::kChannelsFirst;
  net.train();
  Optimizer optimizer(net, regime);
  auto switch_layout = [&](MemoryLayout to) {
    if (to == layout) return;
    set_memory_layout(net, to);
    optimizer.set_memory_layout(to);
    layout = to;
  };
  switch_layout(fixed_layout.value_or(trial.layout_for(0)));
  // The layout training has settled on: the fixed one, or the trial's once
  // it is decided.
  auto settled_layout = [&]() -> std::optional<MemoryLayout> {
    if (fixed_layout) return fixed_layout;
    if (trial.decided()) return trial.choice();
    return std::nullopt;
  };

  LoaderOptions train_options;
  train_options.batch_size = regime.batch_size;
  train_options.random_resized_crop = regime.random_resized_crop;
  train_options.horizontal_flip = regime.horizontal_flip;
  train_options.mean = job.mean;
  train_options.std = job.std;
  train_options.seed = regime.seed;
  train_options.workers = job.loader_workers;
  train_options.no_batch_of_one = true;
  BatchLoader train(*job.store, job.split.train, train_options);
  const std::int64_t steps_per_epoch = train.batches_per_epoch();

  TrainingState state;
  state.fingerprint = job.fingerprint;
  state.weights_choice = job.weights_choice;
  zoo::NamedTensors kept;  // the evaluated weights to hand back (weights_choice.h)
  double highest_accuracy = -1;  // of the run's evaluations, a resumed run's before included
  if (resume) {
    if (resume->fingerprint != job.fingerprint)
      throw Error(ErrorCode::kCorrupt, job.checkpoint_path +
                                           ": the checkpoint belongs to another run: another model, regime or "
                                           "task (a file added, removed, or rewritten since); remove it or run "
                                           "without --resume");
    zoo::load_module_state(net, with_prefix(resume->weights, "model.", true), job.checkpoint_path);
    optimizer.load_state(resume->weights, job.checkpoint_path);
    kept = with_prefix(resume->weights, "best.", true);
    state = std::move(*resume);  // its weights_choice is the run's from here on
    state.weights.clear();
    // The set-up this run added before training (its ingestion) is counted
    // in the epochs before the kill too: every epoch's elapsed time then
    // holds all runs' set-up, and minus it, the training time.
    const double added_overhead = std::max(0.0, job.overhead_seconds - state.overhead_seconds);
    const double added_overhead_joules = std::max(0.0, job.overhead_joules - state.overhead_joules);
    for (EpochRecord& e : state.history) {
      e.elapsed_seconds += added_overhead;
      e.joules += added_overhead_joules;
    }
    outcome.history = state.history;
    for (const EpochRecord& e : state.history) highest_accuracy = std::max(highest_accuracy, e.validation_accuracy);
    if (state.schedule.end(regime.epochs) > regime.epochs)
      throw Error(ErrorCode::kCorrupt, job.checkpoint_path + ": the checkpoint's schedule ends after epoch " +
                                           std::to_string(state.schedule.end_epoch) + ", past the regime's " +
                                           std::to_string(regime.epochs));
    // A fit's map reaches the regime's schedule end where the run ends; one
    // that does not was not written by a fit of this regime.
    if (state.schedule.end_epoch > 0 &&
        std::abs(state.schedule.scheduled(state.schedule.end_epoch) - double(regime.epochs)) > 1e-6 * regime.epochs)
      throw Error(ErrorCode::kCorrupt,
                  job.checkpoint_path + ": the checkpoint's schedule reaches epoch " +
                      zoo::shown_number(state.schedule.scheduled(state.schedule.end_epoch)) +
                      " of the regime's schedule after epoch " + std::to_string(state.schedule.end_epoch) +
                      ", where it ends, not the regime's " + std::to_string(regime.epochs));
    if (state.schedule.fitted(regime.epochs))
      outcome.schedule_note = "the learning-rate schedule ends after epoch " +
                              std::to_string(state.schedule.end(regime.epochs)) + " of the regime's " +
                              std::to_string(regime.epochs) + ", as fitted before the run was resumed";
    // Every epoch has the same batches, so the position is the steps taken.
    outcome.steps = std::int64_t(state.epoch) * steps_per_epoch + state.step;
  }

  // What finishing costs: a last evaluation and saving the model.
  double parameter_bytes = 0;
  for (const auto& p : net.parameters()) parameter_bytes += double(p.numel() * p.element_size());
  const double save_seconds = estimated_save_seconds(parameter_bytes);
  // Until one is timed, a checkpoint is estimated (the planner charges the
  // same: finishing_costs.h).
  double checkpoint_seconds = job.checkpoint_path.empty() ? 0.0 : estimated_checkpoint_seconds(parameter_bytes);
  // A training step's images: fewer than the batch size when the training
  // split is smaller, while validation batches are full.
  const double images_per_step =
      std::max(1.0, double(job.split.train.size()) / double(std::max<std::int64_t>(1, steps_per_epoch)));
  // A resumed run without a profile starts from what the killed one
  // measured, so that its first step is guarded too.
  const double known_step_seconds = job.predicted_step_seconds > 0 ? job.predicted_step_seconds
                                    : resume                       ? state.step_seconds
                                                                   : 0.0;
  Average step_seconds;
  if (known_step_seconds > 0) step_seconds.add(known_step_seconds);
  // Nothing else bounds a first step of unknown time: a batch of thousands
  // of images could take longer than the budget.
  // Its compute seeds the step time (and the final pass's guess, per image);
  // its set-up is the first step's alone.
  const TrialStep first_step_trial =
      known_step_seconds > 0 || cuda || !std::isfinite(limits.seconds_left())
          ? TrialStep{}
          : trial_step(net, largest_batch(std::int64_t(job.split.train.size()), regime.batch_size, true),
                       job.store->side(), net.num_classes(), layout);
  if (first_step_trial.compute_seconds > 0) step_seconds.add(first_step_trial.compute_seconds);
  double eval_seconds = resume && state.evaluation_seconds > 0 ? state.evaluation_seconds : -1;
  // What a checkpoint keeps of them: a step's time once one past the set-up
  // is measured (or as known), and a pass's once one is.
  double typical_step_seconds = known_step_seconds;
  // Until a pass is timed: the profile's prediction, else a guess from the
  // step time (a pass of forward steps only).
  auto finish_reserve = [&] {
    const double eval = eval_seconds >= 0                      ? eval_seconds
                        : job.predicted_evaluation_seconds > 0 ? job.predicted_evaluation_seconds
                                                               : std::max(0.0, step_seconds.value) / images_per_step *
                                                                     0.4 * double(job.split.validation.size());
    // A stop writes a checkpoint before finishing, so that a kill while
    // the last evaluation runs or the model is saved loses nothing.
    return eval + save_seconds + checkpoint_seconds + kFinishingSlackSeconds;
  };
  // What the progress reports: the steps left at the steps' pace, then
  // finishing, and never past the deadline.
  auto eta = [&](double steps_left) {
    return std::min(std::max(0.0, limits.seconds_left()),
                    steps_left * std::max(0.0, step_seconds.value) + finish_reserve());
  };
  // Up front: one step (as the profile predicts it, when there is one), the
  // final evaluation and saving must fit in what ingestion left.
  const double first_step_needs =
      std::max(0.0, step_seconds.value) + first_step_trial.setup_seconds + finish_reserve() + 0.25;
  // The same for an energy budget, at the power the job predicts (without
  // one, only a budget already spent is known to be too small).
  const double first_step_joules = job.predicted_watts > 0 ? job.predicted_watts * first_step_needs : 0;
  const bool time_short = limits.seconds_left() < first_step_needs;
  const bool energy_short = limits.joules_left() <= first_step_joules;
  // A run killed near its deadline resumes with no time (or energy) for a
  // step: what it trained before the kill is its result, its kept evaluated
  // weights or, killed before any evaluation, the weights it had (refusing
  // would leave a checkpoint no resume could ever use).
  const bool trained_before = !kept.empty() || state.epoch > 0 || state.step > 0;
  const bool spent_before_resume = resume && trained_before && (time_short || energy_short);
  if (energy_short && !spent_before_resume)
    throw Error(ErrorCode::kInvalidArgument,
                "energy budget too small: " + zoo::shown_number(std::max(0.0, limits.joules_left())) +
                    " J are left, and one training step, the final evaluation and saving need about " +
                    zoo::shown_number(first_step_joules) + " J at the " + zoo::shown_number(job.predicted_watts) +
                    " W predicted");
  if (time_short && !spent_before_resume)
    throw Error(ErrorCode::kInvalidArgument,
                "time budget too small: " + std::to_string(limits.elapsed()) +
                    " s are already used (ingestion included), leaving " +
                    std::to_string(std::max(0.0, limits.seconds_left())) +
                    " s, and one training step, the final evaluation and saving need about " +
                    std::to_string(first_step_needs) + " s" +
                    (job.predicted_step_seconds > 0          ? " (from the device profile)"
                     : known_step_seconds > 0                ? " (as measured before the run was stopped)"
                     : first_step_trial.compute_seconds > 0 ? " (a step's time reckoned from a trial on " +
                                                                  std::to_string(kTrialImages) + " images)"
                                                             : ""));

  // `loss_sum`, `correct` and `seen`: the epoch's batches before `step`.
  // A checkpoint that cannot be written (a full disk, say) is not worth the
  // run: training goes on without checkpoints, and the outcome says why.
  std::optional<std::pair<int, std::int64_t>> last_written;
  double checkpoint_seconds_total = 0;  // writing checkpoints in this call: no epoch's cost
  auto write_checkpoint = [&](int epoch, std::int64_t step, double loss_sum, std::int64_t correct,
                              std::int64_t seen) {
    if (job.checkpoint_path.empty() || !outcome.checkpoint_note.empty()) return;
    if (last_written == std::pair{epoch, step}) return;  // nothing trained since: the same state
    const Clock::time_point checkpoint_started = Clock::now();
    state.epoch = epoch;
    state.step = step;
    state.epoch_loss_sum = loss_sum;
    state.epoch_correct = correct;
    state.epoch_seen = seen;
    state.spent_seconds = limits.elapsed();
    state.overhead_seconds = std::min(job.overhead_seconds, state.spent_seconds);
    state.joules = limits.joules();
    state.overhead_joules = std::min(job.overhead_joules, state.joules);
    state.history = outcome.history;
    state.layout = settled_layout();
    state.step_seconds = std::max(0.0, typical_step_seconds);
    state.evaluation_seconds = std::max(0.0, eval_seconds);
    const auto stop_checkpoints = [&](const std::string& why) {
      outcome.checkpoint_note =
          "checkpoints stopped: " + why + "; a kill after this resumes from the last one written, if any";
      checkpoint_seconds = 0;
    };
    // Gathering the tensors copies them (to the host from a GPU): memory
    // running out there is a checkpoint not written, not a failed run.
    try {
      state.weights = with_prefix(zoo::module_state(net), "model.", false);
      const zoo::NamedTensors opt = optimizer.state();
      state.weights.insert(state.weights.end(), opt.begin(), opt.end());
      const zoo::NamedTensors b = with_prefix(kept, "best.", false);
      state.weights.insert(state.weights.end(), b.begin(), b.end());
      save_checkpoint(job.checkpoint_path, state);
      last_written = std::pair{epoch, step};
      checkpoint_seconds = seconds_since(checkpoint_started);
      checkpoint_seconds_total += checkpoint_seconds;
    } catch (const Error& e) {
      stop_checkpoints(e.what());
    } catch (const std::bad_alloc&) {
      stop_checkpoints("out of memory while gathering the checkpoint's tensors");
    } catch (const c10::Error& e) {
      stop_checkpoints(e.what_without_backtrace());
    }
    state.weights.clear();
  };

  // Training's power, over the steps and evaluations since this call's first
  // step. Not per step: a meter's total moves only at each of its samples
  // (every 100 ms), so a short step's share reads as 0 or as many times the
  // truth. Until half a second is measured, the job's prediction where it
  // has one, else what was measured over at least one sample interval (at
  // most twice the truth); 0 while nothing is known.
  std::optional<Clock::time_point> power_since;
  double joules_since = 0;
  auto training_watts = [&]() -> double {
    constexpr double kSampleSeconds = 0.1;  // EnergyMonitor's default interval
    const double seconds = power_since ? seconds_since(*power_since) : 0.0;
    const double joules = power_since ? limits.joules() - joules_since : 0.0;
    if (seconds >= 0.5 && joules > 0) return joules / seconds;
    if (job.predicted_watts > 0) return job.predicted_watts;
    return joules > 0 ? joules / std::max(seconds, kSampleSeconds) : 0.0;
  };

  constexpr double kStuckMeterSeconds = 5;  // longer than any meter's update interval

  // The caller's progress callback runs on this thread between steps, so its
  // time is the budget's too: the last call's is added to the next step's.
  double callback_seconds = 0;
  bool in_callback = false;  // what the callback throws is the caller's
  auto report = [&](const TrainProgress& p) {
    const Clock::time_point called = Clock::now();
    in_callback = true;
    job.on_progress(p);
    in_callback = false;
    callback_seconds = seconds_since(called);
  };

  std::int64_t steps_this_call = 0;
  // Steps that set kernels up: a call's first, and with a layout trial the
  // first in the other layout too.
  const std::int64_t setup_steps = fixed_layout ? 1 : 2;
  auto stop_because = [&]() -> std::string {
    if (steps_this_call >= 1 && steps_this_call <= setup_steps && known_step_seconds <= 0) {
      // Only set-up steps' times are known: take one more step if that much
      // time and saving still fit, to learn the real one (the final
      // evaluation may use the guarantee's grace meanwhile).
      if (limits.seconds_left() < step_seconds.value + callback_seconds + save_seconds + checkpoint_seconds + kFinishingSlackSeconds)
        return "time budget";  // (a stop writes a checkpoint before it saves)
    } else if (const double setup = steps_this_call == 0 ? first_step_trial.setup_seconds : 0.0;
               step_seconds.value >= 0 &&
               limits.seconds_left() < step_seconds.value + setup + callback_seconds + finish_reserve()) {
      return "time budget";
    }
    // One more step, then finishing (the last evaluation and saving), at the
    // power training draws.
    if (limits.has_joules_limit() && power_since && seconds_since(*power_since) >= kStuckMeterSeconds &&
        limits.joules() <= joules_since) {
      // Seconds of training and not a joule: the meter is stuck (some
      // virtual machines' counters never move), and the budget is counted
      // in what it reads, so it cannot be kept. Stop rather than run unchecked.
      return "energy budget: the meter read no energy in " + zoo::shown_number(kStuckMeterSeconds) +
             " s of training, so the budget could not be enforced";
    }
    if (const double watts = training_watts(); watts > 0) {
      if (limits.joules_left() < watts * (std::max(0.0, step_seconds.value) + callback_seconds + finish_reserve()))
        return "energy budget";
    }
    if (limits.memory_bytes() > 0 && zoo::peak_resident_bytes() > limits.memory_bytes()) {
      if (outcome.steps == 0 && !resume)
        throw Error(ErrorCode::kInvalidArgument,
                    "memory budget too small: " + std::to_string(limits.memory_bytes() >> 20) +
                        " MiB, but the process already holds " + std::to_string(zoo::peak_resident_bytes() >> 20) +
                        " MiB before the first training step");
      return "memory cap";
    }
    return {};
  };

  TrainProgress progress;
  progress.epochs = state.schedule.end(regime.epochs);
  progress.steps_per_epoch = steps_per_epoch;
  // A resumed run reports the last evaluation it had, as the killed run
  // last reported.
  for (const EpochRecord& e : outcome.history)
    if (e.validation_accuracy >= 0) progress.validation_accuracy = e.validation_accuracy;
  // A run resumed with nothing left that was killed before any evaluation:
  // its weights may still be evaluated, within the grace (below).
  bool trained_since_evaluation = spent_before_resume && kept.empty();
  Clock::time_point last_checkpoint = Clock::now();
  Clock::time_point last_clock = Clock::now();
  // The heartbeat between checkpoints: what a kill would otherwise take off
  // the budget's count. Best effort: without it a kill loses at most the
  // seconds since the last checkpoint.
  auto save_clock = [&] {
    if (job.checkpoint_path.empty()) return;
    try {
      save_checkpoint_clock(job.checkpoint_path, job.fingerprint, {limits.elapsed(), limits.joules()});
    } catch (const Error&) {
    }
    last_clock = Clock::now();
  };
  if (!job.checkpoint_path.empty()) {
    if (resume) {
      // What this call spent before training (ingestion, loading the
      // checkpoint) is already on the clock: a resume killed before its
      // first step must not lose it.
      save_clock();
    } else {
      // A fresh run starts from nothing: an earlier run's checkpoint and
      // clock, of the same task and regime, must neither count against this
      // one nor be resumed in place of it if this one is killed.
      remove_checkpoint(job.checkpoint_path);
    }
  }
  const torch::nn::functional::CrossEntropyFuncOptions loss_options =
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(regime.label_smoothing);

  // Non-finite weights must never be evaluated, kept or handed back: the run
  // stops with the weights kept from its evaluations, or fails when there
  // are none.
  auto diverged = [&](const std::string& what) {
    const std::string why = what + " (learning rate " + std::to_string(regime.learning_rate) + ")";
    if (kept.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  std::string(kDivergedPrefix) + why + ", before any weights were evaluated; lower the learning rate");
    outcome.stopped_early = true;
    outcome.stop_reason = "diverged: " + why + "; the weights kept from its evaluations are handed back";
    trained_since_evaluation = false;
  };

  if (spent_before_resume) {
    outcome.stopped_early = true;
    outcome.stop_reason = time_short ? "time budget" : "energy budget";
  }
  // A failure once weights have been evaluated (an image that no longer
  // decodes, memory running out in a step or a pass) ends the run with the
  // weights kept from its evaluations, as divergence does: throwing them
  // away would leave nothing of the run, and its checkpoint may not resume
  // (a task that lost a file is another task). Before any evaluation it is
  // the caller's error, as it always was.
  auto failed = [&](const std::string& what) {
    if (kept.empty() || in_callback) return false;
    outcome.stopped_early = true;
    outcome.stop_reason = "failed: " + what + "; the weights kept from its evaluations are handed back";
    trained_since_evaluation = false;  // the weights may be half-way through a step
    return true;
  };
  // Fitting the schedule to the time and energy left (schedule_fit.h), at
  // the end of epoch `done` (1-based). An epoch's cost is measured from one
  // epoch end of this call to the next, not from the call's start: its
  // first epoch sets kernels up, and a resumed one is partial. (A call
  // resumed at an epoch's end sets kernels up in its first measured gap,
  // one of the median's three at least.) Checkpoint writes are left out and
  // charged apart, one per interval, at the time the last one took.
  std::vector<double> epoch_gaps, epoch_joule_gaps;
  std::optional<std::pair<double, double>> last_epoch_end;  // elapsed seconds, joules
  double checkpoint_seconds_then = 0;
  int fits = 0, first_fit_after = 0;
  auto fit_schedule = [&](int done) {
    const double now = limits.elapsed(), joules_now = limits.joules();
    if (last_epoch_end) {
      const double gross = now - last_epoch_end->first;
      const double clean = std::max(0.0, gross - (checkpoint_seconds_total - checkpoint_seconds_then));
      epoch_gaps.push_back(clean);
      epoch_joule_gaps.push_back(gross > 0 ? std::max(0.0, joules_now - last_epoch_end->second) * clean / gross : 0.0);
    }
    last_epoch_end = {now, joules_now};
    checkpoint_seconds_then = checkpoint_seconds_total;
    const int end = state.schedule.end(regime.epochs);
    const double measured = epoch_cost(epoch_gaps);
    if (!job.fit_schedule || done >= end || measured <= 0) return;
    // The checkpoints of an epoch: one per interval, at most one per step.
    const double checkpoints =
        job.checkpoint_path.empty() ? 0.0
        : job.checkpoint_interval_seconds > 0
            ? std::min(double(steps_per_epoch), measured / job.checkpoint_interval_seconds)
            : double(steps_per_epoch);
    const double seconds = measured + checkpoints * checkpoint_seconds;
    // After the last epoch (its evaluation is in its cost): saving, the
    // last checkpoint and the slack.
    const double finishing = save_seconds + checkpoint_seconds + kFinishingSlackSeconds;
    const double seconds_left = limits.seconds_left() - finishing;
    const double joules = limits.has_joules_limit() ? epoch_cost(epoch_joule_gaps) * seconds / measured : 0.0;
    const double joules_left = limits.joules_left() - training_watts() * finishing;
    int fitted = fitted_end(done, regime.epochs, seconds, seconds_left, joules, joules_left);
    // An energy budget whose epochs' joules are not known yet (epochs
    // shorter than the meter's updates) may still shorten the schedule by
    // time, never lengthen it.
    if (limits.has_joules_limit() && joules <= 0) fitted = std::min(fitted, end);
    if (fitted == end) return;
    state.schedule.end_at(done, fitted, regime.epochs);
    progress.epochs = fitted;
    if (fits++ == 0) first_fit_after = done;
    const std::size_t counted = std::min(epoch_gaps.size(), kRecentEpochGaps);
    const bool timed = std::isfinite(seconds_left);
    const std::string left = (timed ? zoo::fixed_number(std::max(0.0, seconds_left), 1) + " s" : std::string()) +
                             (timed && joules > 0 ? " and " : "") +
                             (joules > 0 ? zoo::fixed_number(std::max(0.0, joules_left), 1) + " J" : "");
    outcome.schedule_note =
        "the learning-rate schedule ends after epoch " + std::to_string(fitted) + " of the regime's " +
        std::to_string(regime.epochs) + ": after epoch " + std::to_string(done) + ", an epoch took " +
        zoo::fixed_number(seconds, 2) + " s" + (joules > 0 ? " and " + zoo::fixed_number(joules, 1) + " J" : "") +
        " (the median of the last " + std::to_string(counted) + ", checkpoints included), and the " + left +
        " left covered " + std::to_string(fitted - done) + " more" +
        (fits > 1 ? " (fitted " + std::to_string(fits) + " times, first after epoch " +
                        std::to_string(first_fit_after) + ")"
                  : "");
  };
  try {
    for (int epoch = state.epoch; epoch < state.schedule.end(regime.epochs) && !outcome.stopped_early; ++epoch) {
      const std::int64_t first = epoch == state.epoch ? state.step : 0;
      train.start_epoch(epoch, first);
      const bool resumed_epoch = epoch == state.epoch && first > 0;
      double loss_sum = resumed_epoch ? state.epoch_loss_sum : 0;
      std::int64_t correct = resumed_epoch ? state.epoch_correct : 0, seen = resumed_epoch ? state.epoch_seen : 0;
      for (std::int64_t step = first;; ++step) {
        // Past the epoch's last batch there is no step to take: the epoch's
        // end (its evaluation, which needs only finishing's reserve) decides,
        // so a run that trained every step is not cut short of its epoch.
        if (const std::string reason = step < steps_per_epoch ? stop_because() : std::string(); !reason.empty()) {
          outcome.stopped_early = true;
          outcome.stop_reason = reason;
          write_checkpoint(epoch, step, loss_sum, correct, seen);
          break;
        }
        // The step's time counts the wait for its batch: with images streamed
        // from disk, loading can cost more than computing.
        const Clock::time_point waited_from = Clock::now();
        std::optional<Batch> batch = train.next();
        if (!batch) break;
        if (!fixed_layout) switch_layout(trial.layout_for(steps_this_call));
        const Clock::time_point t0 = Clock::now();
        if (!power_since) {
          power_since = t0;
          joules_since = limits.joules();
        }
        const torch::Tensor images = in_memory_layout(batch->images.to(device), layout);
        const torch::Tensor labels = batch->labels.to(device);
        optimizer.zero_grad();
        torch::Tensor logits, loss;
        {
          CudaAutocast autocast(bf16);
          try {
            logits = net.forward(images);
          } catch (const c10::Error& e) {
            // Only with a batch of one image (a batch size of 1; the loader
            // never ends an epoch in one otherwise), and BatchNorm says so.
            const std::string what = e.what_without_backtrace();
            if (images.size(0) != 1 || what.find("more than 1 value per channel") == std::string::npos) throw;
            throw Error(ErrorCode::kInvalidArgument,
                        "batch size " + std::to_string(regime.batch_size) + " cannot train this model: its last " +
                            "feature maps are 1x1 at this input size, and BatchNorm needs more than one value per " +
                            "channel; use a batch size of 2 or more");
          }
          loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), labels, loss_options);
        }
        loss.backward();
        optimizer.step(step_learning_rate(regime, epoch, step, steps_per_epoch, state.schedule));
        const std::int64_t n = labels.size(0);
        const double step_loss = loss.item<double>();
        if (!std::isfinite(step_loss)) {
          diverged(std::string("the loss became ") + (std::isnan(step_loss) ? "NaN" : "infinite") + " at epoch " +
                   std::to_string(epoch + 1) + ", step " + std::to_string(step + 1));
          break;
        }
        loss_sum += step_loss * double(n);
        correct += logits.argmax(1).eq(labels).sum().item<std::int64_t>();
        seen += n;
        ++outcome.steps;
        ++steps_this_call;
        trained_since_evaluation = true;
        // A set-up step (oneDNN primitives, cuDNN algorithms, CUDA kernels)
        // can take many steps' time: it would make the guard stop at once. It
        // counts only while nothing better is known, and the first step after
        // the set-up replaces it.
        const double computed = seconds_since(t0);
        const double took = seconds_since(waited_from);
        if (!fixed_layout) trial.record(steps_this_call - 1, computed);  // the layout changes compute only
        if (steps_this_call <= setup_steps) {
          if (step_seconds.value < 0) step_seconds.add(took);
        } else if (steps_this_call == setup_steps + 1 && known_step_seconds <= 0) {
          step_seconds.value = took;
        } else {
          step_seconds.add(took);
        }
        if (steps_this_call > setup_steps) typical_step_seconds = step_seconds.value;

        progress.epoch = epoch + 1;
        progress.step = step + 1;
        progress.loss = loss_sum / double(seen);
        progress.train_accuracy = double(correct) / double(seen);
        progress.elapsed_seconds = limits.elapsed();
        progress.joules = limits.joules();
        progress.eta_seconds = eta(double(state.schedule.end(regime.epochs) - epoch - 1) * double(steps_per_epoch) +
                                   double(steps_per_epoch - step - 1));
        if (job.on_progress) report(progress);

        if (seconds_since(last_checkpoint) >= job.checkpoint_interval_seconds) {
          write_checkpoint(epoch, step + 1, loss_sum, correct, seen);
          last_checkpoint = Clock::now();
        } else if (seconds_since(last_clock) >= 1.0) {
          save_clock();
        }
      }
      if (outcome.stopped_early) break;

      EpochRecord record;
      record.epoch = epoch + 1;
      record.train_loss = seen ? loss_sum / double(seen) : 0;
      record.train_accuracy = seen ? double(correct) / double(seen) : 0;
      if (trained_since_evaluation && !all_finite(net)) {
        diverged("the weights became NaN or infinite in epoch " + std::to_string(epoch + 1));
        break;
      }
      // Evaluate only when that still leaves time to save; otherwise stop here.
      if (limits.seconds_left() < finish_reserve()) {
        outcome.stopped_early = true;
        outcome.stop_reason = "time budget";
      } else {
        save_clock();  // a kill during the pass loses that pass at most
        const Clock::time_point t0 = Clock::now();
        record.validation_accuracy = evaluate(net, *job.store, job.split.validation, job.mean, job.std,
                                              regime.batch_size, device, job.loader_workers, layout);
        eval_seconds = seconds_since(t0);
        trained_since_evaluation = false;
        highest_accuracy = std::max(highest_accuracy, record.validation_accuracy);
        if (replaces_kept(state.weights_choice, record.validation_accuracy, state.best_accuracy,
                          highest_accuracy, job.split.validation.size())) {
          kept = cloned(zoo::module_state(net));  // first: a copy that runs out of memory changes nothing
          state.best_accuracy = record.validation_accuracy;
          state.best_epoch = epoch + 1;
        }
        progress.validation_accuracy = record.validation_accuracy;
      }
      record.elapsed_seconds = limits.elapsed();
      record.joules = limits.joules();
      outcome.history.push_back(record);
      // Before the epoch end's checkpoint, which then holds the fit.
      if (!outcome.stopped_early) fit_schedule(epoch + 1);
      // An epoch end checkpoints when this call has written none yet (so that
      // a run is resumable, with its measured step and pass times, from early
      // on), when the interval has passed, and at the run's end (the last
      // epoch, or a stop here), so that a kill while the model is saved loses
      // nothing. Not at every epoch end: on small tasks epochs take a fraction
      // of a second, and a checkpoint (weights, optimiser state and best
      // weights) at each of them cost several percent of the training and
      // wrote gigabytes a minute to a device's flash.
      if (!last_written || seconds_since(last_checkpoint) >= job.checkpoint_interval_seconds ||
          outcome.stopped_early || epoch + 1 == state.schedule.end(regime.epochs)) {
        write_checkpoint(epoch + 1, 0, 0, 0, 0);
        last_checkpoint = Clock::now();
      }
      // The evaluation is news as well: reported only with the next step, the
      // last epoch's accuracy never reached the caller. After any checkpoint
      // of this epoch end, so that a callback that cancels here keeps it.
      if (job.on_progress && record.validation_accuracy >= 0) {
        // Set in full: a run resumed from a checkpoint taken after the epoch's
        // last step reaches here without a step of its own.
        progress.epoch = epoch + 1;
        progress.step = steps_per_epoch;
        if (seen > 0) {
          progress.loss = record.train_loss;
          progress.train_accuracy = record.train_accuracy;
        }
        progress.elapsed_seconds = limits.elapsed();
        progress.joules = limits.joules();
        progress.eta_seconds = eta(double(state.schedule.end(regime.epochs) - epoch - 1) * double(steps_per_epoch));
        progress.evaluated = true;
        report(progress);
        progress.evaluated = false;
      }
    }
  } catch (const Error& e) {
    if (!failed(e.what())) throw;
  } catch (const std::bad_alloc&) {
    if (!failed("out of memory")) throw;
  } catch (const c10::Error& e) {
    if (!failed(e.what_without_backtrace())) throw;
  }
  if (!outcome.stopped_early) outcome.stop_reason = "completed";

  // Hand back the weights the run's rule chooses (weights_choice.h): the
  // weights trained since the last evaluation compete, as the latest, when
  // there is time to evaluate them.
  // With no evaluated weights at all, half the guarantee's grace may go to
  // evaluating these: a model whose accuracy is unknown is of little use.
  double current_accuracy = -1;
  if (trained_since_evaluation && !all_finite(net)) diverged("the weights became NaN or infinite");
  const double allowance = kept.empty() ? 0.5 * limits.grace_seconds() : 0.0;
  if (trained_since_evaluation && limits.seconds_left() + allowance > finish_reserve() - kFinishingSlackSeconds) {
    save_clock();  // a kill during the last pass loses that pass at most
    const Clock::time_point t0 = Clock::now();
    current_accuracy = evaluate(net, *job.store, job.split.validation, job.mean, job.std,
                                regime.batch_size, device, job.loader_workers, layout);
    eval_seconds = seconds_since(t0);
  }
  save_clock();  // and one while the model is saved, the time up to it
  if (current_accuracy >= 0) highest_accuracy = std::max(highest_accuracy, current_accuracy);
  const bool current_replaces = current_accuracy >= 0 && replaces_kept(state.weights_choice, current_accuracy,
                                                                       state.best_accuracy, highest_accuracy,
                                                                       job.split.validation.size());
  if (!kept.empty() && !current_replaces) {
    zoo::load_module_state(net, kept, "kept weights");
    outcome.validation_accuracy = state.best_accuracy;
    outcome.best_epoch = state.best_epoch;
  } else {
    outcome.validation_accuracy = current_accuracy;
    outcome.best_epoch = trained_since_evaluation ? 0 : state.best_epoch;
  }
  outcome.weights_choice = state.weights_choice;
  outcome.evaluation_seconds = std::max(0.0, eval_seconds);
  outcome.scheduled_epochs = state.schedule.end(regime.epochs);
  // A run too short to finish its trial keeps the layout it trained in last.
  outcome.layout = settled_layout().value_or(layout);
  net.eval();
  net.to(torch::kCPU);
  set_memory_layout(net, MemoryLayout::kChannelsFirst);  // callers get the default layout
  return outcome;
}

bool diverged_before_evaluation(const Error& e) {
  return e.code() == ErrorCode::kInvalidArgument && std::string_view(e.what()).rfind(kDivergedPrefix, 0) == 0;
}

}  // namespace nasoa::runtime
