// Adapter::plan, record and calibrate: NASOA's online adaption (the schedule
// generator, the performance predictor and the device's experience store in
// runtime/adapt) behind the public API.
#include <pwd.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>

#include "nasoa/adapter.h"
#include "nasoa/error.h"
#include "runtime/adapt/device_speed.h"
#include "runtime/adapt/experience_coverage.h"
#include "runtime/adapt/planner.h"
#include "runtime/adapt/probe.h"
#include "sdk/adapter_impl.h"
#include "sdk/boundary.h"
#include "sdk/task_impl.h"
#include "sdk/zoo_impl.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/bundle.h"
#include "zoo/bundle/sha256.h"
#include "zoo/system/folder_lock.h"
#include "zoo/system/heap_policy.h"
#include "zoo/system/resident_memory.h"
#include "zoo/text/printable.h"

namespace nasoa {
namespace {

namespace fs = std::filesystem;
namespace rt = runtime;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string seconds_text(double s) { return zoo::fixed_number(s, 2); }

// The profile's batch sizes, beside those of the shipped experience: 32, at
// which default plans run (and the default zoo's experience was gathered:
// predictor plans keep to the experience's sizes); and 16, the smaller batch
// a predictor's plan falls back to when a memory cap leaves no plan at 32
// (the default plan, given without experience, keeps to 32). Two points
// also give the affine fit of step time in batch size its slope. Batch 64
// was measured too until 0.3.2, a third of the profiling time of a device's
// first plan, for plans that took it only when no epoch at 32 fitted the
// time budget, on no evidence of what it would reach.
const std::vector<int> kProfileBatches{16, 32};
constexpr int kDefaultBatch = 32;

// The zoo's subfolder of the state directory: its name, made file-name safe,
// and a digest of its models, so that a retrained model starts afresh while
// a new shipped experience for the same models keeps the device's records.
std::string zoo_key(const Zoo& zoo) {
  std::string text;
  for (const ModelInfo& m : zoo.models())
    text += m.name + '\t' + m.encoding + '\t' + std::to_string(m.input_size) + '\t' + m.weights_sha256 + '\n';
  std::string name;
  for (char c : zoo.name())
    name += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  if (name.empty() || name.front() == '.') name = "zoo" + name;
  return name + "-" + zoo::sha256_hex(text).substr(0, 16);
}

std::string state_folder(const Adapter::Impl& impl) {
  const std::string root = impl.options.state_dir.empty() ? default_state_dir() : impl.options.state_dir;
  return (fs::path(root) / zoo_key(impl.zoo)).string();
}

void make_dir(const std::string& dir) {
  try {
    zoo::create_directories_durably(dir);
  } catch (const Error& e) {
    throw Error(e.code(), std::string("cannot create the state directory: ") + e.what());
  }
}

// ---- device profile ---------------------------------------------------------

// Whether fine-tuning's heap will keep freed memory for reuse: as asked
// (when the environment leaves the heap alone; once set, it stays so for the
// process). Asked, not set: a process that only plans keeps glibc's defaults.
bool fine_tuning_keeps_freed_memory(const AdapterOptions& options) {
  return options.tune_heap ? zoo::would_keep_freed_memory() : zoo::keeping_freed_memory();
}

// One file per way steps are timed, so that processes fine-tuning with other
// settings on one state directory (an app with its defaults, the command
// line with --threads 1) do not measure over each other's profile at every
// switch. The CPU's thread count is always named (below).
std::string profile_path(const Adapter::Impl& impl, const std::string& folder) {
  const bool gpu = sdk::uses_gpu(impl.options);
  const AdapterOptions defaults;
  std::string name = std::string("device-profile-") + (gpu ? "cuda" : "cpu");
  // On a GPU the compute threads do not time the steps (timing_mismatch).
  // On the CPU the count is named even when it is the default: the default
  // follows the cores a process may use (affinity, cgroup limits), and two
  // processes whose defaults differ would each find the other's profile
  // stale and measure it again at every turn.
  if (!gpu) name += "-" + std::to_string(sdk::compute_threads(impl.options, false)) + "-threads";
  if (impl.options.tune_heap != defaults.tune_heap) name += "-untuned-heap";
  // Asked to tune the heap where the environment already does (MALLOC_*
  // variables): steps time otherwise than in a plain environment, so the
  // two keep one file each instead of measuring over each other's.
  else if (impl.options.tune_heap && !fine_tuning_keeps_freed_memory(impl.options)) name += "-environment-heap";
  return (fs::path(folder) / (name + ".json")).string();
}

// Whether `p` was measured for this zoo's models (all of them or some).
bool measured_for_this_zoo(const rt::DeviceProfile& p, const Adapter::Impl& impl) {
  std::vector<rt::BundleModelEntry> models;
  for (const ModelInfo& m : impl.zoo.models()) models.push_back({m.name, m.encoding, m.input_size, m.upstream_classes});
  return p.bundle_models == models;
}

// Why a profile's steps did not run on the device, or with the compute
// threads, that fine-tuning here uses; empty when they did.
std::string compute_mismatch(const rt::DeviceProfile& p, const Adapter::Impl& impl) {
  const bool gpu = sdk::uses_gpu(impl.options);
  if (p.device.device != (gpu ? "cuda:0" : "cpu")) return "it was measured on " + p.device.device;
  const int threads = sdk::compute_threads(impl.options, gpu);
  if (!gpu && p.device.threads != threads)
    return "it was measured with " + std::to_string(p.device.threads) + " threads, fine-tuning uses " +
           std::to_string(threads);
  return {};
}

// Why a profile's steps were not timed as fine-tuning here will run them:
// by a format that did not record how, on another device, with other
// threads, or with the heap set otherwise. Empty when they were.
std::string timing_mismatch(const rt::DeviceProfile& p, const Adapter::Impl& impl) {
  if (p.format_version < 2)
    return "it is of format version " + std::to_string(p.format_version) +
           ", which did not measure each model's faster memory layout";
  if (p.format_version < rt::kDeviceProfileFormatVersion)
    return "it is of format version " + std::to_string(p.format_version) +
           ", which did not record how the heap was set while steps were timed";
  if (std::string other = compute_mismatch(p, impl); !other.empty()) return other;
  // The steps timed must have run with the heap fine-tuning will have.
  const bool keeps = fine_tuning_keeps_freed_memory(impl.options);
  if (p.device.kept_freed_memory != keeps)
    return std::string("its steps were timed with the heap ") + (p.device.kept_freed_memory ? "" : "not ") +
           "keeping freed memory for reuse, and fine-tuning's heap will " + (keeps ? "" : "not ") + "keep it";
  return {};
}

// Why a cached profile does not describe this zoo on this device as
// fine-tuning will use it; empty when it does.
std::string profile_mismatch(const rt::DeviceProfile& p, const Adapter::Impl& impl) {
  if (p.format_version < rt::kDeviceProfileFormatVersion) return timing_mismatch(p, impl);
  if (!measured_for_this_zoo(p, impl)) return "it was measured for other models";
  if (p.models.size() != impl.zoo.models().size()) return "it covers only some of the models";
  return timing_mismatch(p, impl);
}

const rt::ShippedExperience& shipped_experience(Adapter::Impl& impl);  // below

struct ProfileOutcome {
  bool measured = false;
  double seconds = 0;
  std::string note;
};

ProfileOutcome ensure_profile(Adapter::Impl& impl, const std::string& folder, bool force,
                              double time_limit_seconds = 0, double joules_limit = 0,
                              std::function<double()> joules_used = {}) {
  ProfileOutcome out;
  if (!impl.options.device_profile.empty()) {
    // The caller's profile is used as given, but a plan whose times rest on
    // steps timed otherwise than they will run says so.
    if (!impl.profile) impl.profile = sdk::load_given_device_profile(impl);
    const std::string mismatch = timing_mismatch(*impl.profile, impl);
    if (!mismatch.empty())
      out.note = impl.options.device_profile + ": " + mismatch +
                 "; the plan's times are estimated from it as given (AdapterOptions::device_profile; "
                 "nasoa-profile measures one as fine-tuning runs)";
    return out;
  }
  if (impl.profile && !force) return out;
  const std::string path = profile_path(impl, folder);
  // The cached profile, when it is one for this device and these threads.
  auto use_cached = [&] {
    if (force || !fs::exists(path)) return false;
    try {
      rt::DeviceProfile cached = rt::load_device_profile(path);
      const std::string mismatch = profile_mismatch(cached, impl);
      if (mismatch.empty()) {
        impl.profile = std::move(cached);
        out.note.clear();
        return true;
      }
      out.note = path + ": measured again, " + mismatch;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kIo) throw;
      out.note = std::string(e.what()) + " (measured again)";
    }
    return false;
  };
  if (use_cached()) return out;
  const auto waited_from = Clock::now();
  make_dir(folder);
  // Processes sharing the state folder that all find no profile take turns
  // to measure it: measured at once, each would time the others' load and
  // keep the slow figures for good. The ones that waited take the profile
  // the first one saved.
  // A plan() with a time budget waits no longer than the budget allows: the
  // other process may be measuring with a budget of its own, or be stopped.
  const std::string purpose = "measure the device profile";
  // (A budget of energy alone has no time limit: it waits as calibrate() does.)
  const bool limited = time_limit_seconds > 0 && std::isfinite(time_limit_seconds);
  const zoo::FolderLock lock = limited ? zoo::FolderLock(folder, purpose, std::max(1e-3, time_limit_seconds))
                                       : zoo::FolderLock(folder, purpose);
  if (lock.timed_out())
    throw Error(ErrorCode::kInvalidArgument,
                folder + ": another process is measuring this device's profile there and still held it after " +
                    seconds_text(since(waited_from)) + " s, all the time this plan's budget had for it; plan again " +
                    "when it has finished, or measure the profile ahead of time (nasoa-profile, or "
                    "Adapter::calibrate())");
  if (use_cached()) {
    out.seconds = since(waited_from);
    return out;
  }
  const bool gpu = sdk::uses_gpu(impl.options);
  rt::ProfileOptions options;
  // kProfileBatches, and the batch sizes the shipped experience was
  // gathered at: the predictor's plans keep to those.
  std::set<int> batches(kProfileBatches.begin(), kProfileBatches.end());
  for (const int b : shipped_experience(impl).summary().batch_sizes) batches.insert(b);
  options.batch_sizes.assign(batches.begin(), batches.end());
  options.warmup = 1;
  options.repetitions = 3;
  options.threads = sdk::compute_threads(impl.options, gpu);
  options.use_cuda = gpu;
  options.keep_freed_memory = impl.options.tune_heap;
  options.meter.sysfs_root = impl.options.sysfs_root;
  options.time_limit_seconds =
      time_limit_seconds > 0 ? std::max(1e-3, time_limit_seconds - since(waited_from)) : 0.0;
  options.joules_limit = std::max(0.0, joules_limit);
  options.joules_used = std::move(joules_used);
  // A first plan() whose budget ran out while profiling keeps the models it
  // measured, so that the next call (or calibrate()) finishes the profile
  // instead of starting it over.
  options.partial_path = fs::path(path).replace_extension(".partial.json").string();
  if (force) {
    std::error_code ignored;  // measure again means all of it
    fs::remove(options.partial_path, ignored);
  }
  options.save_path = path;
  rt::DeviceProfile profile = rt::profile_bundle(impl.zoo.dir(), options);
  out.seconds = since(waited_from);
  out.measured = true;
  impl.profile = std::move(profile);
  return out;
}

// ---- experience -------------------------------------------------------------

// A file the bundle lists, read whole; its bytes must still be the ones the
// manifest vouches for.
std::string read_listed(const std::string& zoo_dir, const zoo::FileEntry& file, std::string* path) {
  *path = (fs::path(zoo_dir) / file.path).string();
  std::string bytes = zoo::read_file(*path);
  if (zoo::sha256_hex(bytes) != file.sha256)
    throw Error(ErrorCode::kCorrupt, *path + ": changed since the bundle was opened (its SHA-256 no longer "
                                             "matches the manifest's)");
  return bytes;
}

// The bundle's experience, its records read only if planning needs them
// (ShippedExperience): with the bundle's predictor, it needs the summary
// that predictor carries.
const rt::ShippedExperience& shipped_experience(Adapter::Impl& impl) {
  if (impl.shipped) return *impl.shipped;
  const zoo::Manifest& manifest = impl.zoo.impl().manifest;
  // The bundle's own predictor, when it is one this build reads: a state
  // directory takes it if it was fitted on this experience with the options
  // the state uses (PredictorState::open), and fits its own otherwise.
  std::optional<rt::Predictor> predictor;
  if (manifest.predictor) {
    std::string path;
    const std::string bytes = read_listed(impl.zoo.dir(), *manifest.predictor, &path);
    try {
      predictor = rt::Predictor::from_json(bytes, path);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kIo) throw;
      // Another format version or feature set: the state fits its own.
    }
  }
  if (manifest.experience) {
    const zoo::FileEntry file = *manifest.experience;
    const std::string dir = impl.zoo.dir();
    impl.shipped = rt::ShippedExperience(
        [file, dir] {
          std::string path;
          const std::string bytes = read_listed(dir, file, &path);
          return rt::parse_experience_log(bytes, path).records;
        },
        file.sha256, std::move(predictor));
  } else {
    impl.shipped = rt::ShippedExperience(std::vector<rt::ExperienceRecord>{}, {}, std::move(predictor));
  }
  return *impl.shipped;
}

