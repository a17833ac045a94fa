// runtime/profile/device_profile.h: what training and inference cost on this
// device, per model of a bundle, measured once and then used to predict.
//
// profile_bundle() times, for every model of a bundle, one fine-tuning step
// (forward, cross-entropy, backward, the runtime's own Optimizer step; no data
// loading) on random inputs of the model's size, for each batch size in a list
// and each number of frozen stages 0..num_stages; inference per image at batch
// 1 and 64; the host memory each training configuration adds; and the average
// power while training where a meter can read it. The planner reads the result
// back with load_device_profile() and asks predict_step_seconds() /
// predict_epoch_seconds() for configurations it did not measure.
//
// On a GPU each step includes copying the batch from host memory and runs in
// bf16 autocast where fine-tuning would; cuDNN autotuning stays off (it would
// cost seconds per model here, and the long fine-tunes that use it only run
// faster than measured).
//
// Memory: each training configuration starts after malloc_trim(0) (so the
// allocator hands freed pages back and the resident set is close to what is
// live) and a reset of the kernel's peak-RSS mark (writing "5" to
// /proc/self/clear_refs). peak_rss_bytes is /proc/self/status VmHWM after the
// configuration's steps, rss_increase_bytes that minus VmRSS at its start: the
// activations, gradients, optimiser state and scratch the configuration needs
// on top of the loaded model. Both are process-wide (another thread that
// allocates meanwhile is counted) and host memory only: GPU memory is not
// measured. Where the reset is refused, memory_method is "unavailable" and
// the fields are absent. LibTorch 1.13's CPU allocator keeps no statistics, and
// a fork() per configuration would be unsafe with its OpenMP thread pool.
//
// Power: only a meter that measures (MeterOptions with kAuto or a named
// hardware meter); with none, meter is "none" and watts are absent. An
// estimate is refused: it would come from the profile being made. One
// monitor runs over each model's configurations, and each of them gets the
// model's mean power: NVML's counter, for one, updates too rarely to tell
// configurations of a few milliseconds apart.
//
// Ownership and threads: DeviceProfile is a plain value. profile_bundle() sets
// LibTorch's intra-op thread count when asked (process-wide) and must not run
// beside other LibTorch work if its timings are to mean anything; the
// functions on a finished profile are pure and thread-safe.
//
// Errors: nasoa::Error. load_device_profile(): kNotFound / kIo for the file,
// kCorrupt naming the file and the field at fault, kUnsupportedVersion.
// profile_bundle(): what opening and loading the bundle throws, kNotFound for
// a model name not in the bundle, kInvalidArgument for bad options and when
// the time limit passes.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/energy/energy_meter.h"
#include "runtime/train/memory_layout.h"

namespace nasoa::zoo {
class NetworkImpl;
}

