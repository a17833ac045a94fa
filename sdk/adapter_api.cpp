// nasoa::Adapter: ties a Task, a zoo model, a regime and a budget to the
// runtime's fine-tuning loop, energy monitor and model directory.
#include "nasoa/adapter.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <map>
#include <system_error>
#include <thread>

#include "nasoa/error.h"
#include "nasoa/version.h"
#include "runtime/energy/cuda_device.h"
#include "runtime/energy/energy_monitor.h"
#include "runtime/inference/model_dir.h"
#include "runtime/profile/device_profile.h"
#include "runtime/train/fine_tuner.h"
#include "sdk/adapter_impl.h"
#include "sdk/boundary.h"
#include "sdk/task_impl.h"
#include "zoo/bundle/bundle.h"
#include "zoo/bundle/sha256.h"
#include "zoo/text/printable.h"
#include "zoo/system/resident_memory.h"
#include "zoo/system/usable_cores.h"
#include "zoo/system/writer_lock.h"

namespace nasoa {
namespace {

using Clock = std::chrono::steady_clock;

// A double in full: std::to_string keeps six decimals, so weight decays of 0
// and 4e-7 would look the same.
std::string exact(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

std::string six_decimals(double v) { return std::to_string(v); }

// How a fingerprint was made: now, and by earlier builds, whose checkpoints
// still resume the run they were made by.
enum class FingerprintForm {
  kCurrent,        // as kWithoutStamps, and each file's size and modification time
  kWithoutStamps,  // exact numbers, the files where they are, the class names
  kTypedPaths,     // exact numbers, the paths as typed, no class names
  kSixDecimals     // std::to_string's six decimals, the paths as typed
};

// A file's size and modification time, as make and rsync judge a change: a
// task whose images were rewritten under the same names is another task,
// and a checkpoint's best accuracy was measured on the old ones.
std::string file_stamp(const std::string& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return "unreadable";
  const auto modified = std::filesystem::last_write_time(path, ec);
  if (ec) return "unreadable";
  return std::to_string(size) + ' ' + std::to_string(modified.time_since_epoch().count());
}

// Identifies (task, model, regime): a checkpoint only resumes the run it was
// made by. The task's files count by where they are, not how their folder
// was typed (a run started with --data ./task resumes with --data task or
// its absolute path), and its class names count: IDX or CSV tasks name
// their classes apart from the files.
std::string fingerprint(const runtime::ImageStore& store, const ModelInfo& model, const Regime& r,
                        FingerprintForm form = FingerprintForm::kCurrent) {
  std::string (*number)(double) = form == FingerprintForm::kSixDecimals ? six_decimals : exact;
  std::string text = model.name + '\n' + model.weights_sha256 + '\n';
  text += number(r.learning_rate) + ' ' + std::to_string(r.epochs) + ' ' + std::to_string(r.batch_size) + ' ' +
          std::to_string(r.frozen_stages) + ' ' + to_string(r.optimizer) + ' ' + number(r.momentum) + ' ' +
          number(r.weight_decay) + ' ' + to_string(r.schedule) + ' ' + number(r.warmup_epochs) + ' ' +
          number(r.label_smoothing) + ' ' + std::to_string(r.random_resized_crop) +
          std::to_string(r.horizontal_flip) + ' ' + number(r.validation_fraction) + ' ' + std::to_string(r.seed) +
          '\n';
  if (form == FingerprintForm::kTypedPaths || form == FingerprintForm::kSixDecimals) {
    for (std::size_t i = 0; i < store.size(); ++i)
      text += store.path(i) + '\t' + std::to_string(store.label(i)) + '\n';
    return zoo::sha256_hex(text);
  }
  for (const std::string& name : store.class_names()) text += name + '\n';
  // Resolved once per folder: a task's files share a few. Stamped once per
  // file: an IDX task's images share one.
  std::map<std::string, std::string> folders, stamps;
  for (std::size_t i = 0; i < store.size(); ++i) {
    const std::filesystem::path path(store.path(i));
    const std::string folder = path.parent_path().string();
    auto found = folders.find(folder);
    if (found == folders.end()) {
      std::error_code ec;
      const std::filesystem::path resolved = std::filesystem::weakly_canonical(folder.empty() ? "." : folder, ec);
      found = folders.emplace(folder, ec ? folder : resolved.string()).first;
    }
    text += (std::filesystem::path(found->second) / path.filename()).string() + '\t' +
            std::to_string(store.label(i));
    if (form == FingerprintForm::kCurrent) {
      auto stamp = stamps.find(store.path(i));
      if (stamp == stamps.end()) stamp = stamps.emplace(store.path(i), file_stamp(store.path(i))).first;
      text += '\t' + stamp->second;
    }
    text += '\n';
  }
  return zoo::sha256_hex(text);
}


int cores() { return zoo::usable_cores(); }

// Result::validation_note: the classes the validation images lack.
std::string validation_note(const runtime::ImageStore& store, const runtime::Split& split, bool validation_folder) {
  const std::vector<std::string>& names = store.class_names();
  std::vector<bool> held(names.size(), false);
  for (const std::size_t i : split.validation) held[std::size_t(store.label(i))] = true;
  constexpr std::size_t kShown = 5;
  std::size_t missing = 0;
  std::string listed;
  for (std::size_t c = 0; c < names.size(); ++c) {
    if (held[c]) continue;
    if (++missing <= kShown) listed += std::string(listed.empty() ? "" : ", ") + "'" + zoo::printable(names[c]) + "'";
  }
  if (missing == 0) return {};
  if (missing > kShown) listed += " and " + std::to_string(missing - kShown) + " more";
  return "the validation images hold " + std::to_string(names.size() - missing) + " of the " +
         std::to_string(names.size()) + " classes; none of " + listed +
         (validation_folder ? " (the validation folder has no image of them)"
                            : " (a class of one image trains on it, and none is held out)") +
         ", so the validation accuracy does not cover " +
         (missing == 1 ? "it" : "them");
}

}  // namespace

const char* to_string(DevicePreference device) {
  return device == DevicePreference::kCpu ? "cpu" : device == DevicePreference::kCuda ? "cuda" : "auto";
}

DevicePreference parse_device_preference(const std::string& name) {
  for (const DevicePreference d : {DevicePreference::kAuto, DevicePreference::kCpu, DevicePreference::kCuda})
    if (name == to_string(d)) return d;
  throw Error(ErrorCode::kInvalidArgument, "unknown device '" + name + "' (auto, cpu or cuda)");
}

const char* to_string(MemoryLayoutPreference layout) {
  return layout == MemoryLayoutPreference::kChannelsFirst  ? "channels-first"
         : layout == MemoryLayoutPreference::kChannelsLast ? "channels-last"
                                                           : "auto";
}

MemoryLayoutPreference parse_memory_layout_preference(const std::string& name) {
  for (const MemoryLayoutPreference l : {MemoryLayoutPreference::kAuto, MemoryLayoutPreference::kChannelsFirst,
                                         MemoryLayoutPreference::kChannelsLast})
    if (name == to_string(l)) return l;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown memory layout '" + name + "' (auto, channels-first or channels-last)");
}

namespace {

runtime::WeightsChoice runtime_choice(WeightsChoice choice) {
  switch (choice) {
    case WeightsChoice::kBestValidated: return runtime::WeightsChoice::kBestValidated;
    case WeightsChoice::kLatestWithinNoise: return runtime::WeightsChoice::kLatestWithinNoise;
    case WeightsChoice::kLast: return runtime::WeightsChoice::kLast;
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown WeightsChoice " + std::to_string(int(choice)));
}

WeightsChoice public_choice(runtime::WeightsChoice choice) {
  switch (choice) {
    case runtime::WeightsChoice::kBestValidated: return WeightsChoice::kBestValidated;
    case runtime::WeightsChoice::kLatestWithinNoise: return WeightsChoice::kLatestWithinNoise;
    case runtime::WeightsChoice::kLast: return WeightsChoice::kLast;
  }
  throw Error(ErrorCode::kInternal, "unknown runtime WeightsChoice " + std::to_string(int(choice)));
}

}  // namespace

const char* to_string(WeightsChoice choice) {
  return choice == WeightsChoice::kBestValidated       ? "best-validated"
         : choice == WeightsChoice::kLatestWithinNoise ? "latest-within-noise"
         : choice == WeightsChoice::kLast              ? "last"
                                                       : "unknown";
}

WeightsChoice parse_weights_choice(const std::string& name) {
  for (const WeightsChoice c : {WeightsChoice::kBestValidated, WeightsChoice::kLatestWithinNoise, WeightsChoice::kLast})
    if (name == to_string(c)) return c;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown weights choice '" + name + "' (best-validated, latest-within-noise or last)");
}

namespace sdk {

bool uses_gpu(const AdapterOptions& options) {
  return options.device != DevicePreference::kCpu && torch::cuda::is_available();
}

void check_device_available(const AdapterOptions& options) {
  if (options.device == DevicePreference::kCuda && !torch::cuda::is_available())
    throw Error(ErrorCode::kInvalidArgument, "CUDA was asked for, but this LibTorch build or machine has none");
}

// On the CPU, compute and batch building share the cores: together they
// never exceed them, because LibTorch's OpenMP threads spin while they wait
// and would starve an oversubscribed loader (measured on 2 cores: 25x slower).
int loader_threads(const AdapterOptions& options, bool on_gpu) {
  return options.loader_threads > 0 ? options.loader_threads
         : on_gpu                   ? std::max(1, cores() - 1)
                                    : std::max(1, cores() / 4);
}

static runtime::MeterOptions meter_options(const AdapterOptions& options, double estimate_watts) {
  runtime::MeterOptions m;
  m.sysfs_root = options.sysfs_root;
  m.estimate_watts = estimate_watts;
  m.gpu_job = uses_gpu(options);
  if (m.gpu_job) m.gpu_pci_bus_id = runtime::cuda_pci_bus_id(0);  // training's cuda:0
  return m;
}

std::unique_ptr<runtime::EnergyMonitor> start_measuring_meter(const AdapterOptions& options) {
  try {
    // Any estimate, so that detection does not fail for the want of one.
    std::unique_ptr<runtime::EnergyMeter> meter = runtime::detect_energy_meter(meter_options(options, 1.0));
    if (!meter->measured()) return nullptr;
    auto monitor = std::make_unique<runtime::EnergyMonitor>(std::move(meter));
    monitor->start();
    return monitor;
  } catch (const Error&) {
    return nullptr;
  }
}

void check_estimate_watts(const AdapterOptions& options) {
  if (!(options.estimate_watts >= 0 && options.estimate_watts <= runtime::kMaxPlausibleWatts))
    throw Error(ErrorCode::kInvalidArgument, "AdapterOptions::estimate_watts must be a number of watts in [0, " +
                                                 std::to_string(int(runtime::kMaxPlausibleWatts)) + "], got " +
                                                 zoo::shown_number(options.estimate_watts));
}

int compute_threads(const AdapterOptions& options, bool on_gpu) {
  return options.threads > 0 ? options.threads
         : on_gpu            ? cores()
                             : std::max(1, cores() - loader_threads(options, on_gpu));
}

runtime::Split task_split(const Task& task, const Regime& regime) {
  const runtime::ImageStore& store = *task.impl().store;
  runtime::Split split;
  if (const auto& from = task.impl().validation_from) {
    for (std::size_t i = 0; i < store.size(); ++i)
      (store.source_index(i) >= *from ? split.validation : split.train).push_back(i);
    return split;
  }
  return runtime::stratified_split(store.labels(), regime.validation_fraction, regime.seed);
}

double time_limit_seconds(const Budget& budget) {
  return budget.seconds > 0 ? budget.seconds : std::numeric_limits<double>::infinity();
}

void check_budget(const Budget& budget, bool finite) {
  const auto require = [&](bool ok, const char* field, double value, const char* expected) {
    if (!ok || (finite && !std::isfinite(value)))
      throw Error(ErrorCode::kInvalidArgument, std::string("budget field ") + field + " = " + zoo::shown_number(value) +
                                                   ": expected " + expected + (finite ? " and finite" : ""));
  };
  if (!(budget.seconds >= 0))
    throw Error(ErrorCode::kInvalidArgument, "budget field seconds = " + zoo::shown_number(budget.seconds) +
                                                 ": expected >= 0 (0 or infinity: no time limit)");
  require(budget.joules >= 0, "joules", budget.joules, ">= 0 (0: no limit)");
  // A run with neither limit would never stop early: a budget bounds it by
  // time, by energy, or both.
  if (std::isinf(time_limit_seconds(budget)) && !(budget.joules > 0 && std::isfinite(budget.joules)))
    throw Error(ErrorCode::kInvalidArgument,
                "budget has no limit: give seconds > 0, or joules > 0 (finite) for a budget of energy alone "
                "(seconds " + zoo::shown_number(budget.seconds) + ", joules " + zoo::shown_number(budget.joules) + ")");
  // The cap is used in bytes: 2^30 MiB (a pebibyte) keeps that far from overflowing.
  require(budget.memory_mib >= 0 && budget.memory_mib <= (std::int64_t(1) << 30), "memory_mib",
          double(budget.memory_mib), ">= 0 (0: no limit) and at most 2^30 (a PiB)");
  require(budget.spent_seconds >= 0, "spent_seconds", budget.spent_seconds, ">= 0");
  require(budget.spent_joules >= 0, "spent_joules", budget.spent_joules, ">= 0");
}

}  // namespace sdk

Adapter::Impl& Adapter::live() const {
  if (!impl_) throw Error(ErrorCode::kInvalidArgument, "nasoa::Adapter: used after it was moved from");
  return *impl_;
}

Adapter::Adapter(const Zoo& zoo, AdapterOptions options) {
  (void)zoo.impl();  // a moved-from Zoo is refused here, not at the first call
  constexpr int kMostThreads = 4096;
  const auto refuse = [](const std::string& what) { throw Error(ErrorCode::kInvalidArgument, "AdapterOptions::" + what); };
  if (options.threads < 0 || options.threads > kMostThreads)
    refuse("threads must be 0 (choose) to 4096, got " + std::to_string(options.threads));
  // A compute team wider than the cores makes every step wait for threads
  // that cannot run: one step took 20 s with 512 threads on 2 cores, far past
  // any budget's deadline, which is only checked between steps.
  if (const int usable = zoo::usable_cores(); options.threads > usable)
    refuse("threads " + std::to_string(options.threads) + " is more than the " + std::to_string(usable) +
           " cores this process may use (its CPU affinity and cgroup CPU limit); give at most " +
           std::to_string(usable) + ", or 0 to choose");
  if (options.loader_threads < 0 || options.loader_threads > kMostThreads)
    refuse("loader_threads must be 0 (choose) to 4096, got " + std::to_string(options.loader_threads));
  if (!(options.checkpoint_interval_seconds > 0))
    refuse("checkpoint_interval_seconds must be > 0, got " + std::to_string(options.checkpoint_interval_seconds));
  sdk::check_estimate_watts(options);
  if (options.min_experience < 0) refuse("min_experience must be >= 0, got " + std::to_string(options.min_experience));
  if (options.probe && options.probe_per_class < 1)
    refuse("probe_per_class must be >= 1 with the probe on, got " + std::to_string(options.probe_per_class));
  impl_ = std::make_unique<Impl>(Impl{zoo, std::move(options), {}, {}});
}
Adapter::Adapter(Adapter&&) noexcept = default;
Adapter& Adapter::operator=(Adapter&&) noexcept = default;
Adapter::~Adapter() = default;

void Adapter::check_out_dir(const std::string& out_dir) const {
  sdk::at_boundary("Adapter::check_out_dir", [&] {
    if (out_dir.empty()) throw Error(ErrorCode::kInvalidArgument, "no output directory given");
    runtime::check_model_dir_target(out_dir, live().zoo.dir());
  });
}

Result Adapter::fine_tune(const Task& task, const Regime& regime, const Budget& budget,
                          const std::string& out_dir, const ProgressCallback& on_progress, bool resume) {
  // What the caller's callback throws is the caller's: it stops the run and
  // is rethrown as it was, not translated into an Error of ours.
  std::exception_ptr from_callback;
  try {
    return sdk::at_boundary("Adapter::fine_tune", [&] {
      const Clock::time_point started = Clock::now();
      validate(regime);
      sdk::check_budget(budget, /*finite=*/false);
      // An infinite energy budget is none: it needs no meter, and a meter
      // that never moves must not stop the run as it would a real limit.
      const double joules_limit = std::isinf(budget.joules) ? 0.0 : budget.joules;
      const Zoo& zoo = live().zoo;
      check_out_dir(out_dir);  // before any work: a refused output would throw the trained model away
      // One run at a time into out_dir: two would take turns overwriting one
      // checkpoint, and the model saved last would be the other's.
      const zoo::WriterLock writing(runtime::model_dir_path(out_dir).string() + ".lock", out_dir);
      const AdapterOptions& options = live().options;
      const ModelInfo& model = zoo.model(regime.model);
      const runtime::ImageStore& store = *task.impl().store;
      if (store.side() != model.input_size)
        throw Error(ErrorCode::kInvalidArgument,
                    "the task was decoded at " + std::to_string(store.side()) + " px, model '" + model.name +
                        "' takes " + std::to_string(model.input_size) +
                        " px: read the task with TaskOptions::image_side = " + std::to_string(model.input_size));
      sdk::check_device_available(options);

      std::optional<runtime::DeviceProfile> profile = live().profile;
      if (!profile && !options.device_profile.empty()) profile = sdk::load_given_device_profile(live());
      // Without one, the profile an earlier plan() or calibrate() kept:
      // without predicted step times the first step has no guard.
      if (!profile && options.device_profile.empty()) profile = sdk::kept_device_profile(live());
      // A given profile may measure only some models; one it lacks trains
      // as if there were no profile.
      const runtime::ModelProfile* model_profile = profile ? profile->find_model(model.name) : nullptr;
      // What this model drew when profiled, where a meter read it.
      const double profile_watts = model_profile ? model_profile->most_watts() : 0.0;

      // Energy: the best meter there is; an energy budget needs one.
      const runtime::MeterOptions meter_options =
          sdk::meter_options(options, options.estimate_watts > 0 ? options.estimate_watts : profile_watts);
      std::unique_ptr<runtime::EnergyMonitor> monitor;
      try {
        monitor = std::make_unique<runtime::EnergyMonitor>(runtime::detect_energy_meter(meter_options));
        monitor->start();
      } catch (const Error& e) {
        if (joules_limit > 0)
          throw Error(ErrorCode::kInvalidArgument,
                      std::string("an energy budget needs an energy meter or AdapterOptions::estimate_watts: ") + e.what());
      }

      std::optional<runtime::TrainingState> state;
      // Beside the model directory, also when out_dir ends in a slash.
      const std::string checkpoint = runtime::model_dir_path(out_dir).string() + ".checkpoint";
      if (resume) state = runtime::load_checkpoint(checkpoint);
      // Identifies this run (it hashes the task's file list): its checkpoint
      // and heartbeat must be this run's.
      const std::string run_fingerprint = fingerprint(store, model, regime);
      // What the killed run used after its last checkpoint, by its heartbeat:
      // written under the checkpoint's fingerprint, or under this version's
      // when a resume of an earlier version's checkpoint was killed before
      // rewriting it (a checkpoint of another run is refused below).
      const runtime::CheckpointClock earlier =
          state ? runtime::spent_before_resume(checkpoint, *state, {state->fingerprint, run_fingerprint})
                : runtime::CheckpointClock{};
      const runtime::Limits limits(
          sdk::time_limit_seconds(budget), budget.spent_seconds + earlier.spent_seconds + std::chrono::duration<double>(Clock::now() - started).count(),
          joules_limit, [&] { return budget.spent_joules + earlier.joules + (monitor ? monitor->joules() : 0.0); },
          budget.memory_mib * 1024 * 1024);

      runtime::FineTuneJob job;
      job.network = zoo::load_network_for_task(zoo.dir(), model, int(store.class_names().size()), regime.seed);
      job.store = &store;
      job.regime = regime;
      job.split = sdk::task_split(task, regime);
      job.mean = model.mean;
      job.std = model.std;
      job.fingerprint = run_fingerprint;
      // A checkpoint of an earlier version, made by this very run, still
      // resumes (its fingerprint did not stamp the files, rounded the
      // regime's numbers, or took the paths as typed).
      if (state && state->fingerprint != job.fingerprint &&
          (state->fingerprint == fingerprint(store, model, regime, FingerprintForm::kWithoutStamps) ||
           state->fingerprint == fingerprint(store, model, regime, FingerprintForm::kTypedPaths) ||
           state->fingerprint == fingerprint(store, model, regime, FingerprintForm::kSixDecimals)))
        state->fingerprint = job.fingerprint;
      // Flips were on by default before 0.3.1: a run started then with the
      // defaults is the same run with them on, which only the caller may ask for.
      if (state && state->fingerprint != job.fingerprint && !regime.horizontal_flip) {
        Regime flipping = regime;
        flipping.horizontal_flip = true;
        for (const FingerprintForm form :
             {FingerprintForm::kCurrent, FingerprintForm::kWithoutStamps, FingerprintForm::kTypedPaths,
              FingerprintForm::kSixDecimals})
          if (state->fingerprint == fingerprint(store, model, flipping, form))
            throw Error(ErrorCode::kInvalidArgument,
                        checkpoint +
                            ": the checkpoint's run flips images (Regime::horizontal_flip, on by default before "
                            "0.3.1) and this one does not: resume with horizontal_flip on (nasoa-adapt --flip), "
                            "or remove the checkpoint");
      }
      job.checkpoint_path = checkpoint;
      job.checkpoint_interval_seconds = options.checkpoint_interval_seconds;
      // Ingestion and planning of this run and of the runs it resumes: not
      // training, so an experience record leaves them out of its times.
      const double overhead_seconds = budget.spent_seconds + (state ? state->overhead_seconds : 0.0);
      job.overhead_seconds = overhead_seconds;
      const double overhead_joules = budget.spent_joules + (state ? state->overhead_joules : 0.0);
      job.overhead_joules = overhead_joules;
      job.use_cuda = options.device != DevicePreference::kCpu;
      job.mixed_precision = options.mixed_precision;
      job.keep_freed_memory = options.tune_heap;
      job.fit_schedule = options.fit_schedule;
      job.weights_choice = runtime_choice(options.hand_back);
      // The power to judge an energy budget by before the meter has measured
      // training: the caller's estimate only where it is the meter (it is
      // "the power to assume when no meter reads"), else the profile's.
      const bool estimated = monitor && !monitor->measured();
      job.predicted_watts = estimated ? meter_options.estimate_watts : profile_watts;
      // (Too many frozen stages has no measurement; runtime::fine_tune refuses
      // it as the regime error it is.)
      if (model_profile && regime.frozen_stages <= job.network->num_stages()) {
        // A split smaller than the batch trains in batches of the split.
        const std::int64_t batch =
            std::min<std::int64_t>(regime.batch_size, std::max<std::size_t>(1, job.split.train.size()));
        job.predicted_step_seconds =
            runtime::predict_step_seconds(*profile, model.name, int(batch), regime.frozen_stages);
      }
      if (model_profile)
        job.predicted_evaluation_seconds = runtime::predict_evaluation_seconds(
            *profile, model.name, std::int64_t(job.split.validation.size()), regime.batch_size);
      // The layout the profile timed, so that its predictions hold; without a
      // profile the fine-tuner tries both.
      if (options.memory_layout == MemoryLayoutPreference::kChannelsFirst)
        job.layout = runtime::MemoryLayout::kChannelsFirst;
      else if (options.memory_layout == MemoryLayoutPreference::kChannelsLast)
        job.layout = runtime::MemoryLayout::kChannelsLast;
      else if (model_profile)
        job.layout = model_profile->training_layout;
      const bool on_gpu = sdk::uses_gpu(options);
      job.loader_workers = sdk::loader_threads(options, on_gpu);
      torch::set_num_threads(sdk::compute_threads(options, on_gpu));
      if (on_progress)
        job.on_progress = [&](const runtime::TrainProgress& p) {
          try {
            on_progress(Progress{p.epoch, p.epochs, p.step, p.steps_per_epoch, p.loss, p.train_accuracy,
                                 p.validation_accuracy, p.elapsed_seconds, p.eta_seconds, p.joules, p.evaluated});
          } catch (...) {
            from_callback = std::current_exception();
            throw;
          }
        };

      // Moved in and dropped here: a copy kept would hold the checkpoint's
      // weights, optimiser state and kept weights for the whole run, against
      // the memory cap.
      const bool resumed = state.has_value();
      const runtime::FineTuneOutcome outcome = runtime::fine_tune(job, limits, std::move(state));
      state.reset();

      runtime::ModelDirInfo info;
      info.labels = store.class_names();
      info.input_size = model.input_size;
      info.mean = model.mean;
      info.std = model.std;
      if (outcome.validation_accuracy >= 0) info.validation_accuracy = outcome.validation_accuracy;
      info.provenance = {std::string("nasoa ") + NASOA_VERSION_STRING + " Adapter::fine_tune",
                         "fine-tune of '" + model.name + "' from bundle '" + zoo.name() + "' on " + task.origin(),
                         regime.seed, zoo::utc_timestamp(), task.origin()};
      runtime::save_model_dir(out_dir, job.network, info);
      runtime::remove_checkpoint(checkpoint);  // the model is safe; the checkpoint has served
      if (monitor) monitor->stop();

      Result r;
      r.model_dir = out_dir;
      r.regime = regime;
      r.validation_accuracy = outcome.validation_accuracy;
      r.best_epoch = outcome.best_epoch;
      r.hand_back = public_choice(outcome.weights_choice);
      for (const runtime::EpochRecord& e : outcome.history)
        r.epochs.push_back({e.epoch, e.train_loss, e.train_accuracy, e.validation_accuracy, e.elapsed_seconds, e.joules});
      r.steps = outcome.steps;
      r.wall_seconds = limits.elapsed();
      r.joules = limits.joules();
      r.energy_meter = monitor ? monitor->meter_name() : "none";
      r.energy_measured = monitor && monitor->measured();
      r.checkpoint_note = outcome.checkpoint_note;
      r.scheduled_epochs = outcome.scheduled_epochs;
      r.schedule_note = outcome.schedule_note;
      r.validation_note = validation_note(store, job.split, task.impl().validation_from.has_value());
      if (monitor) {
        const runtime::EnergyStatus energy = monitor->status();
        if (energy.failed_samples > 0)
          r.energy_note = std::to_string(energy.failed_samples) + " of " +
                          std::to_string(energy.failed_samples + energy.samples) + " readings of " + energy.meter +
                          " failed (last: " + energy.last_error +
                          "); each gap was carried at the last good power (for an energy counter, at "
                          "its mean power so far when higher), then spanned to the next reading";
      }
      r.stopped_early = outcome.stopped_early;
      r.stop_reason = outcome.stop_reason;
      r.device = outcome.device;
      r.memory_layout = runtime::to_string(outcome.layout);
      r.resumed = resumed;
      r.peak_memory_bytes = zoo::peak_resident_bytes();
      r.spent_seconds = overhead_seconds;
      r.spent_joules = overhead_joules;
      return r;
    });
  } catch (...) {
    if (from_callback) std::rethrow_exception(from_callback);
    throw;
  }
}

Result Adapter::fine_tune(const Task& task, const Plan& plan, const Budget& budget, const std::string& out_dir,
                          const ProgressCallback& on_progress, bool resume) {
  if (!(plan.planning_seconds >= 0))
    throw Error(ErrorCode::kInvalidArgument,
                "plan planning_seconds must not be negative, got " + std::to_string(plan.planning_seconds));
  if (!(plan.planning_joules >= 0 && std::isfinite(plan.planning_joules)))
    throw Error(ErrorCode::kInvalidArgument,
                "plan planning_joules must be finite and not negative, got " + zoo::shown_number(plan.planning_joules));
  Budget counted = budget;
  // A resumed run's checkpoint already counts the time and energy of the run
  // that planned, planning included.
  if (!resume) {
    counted.spent_seconds += plan.planning_seconds;
    counted.spent_joules += plan.planning_joules;
  }
  return fine_tune(task, plan.best.regime, counted, out_dir, on_progress, resume);
}

}  // namespace nasoa