rt::PredictorState open_state(Adapter::Impl& impl, const std::string& folder) {
  make_dir(folder);
  return rt::PredictorState::open(folder, shipped_experience(impl));
}

// ---- planning ---------------------------------------------------------------

// Stands in for the predictor when there is no experience at all, so that
// the planner's budget arithmetic picks the documented default: ranks plans
// by model size first, then by epochs.
class DefaultPlanScorer final : public rt::AccuracyPredictor {
 public:
  explicit DefaultPlanScorer(std::vector<double> log_parameters) : sizes_(std::move(log_parameters)) {
    std::sort(sizes_.begin(), sizes_.end());
  }
  std::vector<rt::Prediction> predict(const std::vector<rt::FeatureVector>& rows) const override {
    std::vector<rt::Prediction> out;
    out.reserve(rows.size());
    for (const rt::FeatureVector& x : rows) {
      const auto rank = std::lower_bound(sizes_.begin(), sizes_.end(), x[rt::kLogParameters]) - sizes_.begin();
      out.push_back({double(rank) * 1000.0 + x[rt::kEpochs], 0.0});
    }
    return out;
  }

 private:
  std::vector<double> sizes_;
};

PlannedRun public_run(const rt::PlannedRun& p, bool predicted) {
  PlannedRun r;
  r.regime = p.regime;
  if (predicted) {
    r.predicted_accuracy = p.predicted_accuracy;
    r.predicted_std = p.predicted_std;
  }
  r.predicted_seconds = p.seconds;
  r.training_seconds = p.training_seconds;
  r.evaluation_seconds = p.evaluation_seconds;
  r.predicted_joules = p.joules;
  r.predicted_memory_bytes = p.memory_bytes;
  r.max_fitting_epochs = p.max_fitting_epochs;
  r.why = p.why;
  return r;
}