namespace nasoa::runtime {

// The newest profile format this build reads, and the one it writes.
// Version 2 added each model's training_layout (version 1: channels-first);
// version 3 the device's kept_freed_memory (before: false).
inline constexpr int kDeviceProfileFormatVersion = 3;

struct ProfiledDevice {
  std::string cpu_model;  // /proc/cpuinfo "model name" (or the board's name on ARM)
  int cpu_cores = 0;      // logical CPUs this process may use
  int threads = 0;        // LibTorch intra-op threads during the measurements
  std::string device;     // "cpu" or "cuda:0"
  std::optional<std::string> gpu_name;  // when on CUDA and the driver tells it
  // Whether the heap kept freed memory for reuse while steps were timed
  // (zoo/system/heap_policy.h): steps ran up to 1.75x faster so.
  bool kept_freed_memory = false;
  bool operator==(const ProfiledDevice&) const;
};

// A model as the bundle's manifest lists it.
struct BundleModelEntry {
  std::string name, encoding;
  int input_size = 0;
  int classes = 0;
  bool operator==(const BundleModelEntry&) const;
};

// One training configuration: batch size x frozen stages.
struct StepTiming {
  int batch_size = 0;
  int frozen_stages = 0;
  double step_seconds = 0;  // median over the repetitions
  std::optional<std::int64_t> peak_rss_bytes;      // see the header comment
  std::optional<std::int64_t> rss_increase_bytes;
  std::optional<double> watts;  // the model's mean power while its configurations ran, if measured
  bool operator==(const StepTiming&) const;
};

struct ModelProfile {
  BundleModelEntry model;
  int num_stages = 0;  // stem included; frozen_stages runs over 0..num_stages
  // The layout this model trains faster in here, and the one its steps were
  // timed in (fine-tuning then uses it): on the CPU both are timed at the
  // batch size nearest 32 with nothing frozen; GPUs stay channels-first.
  MemoryLayout training_layout = MemoryLayout::kChannelsFirst;
  double inference_seconds_per_image_batch1 = 0;
  double inference_seconds_per_image_batch64 = 0;
  std::vector<StepTiming> steps;  // every batch size x every frozen count
  bool operator==(const ModelProfile&) const;
  // The most power any configuration drew, where a meter read it; 0 where
  // none did. Training without a meter is charged (and planned) at it when
  // the caller gives no estimate.
  double most_watts() const;
};

struct DeviceProfile {
  int format_version = kDeviceProfileFormatVersion;
  std::string date;  // ISO 8601, UTC
  ProfiledDevice device;
  std::string bundle_name;
  std::vector<BundleModelEntry> bundle_models;  // all of the manifest's models
  std::vector<int> batch_sizes;
  int warmup = 0, repetitions = 0;
  std::string memory_method;  // "vmhwm-reset" or "unavailable"
  std::string meter = "none";  // EnergyMeter::name(), or "none"
  bool meter_measured = false;
  std::vector<ModelProfile> models;  // those profiled, in bundle order