// Scores models in turn until `seconds` are spent; those left unscored are
// planned without the probe's feature (the predictor takes it as missing).
std::map<std::string, double> probe_models(const Adapter::Impl& impl, const Task& task, const rt::Split& split,
                                           const std::vector<const ModelInfo*>& models, double seconds,
                                           std::vector<std::string>& notes) {
  const auto started = Clock::now();
  const bool gpu = sdk::uses_gpu(impl.options);
  torch::set_num_threads(sdk::compute_threads(impl.options, gpu));
  const rt::ImageStore& store = *task.impl().store;
  const std::vector<std::size_t> sample = rt::probe_sample(store, split.train, impl.options.probe_per_class);
  std::map<std::string, double> scores;
  for (std::size_t i = 0; i < models.size(); ++i) {
    const ModelInfo* m = models[i];
    if (since(started) >= seconds) {
      notes.push_back("probe stopped after " + std::to_string(i) + " of " + std::to_string(models.size()) +
                      " models: the " + seconds_text(seconds) + " s it may take of the budget were spent");
      break;
    }
    zoo::Network network = zoo::load_network(impl.zoo.dir(), *m);
    if (gpu) network->to(torch::kCUDA);
    try {
      const double score =
          rt::logme_probe(*network, store, sample, m->mean, m->std, sdk::loader_threads(impl.options, gpu));
      // Degenerate features (all alike) can make the evidence 0/0: no score
      // then, rather than a NaN that ranks arbitrarily and cannot be saved.
      if (std::isfinite(score))
        scores[m->name] = score;
      else
        notes.push_back("probe of model '" + m->name +
                        "' left out: its features give no LogME score (not finite, or all alike)");
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kInvalidArgument) throw;
      notes.push_back("probe of model '" + m->name + "' left out: " + e.what());
    }
  }
  return scores;
}

// Identifies a task by its images and labels, as the checkpoint fingerprint does.
std::string task_digest(const rt::ImageStore& store) {
  std::string text;
  for (std::size_t i = 0; i < store.size(); ++i) text += store.path(i) + '\t' + std::to_string(store.label(i)) + '\n';
  return zoo::sha256_hex(text);
}

std::string task_name(const std::string& origin) {
  fs::path p(origin);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace

rt::DeviceProfile sdk::load_given_device_profile(const Adapter::Impl& impl) {
  rt::DeviceProfile given = rt::load_device_profile(impl.options.device_profile);
  if (!measured_for_this_zoo(given, impl))
    throw Error(ErrorCode::kInvalidArgument, impl.options.device_profile + ": not a profile of the zoo at " +
                                                 impl.zoo.dir() +
                                                 ": it was measured for other models (measure one with "
                                                 "nasoa-profile --zoo)");
  return given;
}

std::optional<rt::DeviceProfile> sdk::kept_device_profile(const Adapter::Impl& impl) {
  try {
    // (With no state_dir, a process with no home has no state directory:
    // default_state_dir() throws, and there is no profile kept.)
    const std::string path = profile_path(impl, state_folder(impl));
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return std::nullopt;
    rt::DeviceProfile kept = rt::load_device_profile(path);
    if (profile_mismatch(kept, impl).empty()) return kept;
  } catch (const Error&) {
    // A damaged or unreadable one: plan() measures it again; a run with a
    // regime of its own goes on without, as it would with none kept.
  }
  return std::nullopt;
}

std::string default_state_dir() {
  return sdk::at_boundary("default_state_dir", [] {
    if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && xdg[0] == '/') return (fs::path(xdg) / "nasoa").string();
    std::string home;
    if (const char* h = std::getenv("HOME"); h && h[0] == '/') {
      home = h;
    } else {
      passwd entry{};
      passwd* found = nullptr;
      std::vector<char> buffer(1 << 14);
      if (::getpwuid_r(::getuid(), &entry, buffer.data(), buffer.size(), &found) == 0 && found && found->pw_dir &&
          found->pw_dir[0] == '/')
        home = found->pw_dir;
    }
    if (home.empty())
      throw Error(ErrorCode::kNotFound,
                  "no state directory: XDG_STATE_HOME and HOME are not absolute paths and the user database has no "
                  "home directory; set AdapterOptions::state_dir");
    return (fs::path(home) / ".local" / "state" / "nasoa").string();
  });
}

std::string Adapter::state_dir() const {
  return sdk::at_boundary("Adapter::state_dir", [&] { return state_folder(live()); });
}

double Adapter::calibrate(bool force) {
  return sdk::at_boundary("Adapter::calibrate", [&] {
    sdk::check_device_available(live().options);
    if (!live().options.device_profile.empty()) {
      ensure_profile(live(), {}, false);
      return 0.0;
    }
    // Waiting for another process's measurement is not measuring.
    const ProfileOutcome outcome = ensure_profile(live(), state_folder(live()), force);
    return outcome.measured ? outcome.seconds : 0.0;
  });
}