  // The model called `name`; throws Error{kNotFound} listing those there are.
  const ModelProfile& model(const std::string& name) const;
  // The model called `name`, or nullptr where this profile did not measure it.
  const ModelProfile* find_model(const std::string& name) const;
  // The batch sizes the planner takes for model `name` when told none:
  // batch_sizes, or where a profile lists none, those its steps were timed
  // at (ascending, distinct). Throws as model() does.
  std::vector<int> planned_batch_sizes(const std::string& name) const;
  bool operator==(const DeviceProfile&) const;
};

struct ProfileOptions {
  std::vector<int> batch_sizes{8, 16, 32, 64};  // each >= 1
  int warmup = 2;        // untimed steps before each configuration's repetitions, >= 0
  int repetitions = 5;   // timed steps per configuration, >= 1
  int threads = 0;       // LibTorch intra-op threads; 0 keeps the current setting
  bool use_cuda = true;  // when the LibTorch build and the machine have it
  // Steps timed with the heap set as fine-tuning sets it (FineTuneJob::
  // keep_freed_memory), so that the times predict its steps.
  bool keep_freed_memory = true;
  std::vector<std::string> models;  // names to profile; empty: all of them
  bool measure_power = true;
  MeterOptions meter;    // which meter; its estimate_watts must stay 0
  // Seconds the whole measurement may take, checked between configurations
  // (a budgeted call that has to calibrate first must not overrun); 0: no
  // limit. Past it, profile_bundle() throws Error{kInvalidArgument}.
  double time_limit_seconds = 0;
  // Joules it may use, as `joules_used` counts them (the caller's meter, from
  // where the caller started counting), checked with the time limit and
  // thrown for alike; 0 or no function: no limit.
  double joules_limit = 0;
  std::function<double()> joules_used;
  // Where to keep the models measured so far, so that a call stopped by its
  // time limit (or killed) loses none of them: a later call with the same
  // path takes them from there when the device, bundle and options are the
  // same, and measures only the rest. Removed once the profile is whole
  // (and saved at save_path, when set). Empty: nothing kept.
  std::string partial_path;
  // Where to save the whole profile, before partial_path is removed: saved
  // by the caller afterwards instead, a kill in between would lose every
  // model measured. Empty: not saved.
  std::string save_path;
};

struct ProfileProgress {
  std::size_t index = 0, count = 0;  // this model is the index-th (0-based) of count
  const ModelProfile* done = nullptr;  // null when the model starts, set when it is done
  std::string model;
  double seconds = 0;  // spent on this model so far
};

// Throws Error{kInvalidArgument} naming the option for options no profile
// can be made with (no batch size, one listed twice, ...); profile_bundle()
// checks them first too.
void check_profile_options(const ProfileOptions& options);

// Measures the bundle at `bundle_dir` (verified first). Training steps are
// timed in each model's faster layout (ModelProfile::training_layout);
// inference in the default layout, as nasoa::Classifier runs it. `on_progress`, if set,
// is called on this thread when each model starts and when it is done.
DeviceProfile profile_bundle(const std::string& bundle_dir, const ProfileOptions& options,
                             const std::function<void(const ProfileProgress&)>& on_progress = {});

// JSON, pretty-printed, and back. `source` names the text in errors.
std::string to_json(const DeviceProfile& profile);
DeviceProfile parse_device_profile(const std::string& json, const std::string& source);

// Written atomically (zoo::write_file_atomic); throws Error{kIo}.
void save_device_profile(const DeviceProfile& profile, const std::string& path);
DeviceProfile load_device_profile(const std::string& path);

// Seconds per training step of `model` at `batch_size` with `frozen_stages`
// frozen: the measurement itself where there is one, otherwise the least-
// squares fit a + b * batch over the batch sizes measured with that frozen
// count (step time is close to affine in batch size). With a single measured
// batch size, or where the fit is not positive, the nearest measurement is
// scaled in proportion to the batch size. Throws Error{kNotFound} for an
// unknown model or a frozen count outside 0..num_stages (or not measured),
// Error{kInvalidArgument} for batch_size < 1.
double predict_step_seconds(const DeviceProfile& profile, const std::string& model, int batch_size,
                            int frozen_stages);

// ceil(images / batch_size) * predict_step_seconds(...): the training part of
// an epoch, without data loading or evaluation. images >= 0.
double predict_epoch_seconds(const DeviceProfile& profile, const std::string& model, std::int64_t images,
                             int batch_size, int frozen_stages);

// Seconds to classify `images` at `batch_size` (a validation pass): per
// image, a cost per batch spread over its images plus a cost per image,
// through the profile's two inference measurements (batch 1 and 64); 0 when
// the profile has neither. Throws Error{kNotFound} for an unknown model,
// Error{kInvalidArgument} for images < 0 or batch_size < 1.
double predict_evaluation_seconds(const DeviceProfile& profile, const std::string& model, std::int64_t images,
                                  int batch_size);

// Seconds of each of `repetitions` fine-tuning steps of `network` as it
// stands (its frozen stages included): forward, label-smoothed
// cross-entropy, backward and the runtime's own SGD update, on random inputs
// in host memory (copied to a GPU each step, as fine-tuning's batches are, and
// run in bf16 autocast where fine-tuning would), so no data loading or
// augmentation is counted; `warmup` untimed
// steps first. It is the measurement profile_bundle() makes, for one
// configuration; the caller picks the statistic (the profile takes the
// median; the search takes the minimum, which other load on a shared machine
// can only raise). The network is moved to the device (CUDA when `use_cuda`
// and available) and left in train mode; its weights change by the small
// updates. On the CPU the steps run in `layout` (the network is left in
// it); a GPU always runs channels-first. Throws Error{kInvalidArgument} for
// batch_size, input_size or repetitions < 1, or warmup < 0.
std::vector<double> time_training_steps(zoo::NetworkImpl& network, int batch_size, int input_size, int warmup,
                                        int repetitions, bool use_cuda = true,
                                        MemoryLayout layout = MemoryLayout::kChannelsFirst);

}  // namespace nasoa::runtime