Plan Adapter::plan(const Task& task, const Budget& budget, const Regime& base_regime) {
  return sdk::at_boundary("Adapter::plan", [&] {
    const auto started = Clock::now();
    Impl& impl = live();
    const Zoo& zoo = impl.zoo;
    // A plan records its budget and must read back (Plan::from_json): NaN and
    // infinity have no JSON form.
    sdk::check_budget(budget, /*finite=*/true);
    sdk::check_device_available(impl.options);

    std::vector<const ModelInfo*> candidates;
    std::vector<std::string> left_out;  // notes of the plan
    std::string sizes;
    for (const ModelInfo& m : zoo.models()) {
      if (m.input_size == task.image_side())
        candidates.push_back(&m);
      else
        left_out.push_back("model '" + m.name + "' left out: it takes " + std::to_string(m.input_size) +
                           " px and the task was read at " + std::to_string(task.image_side()) +
                           " px (TaskOptions::image_side)");
      sizes += (sizes.empty() ? "" : ", ") + m.name + " " + std::to_string(m.input_size) + " px";
    }
    if (candidates.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "the task was decoded at " + std::to_string(task.image_side()) + " px, and no model of bundle '" +
                      zoo.name() + "' takes that size (" + (sizes.empty() ? "it has no models" : sizes) +
                      "): read the task with TaskOptions::image_side set to one of them");
    Regime base = base_regime;
    if (base.model.empty()) base.model = candidates.front()->name;
    validate(base);

    // Refused before anything is spent on profiling: not even starting and
    // saving a model would fit.
    const rt::PlanOverheads defaults;
    const double usable = sdk::time_limit_seconds(budget) * (1 - defaults.safety_margin) - budget.spent_seconds;
    std::int64_t fewest_parameters = std::numeric_limits<std::int64_t>::max();
    for (const ModelInfo* m : candidates) fewest_parameters = std::min(fewest_parameters, m->parameters);
    const double fixed = rt::fixed_seconds(defaults, fewest_parameters);
    if (usable <= fixed)
      throw Error(ErrorCode::kInvalidArgument,
                  "time budget too small to plan a fine-tune: " + seconds_text(std::max(0.0, usable)) + " s of " +
                      seconds_text(budget.seconds) + " s are usable (a " +
                      std::to_string(int(std::lround(defaults.safety_margin * 100))) + "% safety margin, " +
                      seconds_text(budget.spent_seconds) + " s already spent), and starting and saving a model take " +
                      seconds_text(fixed) + " s before any training");

    Plan plan;
    plan.notes = std::move(left_out);
    plan.budget_seconds = std::isinf(budget.seconds) ? 0.0 : budget.seconds;  // 0: no time limit, as JSON can hold it
    plan.budget_joules = budget.joules;
    plan.budget_memory_mib = budget.memory_mib;
    const std::string folder = state_folder(impl);
    const rt::Split split = sdk::task_split(task, base);

    // A joule budget needs power figures: a meter's (measured while the
    // profile is made, or kept in a profile made before), else an estimate.
    // Without any, measuring the profile would be spent on a plan that
    // cannot be made.
    // Found once: detecting the meter opens and reads it. It measures
    // planning's own energy from here.
    const std::unique_ptr<rt::EnergyMonitor> meter = sdk::start_measuring_meter(impl.options);
    const bool metered = meter != nullptr;
    if (budget.joules > 0 && impl.options.estimate_watts <= 0 && !metered) {
      // Read once: ensure_profile() below takes the profile found here.
      if (!impl.profile)
        impl.profile = impl.options.device_profile.empty()
                           ? sdk::kept_device_profile(impl)
                           : std::optional<rt::DeviceProfile>(sdk::load_given_device_profile(impl));
      const bool watts = impl.profile && std::any_of(impl.profile->models.begin(), impl.profile->models.end(),
                                                     [](const rt::ModelProfile& m) { return m.most_watts() > 0; });
      if (!watts)
        throw Error(ErrorCode::kInvalidArgument,
                    "a joule budget needs power figures: no energy meter measures on this device and no device "
                    "profile of it has any; set AdapterOptions::estimate_watts to its power while training");
    }

    // The energy planning has used: the meter's where one measures, else the
    // estimate at the power fine-tuning's estimate takes (the caller's, else
    // the most a model drew when profiled) for the time spent. An energy
    // budget counts it, as a time budget counts planning_seconds.
    const auto estimated_watts = [&] {
      double watts = impl.options.estimate_watts;
      if (watts <= 0 && impl.profile)
        for (const rt::ModelProfile& m : impl.profile->models) watts = std::max(watts, m.most_watts());
      return watts;
    };
    // At `seconds` since plan() started.
    const auto planning_joules = [&](double seconds) { return meter ? meter->joules() : estimated_watts() * seconds; };
    // Measuring the profile, when it must be done first, may take what is
    // usable of the budget and no more: of its time, and of its energy.
    const double usable_joules =
        budget.joules > 0 ? budget.joules * (1 - defaults.safety_margin) - budget.spent_joules : 0.0;
    if (budget.joules > 0 && usable_joules <= 0)
      throw Error(ErrorCode::kInvalidArgument,
                  "energy budget too small to plan a fine-tune: " + zoo::shown_number(budget.spent_joules) + " J of " +
                      zoo::shown_number(budget.joules) + " J are already spent, and a " +
                      std::to_string(int(std::lround(defaults.safety_margin * 100))) + "% safety margin is kept back");
    const ProfileOutcome profiled = ensure_profile(impl, folder, false, usable - fixed, usable_joules,
                                                   [&] { return planning_joules(since(started)); });
    plan.profiled = profiled.measured;
    plan.profiling_seconds = profiled.seconds;
    if (!profiled.note.empty()) plan.notes.push_back(profiled.note);
    std::vector<rt::ModelFeatures> models;
    std::vector<const ModelInfo*> profiled_models;
    for (const ModelInfo* m : candidates) {
      const bool known = std::any_of(impl.profile->models.begin(), impl.profile->models.end(),
                                     [&](const rt::ModelProfile& p) { return p.model.name == m->name; });
      if (!known) {
        plan.notes.push_back("model '" + m->name + "' left out: the device profile has no measurement of it");
        continue;
      }
      models.push_back(rt::describe_model(*m));
      profiled_models.push_back(m);
    }
    if (models.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "the device profile " +
                      (impl.options.device_profile.empty() ? profile_path(impl, folder) : impl.options.device_profile) +
                      " measures none of the models the task can use");

    if (impl.options.probe) {
      const auto probe_started = Clock::now();
      // A quarter of what is left to train in at most: the score is one
      // feature among many, not worth most of the budget.
      const double left = usable - fixed - since(started);
      plan.probe_scores = probe_models(impl, task, split, profiled_models, std::max(0.0, left / 4), plan.notes);
      plan.probe_used = true;
      plan.probe_seconds = since(probe_started);
    }

    rt::PredictorState state = open_state(impl, folder);
    for (const std::string& d : state.damage()) plan.notes.push_back(d);
    const rt::ExperienceSummary fitted = state.fitted_experience();
    plan.shipped_records = shipped_experience(impl).summary().record_count;
    plan.device_records = state.device_records().size();
    for (std::string& note : rt::regime_outside_experience(base, fitted)) plan.notes.push_back(std::move(note));

    rt::PlannerOptions options;
    options.base = base;
    options.estimate_watts = impl.options.estimate_watts;
    options.unmetered = !metered;
    options.probe_scores = plan.probe_scores;
    // What this process holds now (the task's images among it), once the
    // heap has handed back what profiling and probing freed: the base the
    // fine-tune's memory adds to.
    zoo::start_peak_measurement();
    options.overheads.resident_bytes = zoo::resident_bytes().value_or(0);
    options.overheads.validation_images = std::int64_t(split.validation.size());
    options.overheads.checkpoint_interval_seconds = impl.options.checkpoint_interval_seconds;
    // Costed at the speed this device's own runs under this profile showed,
    // rather than at that of the seconds it was profiled in.
    const rt::DeviceSpeed speed = rt::device_speed(state.device_records(), *impl.profile);
    options.overheads.time_scale = speed.time_scale;
    if (std::string note = rt::device_speed_note(speed); !note.empty()) plan.notes.push_back(std::move(note));
    rt::PlannerBudget limits;
    limits.seconds = sdk::time_limit_seconds(budget);
    if (budget.joules > 0) limits.joules = budget.joules;
    if (budget.memory_mib > 0) limits.memory_bytes = budget.memory_mib * 1024 * 1024;
    const auto train_images = std::int64_t(split.train.size());

    rt::Schedule schedule;
    const rt::Predictor* predictor = state.predictor();
    const std::size_t evaluated = state.evaluated_records();
    plan.source = predictor && evaluated >= std::size_t(impl.options.min_experience) ? PlanSource::kPredictor
                                                                                      : PlanSource::kDefault;
    try {
      const double planned_for = since(started);
      options.overheads.spent_seconds = budget.spent_seconds + planned_for;
      options.overheads.spent_joules = budget.spent_joules + planning_joules(planned_for);
      if (plan.source == PlanSource::kPredictor) {
        // Only the batch sizes the predictor has seen (and the profile
        // measured): the shipped experience holds one, and its trees cannot
        // tell what another would do (batch 16's extra steps read as more
        // training than any run they learnt from). Where none of them fits
        // the budget (a memory cap, say), the profile's others may, on less
        // evidence, and the plan says so.
        std::vector<int> profiled;
        for (const rt::ModelFeatures& m : models) {
          const std::vector<int> sizes = impl.profile->planned_batch_sizes(m.name);
          profiled.insert(profiled.end(), sizes.begin(), sizes.end());
        }
        std::sort(profiled.begin(), profiled.end());
        profiled.erase(std::unique(profiled.begin(), profiled.end()), profiled.end());
        std::string note;
        const std::vector<int> batches = rt::batch_sizes_with_evidence(fitted, profiled, &note);
        if (!note.empty()) plan.notes.push_back(note);
        options.grid.batch_sizes = batches;  // empty: the profile's
        options.grid = rt::grid_with_evidence(options.grid, fitted, models);
        try {
          schedule =
              rt::generate_schedule(task.meta(), train_images, limits, *impl.profile, models, *predictor, options);
        } catch (const Error& e) {
          if (e.code() != ErrorCode::kInvalidArgument || batches.empty()) throw;
          options.grid.batch_sizes.clear();
          const double tried_for = since(started);  // the first try's time too
          options.overheads.spent_seconds = budget.spent_seconds + tried_for;
          options.overheads.spent_joules = budget.spent_joules + planning_joules(tried_for);
          schedule =
              rt::generate_schedule(task.meta(), train_images, limits, *impl.profile, models, *predictor, options);
          plan.notes.push_back("no plan at the batch sizes the predictor has seen (" +
                               rt::listed_batch_sizes(batches) + ") fits: " + e.what() +
                               "; planned over the profile's (" + rt::listed_batch_sizes(profiled) +
                               "), on no evidence of what the others do");
        }
      } else {
        options.grid.learning_rates = {0.01};
        options.grid.batch_sizes = {kDefaultBatch};
        options.grid.frozen_stages = {0};
        std::vector<double> sizes;
        for (const rt::ModelFeatures& m : models)
          sizes.push_back(rt::make_features(task.meta(), train_images, m, base)[rt::kLogParameters]);
        schedule = rt::generate_schedule(task.meta(), train_images, limits, *impl.profile, models,
                                         DefaultPlanScorer(sizes), options);
      }
    } catch (const Error& e) {
      if (profiled.measured && e.code() == ErrorCode::kInvalidArgument)
        throw Error(e.code(), std::string(e.what()) + "; " + seconds_text(profiled.seconds) +
                                  " s of the time spent went to measuring this device's profile, a one-time "
                                  "calibration now kept in " + folder + " (Adapter::calibrate() does it ahead of time)");
      throw;
    }

    const bool predicted = plan.source == PlanSource::kPredictor;
    plan.best = public_run(schedule.best, predicted);
    for (const rt::PlannedRun& p : schedule.alternatives) plan.alternatives.push_back(public_run(p, predicted));
    if (!predicted) {
      if (predictor) {
        // What the little experience there is expects of the default plan,
        // so that its error can be watched shrinking as records come in.
        std::vector<PlannedRun*> runs{&plan.best};
        for (PlannedRun& a : plan.alternatives) runs.push_back(&a);
        std::vector<rt::FeatureVector> rows;
        for (const PlannedRun* run : runs) {
          const auto model = std::find_if(models.begin(), models.end(),
                                          [&](const rt::ModelFeatures& m) { return m.name == run->regime.model; });
          const auto probe = plan.probe_scores.find(run->regime.model);
          rows.push_back(rt::make_features(task.meta(), train_images, *model, run->regime,
                                           probe == plan.probe_scores.end() ? std::nullopt
                                                                            : std::optional<double>(probe->second)));
        }
        const std::vector<rt::Prediction> predictions = predictor->predict(rows);
        for (std::size_t i = 0; i < runs.size(); ++i) {
          runs[i]->predicted_accuracy = predictions[i].mean;
          runs[i]->predicted_std = predictions[i].std;
        }
      }
      plan.best.why = (evaluated == 0 ? std::string("no experience yet (no evaluated shipped or device record)")
                                      : "too little experience to follow (" + std::to_string(evaluated) +
                                            " evaluated records, " + std::to_string(impl.options.min_experience) +
                                            " wanted)") +
                      ", so the default plan: the largest model whose epoch fits, learning rate 0.01, batch 32, "
                      "nothing frozen, as many epochs as fit; " +
                      plan.best.why;
    }
    plan.usable_seconds = std::isinf(schedule.usable_seconds) ? 0.0 : schedule.usable_seconds;
    plan.plans_considered = schedule.plans_considered;
    plan.plans_fitting = schedule.plans_fitting;
    plan.planning_seconds = since(started);
    if (meter) meter->stop();  // a last reading: the total covers planning to here
    plan.planning_joules = planning_joules(plan.planning_seconds);
    return plan;
  });
}

bool Adapter::record(const Task& task, const Plan& plan, const Result& result) {
  return sdk::at_boundary("Adapter::record", [&] {
    Impl& impl = live();
    validate(result.regime);
    const ModelInfo& info = impl.zoo.model(result.regime.model);
    // The experience log is append-only and the predictor learns from it: an
    // impossible result would stay in it for good, so it is refused here.
    const auto refuse = [](const std::string& what) {
      throw Error(ErrorCode::kInvalidArgument, "Result field " + what);
    };
    const rt::ModelFeatures features = rt::describe_model(info);
    const int stages = features.num_stages;
    if (result.regime.frozen_stages > stages)
      refuse("regime.frozen_stages = " + std::to_string(result.regime.frozen_stages) + ": model '" + info.name +
             "' has " + std::to_string(stages) + " stages");
    if (!(std::isfinite(result.wall_seconds) && result.wall_seconds >= 0))
      refuse("wall_seconds = " + zoo::shown_number(result.wall_seconds) + ": expected a finite value >= 0");
    if (!(std::isfinite(result.spent_seconds) && result.spent_seconds >= 0 &&
          result.spent_seconds <= result.wall_seconds))
      refuse("spent_seconds = " + zoo::shown_number(result.spent_seconds) + ": expected a finite value in [0, wall_seconds]");
    if (!(std::isfinite(result.spent_joules) && result.spent_joules >= 0 && result.spent_joules <= result.joules))
      refuse("spent_joules = " + zoo::shown_number(result.spent_joules) + ": expected a finite value in [0, joules]");
    // A run a budget cut short is recorded as the epochs it trained and
    // evaluated in full: stored as its planned regime, one step under a
    // memory cap read as ten epochs at 6 % and every later plan was
    // predicted 50 points low; not stored at all, a device whose profile
    // is slow would never teach its predictor. A run with no epoch evaluated
    // says nothing and is not stored. A diverged run is its regime's outcome.
    const bool cut_short = result.stop_reason != "completed" && result.stop_reason.rfind("diverged", 0) != 0;
    int evaluated_epochs = 0;
    for (const EpochResult& e : result.epochs)
      if (e.validation_accuracy >= 0) evaluated_epochs = std::max(evaluated_epochs, e.epoch);
    if (cut_short && evaluated_epochs == 0) return false;
    // 0: not said (a Result made before the schedule could be fitted).
    if (result.scheduled_epochs < 0 || result.scheduled_epochs > result.regime.epochs)
      refuse("scheduled_epochs = " + std::to_string(result.scheduled_epochs) + ": expected 0 (not fitted) to regime.epochs = " +
             std::to_string(result.regime.epochs));
    if (result.scheduled_epochs > 0 && result.epochs.size() > std::size_t(result.scheduled_epochs))
      refuse("scheduled_epochs = " + std::to_string(result.scheduled_epochs) + ": the result holds " +
             std::to_string(result.epochs.size()) + " epochs, more than its schedule had");
    const rt::ImageStore& store = *task.impl().store;

    rt::ExperienceRecord rec;
    rec.source = rt::ExperienceSource::kDevice;
    rec.task_id = task_digest(store);
    rec.task_name = task_name(task.origin());
    rec.task = task.meta();
    rec.train_images = std::int64_t(sdk::task_split(task, result.regime).train.size());
    rec.model = features;
    // Stamped only from a profile timed on this device with these threads,
    // so that the device's speed against a profile (device_speed.h) is
    // learnt from runs of one kind. (A heap set otherwise or an older format
    // slows or speeds every run alike, which is what that speed corrects.)
    if (impl.profile && compute_mismatch(*impl.profile, impl).empty()) {
      try {
        rec.model.step_seconds = rt::predict_step_seconds(*impl.profile, info.name, result.regime.batch_size,
                                                          result.regime.frozen_stages);
      } catch (const Error&) {
        // A configuration the profile cannot predict: the field stays unknown.
      }
    }
    rec.regime = result.regime;
    // A run whose schedule was fitted to end sooner is the shorter run it
    // trained: its rate annealed over those epochs.
    const int recorded_epochs = cut_short                     ? evaluated_epochs
                                : result.scheduled_epochs > 0 ? result.scheduled_epochs
                                                              : result.regime.epochs;
    if (recorded_epochs != rec.regime.epochs) {
      rec.regime.epochs = recorded_epochs;
      // Recorded as the shorter run it was, whose warm-up must end before it
      // does (validate()); the warm-up is no feature of the predictor's.
      if (rec.regime.schedule == ScheduleKind::kCosine && rec.regime.warmup_epochs >= recorded_epochs)
        rec.regime.warmup_epochs = recorded_epochs - 1;
    }
    if (plan.budget_seconds > 0 && std::isfinite(plan.budget_seconds)) rec.budget_seconds = plan.budget_seconds;
    if (plan.budget_joules > 0) rec.budget_joules = plan.budget_joules;
    // (A cut run's last evaluation may be of a part epoch's weights: not the
    // outcome of the epochs it is recorded as.)
    double best = cut_short ? -1 : result.validation_accuracy;
    for (std::size_t i = 0; i < result.epochs.size(); ++i) {
      const EpochResult& e = result.epochs[i];
      if (cut_short && e.epoch > evaluated_epochs) break;
      // Named here: past this point the value only shows as the best accuracy.
      if (!(e.validation_accuracy == -1 || (e.validation_accuracy >= 0 && e.validation_accuracy <= 1)))
        throw Error(ErrorCode::kInvalidArgument, "result field epochs[" + std::to_string(i) +
                                                     "].validation_accuracy = " + std::to_string(e.validation_accuracy) +
                                                     " is neither in [0, 1] nor -1 (not evaluated)");
      // A diverged loss is kept as the largest number JSON can carry.
      const double loss = std::isfinite(e.train_loss) ? e.train_loss : std::numeric_limits<double>::max();
      rec.history.push_back({e.epoch, std::max(0.0, e.elapsed_seconds - result.spent_seconds), loss,
                             e.validation_accuracy});
      best = std::max(best, e.validation_accuracy);
    }
    rec.final_accuracy = cut_short ? best : result.validation_accuracy;
    rec.best_accuracy = best;
    rec.total_seconds = std::max(0.0, result.wall_seconds - result.spent_seconds);
    if (!result.energy_meter.empty() && result.energy_meter != "none")
      rec.joules = result.joules - result.spent_joules;  // training's: planning is not the regime's cost
    rec.meter = result.energy_meter.empty() ? "none" : result.energy_meter;
    rec.device = result.device;
    rec.stop_reason = result.stop_reason;
    if (const auto it = plan.probe_scores.find(info.name); it != plan.probe_scores.end()) rec.probe_score = it->second;
    // The same result recorded twice is one run: the id is a digest of it.
    rec.run_id = "pending";
    rec.run_id = "device-" + zoo::sha256_hex(rt::to_json(rec) + '\n' + result.model_dir + '\n' +
                                             std::to_string(result.wall_seconds) + '\n' + std::to_string(result.steps));
    rt::PredictorState state = open_state(impl, state_folder(impl));
    return state.record(std::move(rec));
  });
}

}  // namespace nasoa
