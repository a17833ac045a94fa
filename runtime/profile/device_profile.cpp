#include "runtime/profile/device_profile.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "nasoa/error.h"
#include "runtime/adapt/json_fields.h"
#include "runtime/data/batching.h"
#include "runtime/energy/cuda_device.h"
#include "runtime/energy/energy_monitor.h"
#include "runtime/profile/median.h"
#include "runtime/train/autocast.h"
#include "runtime/train/optimizer.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/bundle.h"
#include "zoo/system/heap_policy.h"
#include "zoo/system/keyed_text.h"
#include "zoo/system/resident_memory.h"
#include "zoo/system/usable_cores.h"
#include "zoo/text/printable.h"

namespace nasoa::runtime {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

// An integer past the int64 range, which get<int64_t>() would read back
// negative.
bool past_int64(const Json& v) {
  return v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max());
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}


// Device-tree strings end in NUL.
std::optional<std::string> device_tree_model() {
  std::ifstream in("/proc/device-tree/model", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text = std::string(zoo::trim_blanks(std::string_view(text).substr(0, text.find('\0'))));
  if (text.empty()) return std::nullopt;
  return text;
}

std::string cpu_model() {
  // x86 kernels say "model name"; many ARM kernels do not, so the board's name stands in.
  if (auto v = zoo::keyed_value("/proc/cpuinfo", "model name")) return *v;
  if (auto v = zoo::keyed_value("/proc/cpuinfo", "Hardware")) return *v;
  if (auto v = device_tree_model()) return *v;
  return "unknown";
}

// Read from the driver's files rather than through LibTorch's CUDA API, which
// a CPU-only LibTorch does not link.
std::optional<std::string> gpu_name() {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> gpus;
  for (fs::directory_iterator it("/proc/driver/nvidia/gpus", ec), end; !ec && it != end; it.increment(ec))
    gpus.push_back(it->path());
  std::sort(gpus.begin(), gpus.end());
  for (const fs::path& gpu : gpus)
    if (auto v = zoo::keyed_value((gpu / "information").string(), "Model")) return *v;
  return device_tree_model();  // Jetson: the integrated GPU is the board's
}

// ---- measurements ----------------------------------------------------------

struct StepRunner {
  zoo::NetworkImpl& net;
  const torch::Device device;
  const bool cuda;
  const torch::nn::functional::CrossEntropyFuncOptions loss_options;
  // fine_tune() trains in bf16 autocast where the GPU has it; so is it timed.
  const bool bf16 = cuda && cuda_bf16_usable(device);
  // The network's layout; batches are made to match, as fine_tune() does.
  MemoryLayout layout = MemoryLayout::kChannelsFirst;

  void sync() const {
    if (cuda) torch::cuda::synchronize();
  }

  // One fine-tuning step as fine_tune() takes it: the batch comes from host
  // memory (the loader's), so its copy to a GPU is part of the step.
  double step(Optimizer& optimizer, const torch::Tensor& host_images, const torch::Tensor& host_labels) const {
    const Clock::time_point t0 = Clock::now();
    const torch::Tensor images = in_memory_layout(host_images.to(device), layout);
    const torch::Tensor labels = host_labels.to(device);
    optimizer.zero_grad();
    torch::Tensor loss;
    {
      CudaAutocast autocast(bf16);
      const torch::Tensor logits = net.forward(images);
      loss = torch::nn::functional::cross_entropy(logits, labels, loss_options);
    }
    loss.backward();
    // A small rate: the arithmetic is the same as with any rate, and the
    // weights stay far from overflow (and slow denormals) over many steps.
    optimizer.step(1e-4);
    (void)loss.item<double>();  // fine_tune() reads it every step too; it also waits for the GPU
    sync();
    return seconds_since(t0);
  }

  double inference_per_image(int batch, int input, int warmup, int repetitions) const {
    net.eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor images = torch::randn({batch, 3, input, input}).to(device);
    std::vector<double> times;
    for (int i = 0; i < warmup + repetitions; ++i) {
      const Clock::time_point t0 = Clock::now();
      const torch::Tensor logits = net.forward(images);
      (void)logits.argmax(1).cpu();
      sync();
      if (i >= warmup) times.push_back(seconds_since(t0));
    }
    net.train();
    return median(times) / double(batch);
  }
};

class PowerProbe {
 public:
  explicit PowerProbe(const ProfileOptions& options) {
    if (options.meter.kind == MeterKind::kEstimate || options.meter.estimate_watts != 0)
      throw Error(ErrorCode::kInvalidArgument,
                  "the device profile records measured power only: an estimate would come from the "
                  "profile being made (meter options: no estimate kind, estimate_watts 0)");
    if (!options.measure_power) return;
    options_ = options.meter;
    options_.gpu_job = options.use_cuda && torch::cuda::is_available();
    if (options_.gpu_job && options_.gpu_pci_bus_id.empty()) options_.gpu_pci_bus_id = cuda_pci_bus_id(0);
    try {
      const std::unique_ptr<EnergyMeter> meter = detect_energy_meter(options_);
      name_ = meter->name();
      measured_ = meter->measured();
      // Later configurations must read the same meter, not whichever answers first.
      options_.kind = meter->kind();
      available_ = true;
    } catch (const Error&) {
      available_ = false;  // no readable meter: watts stay absent
    }
  }

  bool available() const { return available_; }
  const std::string& name() const { return name_; }
  bool measured() const { return measured_; }

  // A monitor already sampling, or null without a meter (or when it vanished).
  std::unique_ptr<EnergyMonitor> start() const {
    if (!available_) return nullptr;
    try {
      MonitorOptions monitor_options;
      monitor_options.interval = std::chrono::milliseconds(50);
      auto monitor = std::make_unique<EnergyMonitor>(detect_energy_meter(options_), monitor_options);
      monitor->start();
      return monitor;
    } catch (const Error&) {
      return nullptr;
    }
  }

 private:
  MeterOptions options_;
  bool available_ = false;
  bool measured_ = false;
  std::string name_ = "none";
};

// Throws when the profile's time or energy limit has passed, saying how far
// it got.
void check_limits(const ProfileOptions& options, Clock::time_point started, const std::string& model) {
  const double spent = seconds_since(started);
  if (options.time_limit_seconds > 0 && spent > options.time_limit_seconds)
    throw Error(ErrorCode::kInvalidArgument,
                "measuring this device's profile took more than the " + std::to_string(options.time_limit_seconds) +
                    " s it could have (stopped at model '" + model + "' after " + std::to_string(spent) +
                    " s): measure it ahead of time (nasoa-profile, or Adapter::calibrate()) or give more time");
  if (options.joules_limit > 0 && options.joules_used) {
    const double used = options.joules_used();
    if (used > options.joules_limit)
      throw Error(ErrorCode::kInvalidArgument,
                  "measuring this device's profile used more than the " + zoo::shown_number(options.joules_limit) +
                      " J it could have (stopped at model '" + model + "' after " + zoo::shown_number(used) +
                      " J): measure it ahead of time (nasoa-profile, or Adapter::calibrate()) or give more energy");
  }
}

// The layout in which `runner`'s network trains faster with nothing frozen,
// at the profile's batch size nearest 32: two alternated rounds per layout,
// each a warm-up step and three timed, the faster round's median counting.
MemoryLayout faster_layout(StepRunner& runner, const Regime& regime, const ProfileOptions& options,
                           const ModelInfo& info) {
  const int batch = *std::min_element(options.batch_sizes.begin(), options.batch_sizes.end(),
                                      [](int a, int b) { return std::abs(a - 32) < std::abs(b - 32); });
  const torch::Tensor images = torch::randn({batch, 3, info.input_size, info.input_size});
  const torch::Tensor labels = torch::randint(0, std::max(1, info.upstream_classes), {batch}, torch::kLong);
  runner.net.freeze_stages(0);
  runner.net.train();
  double fastest[2] = {1e300, 1e300};
  for (int round = 0; round < 2; ++round) {
    for (const MemoryLayout layout : {MemoryLayout::kChannelsFirst, MemoryLayout::kChannelsLast}) {
      set_memory_layout(runner.net, layout);
      runner.layout = layout;
      Optimizer optimizer(runner.net, regime);
      runner.step(optimizer, images, labels);
      std::vector<double> times;
      for (int i = 0; i < 3; ++i) times.push_back(runner.step(optimizer, images, labels));
      double& f = fastest[layout == MemoryLayout::kChannelsLast];
      f = std::min(f, median(times));
    }
  }
  return fastest[1] < fastest[0] ? MemoryLayout::kChannelsLast : MemoryLayout::kChannelsFirst;
}

ModelProfile profile_model(const std::string& dir, const ModelInfo& info, const ProfileOptions& options,
                           const torch::Device& device, bool cuda, const PowerProbe& power,
                           bool memory_available, Clock::time_point started) {
  zoo::Network network = zoo::load_network(dir, info);
  zoo::NetworkImpl& net = *network;
  net.to(device);
  net.train();

  ModelProfile out;
  out.model = {info.name, info.encoding, info.input_size, info.upstream_classes};
  out.num_stages = net.num_stages();

  Regime regime;  // the fine-tuner's defaults: SGD with momentum, weight decay, label smoothing
  regime.model = info.name;
  StepRunner runner{net, device, cuda,
                    torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(regime.label_smoothing)};
  if (!cuda) {
    check_limits(options, started, info.name);
    out.training_layout = faster_layout(runner, regime, options, info);
  }
  set_memory_layout(net, out.training_layout);
  runner.layout = out.training_layout;

  // One monitor over all of the model's configurations: a meter such as
  // NVML's counter updates too rarely to tell the few milliseconds of one
  // configuration apart (and opening it per configuration costs more than
  // the steps). Every configuration gets the model's mean power.
  std::unique_ptr<EnergyMonitor> monitor = power.start();
  for (int batch : options.batch_sizes) {
    const torch::Tensor images = torch::randn({batch, 3, info.input_size, info.input_size});
    const torch::Tensor labels = torch::randint(0, std::max(1, info.upstream_classes), {batch}, torch::kLong);
    for (int frozen = 0; frozen <= out.num_stages; ++frozen) {
      check_limits(options, started, info.name);
      net.freeze_stages(frozen);
      net.train();
      StepTiming cell;
      cell.batch_size = batch;
      cell.frozen_stages = frozen;
      std::optional<std::int64_t> baseline;
      if (memory_available && zoo::start_peak_measurement()) baseline = zoo::resident_bytes();
      {
        // Built after the baseline: its buffers are part of what training adds.
        Optimizer optimizer(net, regime);
        for (int i = 0; i < options.warmup; ++i) runner.step(optimizer, images, labels);
        std::vector<double> times;
        for (int i = 0; i < options.repetitions; ++i) times.push_back(runner.step(optimizer, images, labels));
        cell.step_seconds = median(times);
        if (baseline) {
          const std::int64_t peak = zoo::peak_resident_bytes();
          cell.peak_rss_bytes = peak;
          cell.rss_increase_bytes = std::max<std::int64_t>(0, peak - *baseline);
        }
      }
      out.steps.push_back(cell);
    }
  }
  net.freeze_stages(0);
  set_memory_layout(net, MemoryLayout::kChannelsFirst);  // inference as nasoa::Classifier runs it
  runner.layout = MemoryLayout::kChannelsFirst;
  if (monitor) {
    monitor->stop();
    const EnergyStatus status = monitor->status();
    // A meter that never moved (0 W, some virtual machines' counters) gives
    // no power figure rather than free energy.
    if (status.samples > 0 && status.average_watts > 0 && status.average_watts <= kMaxPlausibleWatts)
      for (StepTiming& cell : out.steps) cell.watts = status.average_watts;
  }
  out.inference_seconds_per_image_batch1 =
      runner.inference_per_image(1, info.input_size, options.warmup, options.repetitions);
  out.inference_seconds_per_image_batch64 =
      runner.inference_per_image(64, info.input_size, options.warmup, options.repetitions);
  return out;
}

// ---- JSON ------------------------------------------------------------------

Json to_json(const BundleModelEntry& m) {
  return Json{{"name", m.name}, {"encoding", m.encoding}, {"input_size", m.input_size}, {"classes", m.classes}};
}

// Reads fields of one JSON object, naming "<source>: field '<path>'" in errors.
class Reader {
 public:
  Reader(const Json& object, std::string path, const std::string& source)
      : j_(object), path_(std::move(path)), source_(source) {
    if (!j_.is_object()) fail(path_.empty() ? "(top level)" : path_, "expected an object");
  }

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error(ErrorCode::kCorrupt, source_ + ": field '" + field + "': " + what);
  }
  std::string field(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  const Json& get(const std::string& key) const {
    const auto it = j_.find(key);
    if (it == j_.end()) fail(field(key), "missing");
    return *it;
  }
  bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  std::string string(const std::string& key, bool non_empty = true) const {
    const Json& v = get(key);
    if (!v.is_string()) fail(field(key), "expected a string");
    std::string s = v.get<std::string>();
    if (non_empty && s.empty()) fail(field(key), "is empty");
    return s;
  }
  bool boolean(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_boolean()) fail(field(key), "expected true or false");
    return v.get<bool>();
  }
  std::int64_t integer(const std::string& key, std::int64_t min,
                       std::int64_t max = std::numeric_limits<std::int64_t>::max()) const {
    const Json& v = get(key);
    if (!v.is_number_integer()) fail(field(key), "expected an integer");
    if (past_int64(v))
      fail(field(key), "value " + v.dump() + " outside " + std::to_string(min) + ".." + std::to_string(max));
    const std::int64_t x = v.get<std::int64_t>();
    if (x < min || x > max)
      fail(field(key), "value " + std::to_string(x) + " outside " + std::to_string(min) + ".." + std::to_string(max));
    return x;
  }
  // Finite; strictly positive unless `zero_ok`.
  // A number in [0, max] (zero only when `zero_ok`).
  double number(const std::string& key, bool zero_ok = false,
                double max = std::numeric_limits<double>::max()) const {
    const Json& v = get(key);
    if (!v.is_number()) fail(field(key), "expected a number");
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < 0 || (!zero_ok && x == 0) || x > max)
      fail(field(key), "expected a " + std::string(zero_ok ? "non-negative" : "positive") + " number" +
                           (max < std::numeric_limits<double>::max() ? " up to " + detail::describe_value(Json(max))
                                                                     : std::string()) +
                           ", got " + detail::describe_value(v));
    return x;
  }
  // Each element as a Reader-able value, with its indexed path.
  template <typename F>
  void each(const std::string& key, F&& f, bool non_empty = true) const {
    const Json& v = get(key);
    if (!v.is_array()) fail(field(key), "expected an array");
    if (non_empty && v.empty()) fail(field(key), "is empty");
    for (std::size_t i = 0; i < v.size(); ++i) f(v[i], field(key) + "[" + std::to_string(i) + "]");
  }
  const std::string& source() const { return source_; }

 private:
  const Json& j_;
  std::string path_;
  const std::string& source_;
};

constexpr int kMaxInt = std::numeric_limits<int>::max();
// An hour per training step or per image is no device's timing but a damaged
// or hand-edited profile; plans made from it would all be refused for time.
constexpr double kMaxStepSeconds = 3600;

BundleModelEntry read_model_entry(const Reader& r) {
  BundleModelEntry m;
  m.name = r.string("name");
  m.encoding = r.string("encoding");
  m.input_size = int(r.integer("input_size", 1, kMaxInt));
  m.classes = int(r.integer("classes", 1, kMaxInt));
  return m;
}

}  // namespace

void check_profile_options(const ProfileOptions& options) {
  if (options.batch_sizes.empty())
    throw Error(ErrorCode::kInvalidArgument, "profile options: batch_sizes is empty");
  for (std::size_t i = 0; i < options.batch_sizes.size(); ++i) {
    const int b = options.batch_sizes[i];
    if (b < 1)
      throw Error(ErrorCode::kInvalidArgument, "profile options: batch size " + std::to_string(b) + " is below 1");
    // The profile holds one measurement per batch size (its reader refuses two).
    if (std::find(options.batch_sizes.begin(), options.batch_sizes.begin() + long(i), b) !=
        options.batch_sizes.begin() + long(i))
      throw Error(ErrorCode::kInvalidArgument, "profile options: batch size " + std::to_string(b) + " is listed twice");
  }
  if (options.warmup < 0)
    throw Error(ErrorCode::kInvalidArgument, "profile options: warmup " + std::to_string(options.warmup) + " < 0");
  if (options.repetitions < 1)
    throw Error(ErrorCode::kInvalidArgument,
                "profile options: repetitions " + std::to_string(options.repetitions) + " < 1");
  if (options.threads < 0)
    throw Error(ErrorCode::kInvalidArgument, "profile options: threads " + std::to_string(options.threads) + " < 0");
  if (!(options.time_limit_seconds >= 0))
    throw Error(ErrorCode::kInvalidArgument,
                "profile options: time_limit_seconds " + std::to_string(options.time_limit_seconds) + " < 0");
  if (!(options.joules_limit >= 0))
    throw Error(ErrorCode::kInvalidArgument,
                "profile options: joules_limit " + zoo::shown_number(options.joules_limit) + " < 0");
}

// ---- the profile's value type ----------------------------------------------

bool ProfiledDevice::operator==(const ProfiledDevice& o) const {
  return cpu_model == o.cpu_model && cpu_cores == o.cpu_cores && threads == o.threads && device == o.device &&
         gpu_name == o.gpu_name && kept_freed_memory == o.kept_freed_memory;
}
bool BundleModelEntry::operator==(const BundleModelEntry& o) const {
  return name == o.name && encoding == o.encoding && input_size == o.input_size && classes == o.classes;
}
bool StepTiming::operator==(const StepTiming& o) const {
  return batch_size == o.batch_size && frozen_stages == o.frozen_stages && step_seconds == o.step_seconds &&
         peak_rss_bytes == o.peak_rss_bytes && rss_increase_bytes == o.rss_increase_bytes && watts == o.watts;
}
bool ModelProfile::operator==(const ModelProfile& o) const {
  return model == o.model && num_stages == o.num_stages && training_layout == o.training_layout &&
         inference_seconds_per_image_batch1 == o.inference_seconds_per_image_batch1 &&
         inference_seconds_per_image_batch64 == o.inference_seconds_per_image_batch64 && steps == o.steps;
}
bool DeviceProfile::operator==(const DeviceProfile& o) const {
  return format_version == o.format_version && date == o.date && device == o.device &&
         bundle_name == o.bundle_name && bundle_models == o.bundle_models && batch_sizes == o.batch_sizes &&
         warmup == o.warmup && repetitions == o.repetitions && memory_method == o.memory_method &&
         meter == o.meter && meter_measured == o.meter_measured && models == o.models;
}

double ModelProfile::most_watts() const {
  double most = 0;
  for (const StepTiming& s : steps)
    if (s.watts) most = std::max(most, *s.watts);
  return most;
}

const ModelProfile* DeviceProfile::find_model(const std::string& name) const {
  for (const ModelProfile& m : models)
    if (m.model.name == name) return &m;
  return nullptr;
}

std::vector<int> DeviceProfile::planned_batch_sizes(const std::string& name) const {
  const ModelProfile& m = model(name);
  std::vector<int> sizes = batch_sizes;
  if (sizes.empty())
    for (const StepTiming& s : m.steps) sizes.push_back(s.batch_size);
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  return sizes;
}

const ModelProfile& DeviceProfile::model(const std::string& name) const {
  if (const ModelProfile* m = find_model(name)) return *m;
  std::string names;
  for (const ModelProfile& m : models) names += (names.empty() ? "" : ", ") + m.model.name;
  throw Error(ErrorCode::kNotFound, "model '" + name + "' is not in the device profile (it has: " +
                                        (names.empty() ? "none" : names) + ")");
}

// ---- measuring -------------------------------------------------------------

// The models of the partial profile at `path` that an earlier call measured
// under the very same conditions as `header` (a profile without models yet);
// none when there is no such file, it does not read, or anything differs.
std::vector<ModelProfile> kept_models(const std::string& path, const DeviceProfile& header) {
  if (path.empty() || !std::filesystem::exists(path)) return {};
  DeviceProfile earlier;
  try {
    earlier = load_device_profile(path);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kIo) throw;
    return {};  // damaged or of another version: measured again and replaced
  }
  std::vector<ModelProfile> models = std::move(earlier.models);
  earlier.models.clear();
  earlier.date = header.date;
  if (!(earlier == header)) return {};
  return models;
}

DeviceProfile profile_bundle(const std::string& bundle_dir, const ProfileOptions& options,
                             const std::function<void(const ProfileProgress&)>& on_progress) {
  const Clock::time_point started = Clock::now();
  check_profile_options(options);
  const PowerProbe power(options);
  const zoo::Manifest manifest = zoo::open_bundle(bundle_dir);

  std::vector<const ModelInfo*> chosen;
  for (const std::string& name : options.models) {
    const auto it = std::find_if(manifest.models.begin(), manifest.models.end(),
                                 [&](const ModelInfo& m) { return m.name == name; });
    if (it == manifest.models.end()) {
      std::string names;
      for (const ModelInfo& m : manifest.models) names += (names.empty() ? "" : ", ") + m.name;
      throw Error(ErrorCode::kNotFound,
                  "model '" + name + "' is not in the bundle at " + bundle_dir + " (it has: " + names + ")");
    }
  }
  for (const ModelInfo& m : manifest.models)
    if (options.models.empty() ||
        std::find(options.models.begin(), options.models.end(), m.name) != options.models.end())
      chosen.push_back(&m);

  if (options.threads > 0) torch::set_num_threads(options.threads);
  const bool cuda = options.use_cuda && torch::cuda::is_available();
  const torch::Device device = cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  // Without cuDNN autotuning: it would cost seconds per model here, and only
  // long fine-tunes use it, which it makes faster than measured (safe side).
  if (cuda) at::globalContext().setBenchmarkCuDNN(false);

  DeviceProfile profile;
  profile.date = zoo::utc_timestamp();
  profile.device.cpu_model = cpu_model();
  profile.device.cpu_cores = zoo::usable_cores();
  profile.device.threads = torch::get_num_threads();
  profile.device.device = cuda ? "cuda:0" : "cpu";
  if (cuda) profile.device.gpu_name = gpu_name();
  profile.bundle_name = manifest.name;
  for (const ModelInfo& m : manifest.models)
    profile.bundle_models.push_back({m.name, m.encoding, m.input_size, m.upstream_classes});
  profile.batch_sizes = options.batch_sizes;
  profile.warmup = options.warmup;
  profile.repetitions = options.repetitions;
  if (options.keep_freed_memory) zoo::keep_freed_memory_for_reuse();
  // Set by this call or by earlier work in the process (it lasts).
  profile.device.kept_freed_memory = zoo::keeping_freed_memory();
  const bool memory_available = zoo::start_peak_measurement() && zoo::resident_bytes();
  profile.memory_method = memory_available ? "vmhwm-reset" : "unavailable";
  profile.meter = power.available() ? power.name() : "none";
  profile.meter_measured = power.available() && power.measured();

  const std::vector<ModelProfile> kept = kept_models(options.partial_path, profile);
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    const Clock::time_point t0 = Clock::now();
    ProfileProgress progress;
    progress.index = i;
    progress.count = chosen.size();
    progress.model = chosen[i]->name;
    if (on_progress) on_progress(progress);
    const auto earlier = std::find_if(kept.begin(), kept.end(), [&](const ModelProfile& m) {
      return m.model == BundleModelEntry{chosen[i]->name, chosen[i]->encoding, chosen[i]->input_size,
                                         chosen[i]->upstream_classes};
    });
    if (earlier != kept.end()) {
      profile.models.push_back(*earlier);
    } else {
      profile.models.push_back(
          profile_model(bundle_dir, *chosen[i], options, device, cuda, power, memory_available, started));
      if (!options.partial_path.empty()) save_device_profile(profile, options.partial_path);
    }
    progress.done = &profile.models.back();
    progress.seconds = seconds_since(t0);
    if (on_progress) on_progress(progress);
  }
  if (!options.save_path.empty()) save_device_profile(profile, options.save_path);
  if (!options.partial_path.empty()) {
    std::error_code ignored;  // a leftover is only re-read and replaced
    std::filesystem::remove(options.partial_path, ignored);
  }
  return profile;
}

// ---- JSON ------------------------------------------------------------------

std::string to_json(const DeviceProfile& p) {
  Json j;
  j["format_version"] = p.format_version;
  j["date"] = p.date;
  Json device{{"cpu_model", p.device.cpu_model},
              {"cpu_cores", p.device.cpu_cores},
              {"threads", p.device.threads},
              {"device", p.device.device},
              {"kept_freed_memory", p.device.kept_freed_memory}};
  if (p.device.gpu_name) device["gpu_name"] = *p.device.gpu_name;
  j["device"] = device;
  Json bundle_models = Json::array();
  for (const BundleModelEntry& m : p.bundle_models) bundle_models.push_back(to_json(m));
  j["bundle"] = Json{{"name", p.bundle_name}, {"models", bundle_models}};
  j["settings"] = Json{{"batch_sizes", p.batch_sizes}, {"warmup", p.warmup}, {"repetitions", p.repetitions}};
  j["memory_method"] = p.memory_method;
  j["power"] = Json{{"meter", p.meter}, {"measured", p.meter_measured}};
  Json models = Json::array();
  for (const ModelProfile& m : p.models) {
    Json steps = Json::array();
    for (const StepTiming& s : m.steps) {
      Json cell{{"batch_size", s.batch_size}, {"frozen_stages", s.frozen_stages}, {"step_seconds", s.step_seconds}};
      if (s.peak_rss_bytes) cell["peak_rss_bytes"] = *s.peak_rss_bytes;
      if (s.rss_increase_bytes) cell["rss_increase_bytes"] = *s.rss_increase_bytes;
      if (s.watts) cell["watts"] = *s.watts;
      steps.push_back(cell);
    }
    Json model = to_json(m.model);
    model["num_stages"] = m.num_stages;
    model["training_layout"] = to_string(m.training_layout);
    model["inference"] = Json{{"seconds_per_image_batch1", m.inference_seconds_per_image_batch1},
                              {"seconds_per_image_batch64", m.inference_seconds_per_image_batch64}};
    model["training"] = steps;
    models.push_back(model);
  }
  j["models"] = models;
  return j.dump(2) + "\n";
}

DeviceProfile parse_device_profile(const std::string& text, const std::string& source) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception& e) {
    // Any error of the parser: a number past a double's range is an
    // out_of_range, not a parse_error. (Caught by its standard base: in this
    // build the parser's out_of_range for ordered_json did not match a catch
    // of Json::exception.)
    throw Error(ErrorCode::kCorrupt, source + ": not valid JSON (" + e.what() + ")");
  }
  const Reader top(j, "", source);
  DeviceProfile p;
  {
    const Json& v = top.get("format_version");
    // A version past the int64 range is a future version too, not garbage.
    const bool huge = past_int64(v);
    if (!v.is_number_integer() || (!huge && v.get<std::int64_t>() < 1))
      top.fail("format_version", "expected a positive integer, got " + detail::describe_value(v));
    if (huge || v.get<std::int64_t>() > kDeviceProfileFormatVersion)
      throw Error(ErrorCode::kUnsupportedVersion,
                  source + ": field 'format_version' is " + v.dump() + "; this build reads up to " +
                      std::to_string(kDeviceProfileFormatVersion) + " (profile the device again)");
    p.format_version = int(v.get<std::int64_t>());
  }
  p.date = top.string("date");

  const Reader device(top.get("device"), "device", source);
  p.device.cpu_model = device.string("cpu_model", false);
  p.device.cpu_cores = int(device.integer("cpu_cores", 1, kMaxInt));
  p.device.threads = int(device.integer("threads", 1, kMaxInt));
  p.device.device = device.string("device");
  if (p.device.device != "cpu" && p.device.device.rfind("cuda:", 0) != 0)
    device.fail("device.device", "expected \"cpu\" or \"cuda:N\", got \"" + p.device.device + "\"");
  if (device.has("gpu_name")) p.device.gpu_name = device.string("gpu_name", false);
  if (p.format_version >= 3) p.device.kept_freed_memory = device.boolean("kept_freed_memory");

  const Reader bundle(top.get("bundle"), "bundle", source);
  p.bundle_name = bundle.string("name");
  bundle.each("models", [&](const Json& m, const std::string& path) {
    p.bundle_models.push_back(read_model_entry(Reader(m, path, source)));
  });

  const Reader settings(top.get("settings"), "settings", source);
  settings.each("batch_sizes", [&](const Json& b, const std::string& path) {
    if (!b.is_number_integer() || b.get<std::int64_t>() < 1 || b.get<std::int64_t>() > kMaxInt)
      settings.fail(path, "expected a positive integer, got " + detail::describe_value(b));
    p.batch_sizes.push_back(int(b.get<std::int64_t>()));
  });
  p.warmup = int(settings.integer("warmup", 0, kMaxInt));
  p.repetitions = int(settings.integer("repetitions", 1, kMaxInt));
  p.memory_method = top.string("memory_method");

  const Reader power(top.get("power"), "power", source);
  p.meter = power.string("meter");
  p.meter_measured = power.boolean("measured");

  top.each(
      "models",
      [&](const Json& m, const std::string& path) {
        const Reader r(m, path, source);
        ModelProfile mp;
        mp.model = read_model_entry(r);
        mp.num_stages = int(r.integer("num_stages", 1, kMaxInt));
        if (p.format_version >= 2) {
          const std::string layout = r.string("training_layout");
          const std::optional<MemoryLayout> parsed = parse_memory_layout(layout);
          if (!parsed)
            r.fail(path + ".training_layout",
                   "expected \"channels-first\" or \"channels-last\", got \"" + layout + "\"");
          mp.training_layout = *parsed;
        }
        const Reader inference(r.get("inference"), path + ".inference", source);
        mp.inference_seconds_per_image_batch1 = inference.number("seconds_per_image_batch1", false, kMaxStepSeconds);
        mp.inference_seconds_per_image_batch64 = inference.number("seconds_per_image_batch64", false, kMaxStepSeconds);
        r.each("training", [&](const Json& c, const std::string& cell_path) {
          const Reader cell(c, cell_path, source);
          StepTiming s;
          s.batch_size = int(cell.integer("batch_size", 1, kMaxInt));
          s.frozen_stages = int(cell.integer("frozen_stages", 0, mp.num_stages));
          s.step_seconds = cell.number("step_seconds", false, kMaxStepSeconds);
          if (cell.has("peak_rss_bytes")) s.peak_rss_bytes = cell.integer("peak_rss_bytes", 0);
          if (cell.has("rss_increase_bytes")) s.rss_increase_bytes = cell.integer("rss_increase_bytes", 0);
          // 0 W would make every plan's energy free; a profile without a
          // power figure leaves the field out.
          if (cell.has("watts")) {
            s.watts = cell.number("watts", false, kMaxPlausibleWatts);
            // The planner charges these watts as measured: a profile made
            // without a measuring meter has none (a hand-edited one might).
            if (!p.meter_measured || p.meter == "none")
              cell.fail(cell_path + ".watts", "a power figure, but power.meter is \"" + p.meter + "\"" +
                                                  (p.meter_measured ? "" : " and measured is false") +
                                                  ": only a measuring meter gives watts");
          }
          for (const StepTiming& seen : mp.steps)
            if (seen.batch_size == s.batch_size && seen.frozen_stages == s.frozen_stages)
              cell.fail(cell_path, "batch size " + std::to_string(s.batch_size) + " with " +
                                       std::to_string(s.frozen_stages) + " frozen stages is listed twice");
          mp.steps.push_back(s);
        });
        for (const ModelProfile& seen : p.models)
          if (seen.model.name == mp.model.name)
            r.fail(path + ".name", "model '" + mp.model.name + "' is listed twice");
        p.models.push_back(std::move(mp));
      },
      /*non_empty=*/false);
  return p;
}

void save_device_profile(const DeviceProfile& profile, const std::string& path) {
  zoo::write_file_atomic(path, to_json(profile));
}

DeviceProfile load_device_profile(const std::string& path) {
  return parse_device_profile(zoo::read_file(path), path);
}

// ---- predictions -----------------------------------------------------------

std::vector<double> time_training_steps(zoo::NetworkImpl& net, int batch_size, int input_size, int warmup,
                                        int repetitions, bool use_cuda, MemoryLayout layout) {
  if (batch_size < 1 || input_size < 1 || repetitions < 1 || warmup < 0)
    throw Error(ErrorCode::kInvalidArgument,
                "time_training_steps: batch_size " + std::to_string(batch_size) + ", input_size " +
                    std::to_string(input_size) + ", warmup " + std::to_string(warmup) + ", repetitions " +
                    std::to_string(repetitions) + " (each must be >= 1, warmup >= 0)");
  const bool cuda = use_cuda && torch::cuda::is_available();
  const torch::Device device = cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (cuda) at::globalContext().setBenchmarkCuDNN(false);  // as profile_bundle() measures
  net.to(device);
  net.train();
  Regime regime;
  regime.model = "timed";
  StepRunner runner{net, device, cuda,
                    torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(regime.label_smoothing)};
  runner.layout = cuda ? MemoryLayout::kChannelsFirst : layout;
  set_memory_layout(net, runner.layout);
  const torch::Tensor images = torch::randn({batch_size, 3, input_size, input_size});
  const torch::Tensor labels = torch::randint(0, std::max(1, net.num_classes()), {batch_size}, torch::kLong);
  Optimizer optimizer(net, regime);
  for (int i = 0; i < warmup; ++i) runner.step(optimizer, images, labels);
  std::vector<double> times;
  for (int i = 0; i < repetitions; ++i) times.push_back(runner.step(optimizer, images, labels));
  return times;
}

double predict_step_seconds(const DeviceProfile& profile, const std::string& model, int batch_size,
                            int frozen_stages) {
  const ModelProfile& m = profile.model(model);
  if (batch_size < 1)
    throw Error(ErrorCode::kInvalidArgument, "batch size " + std::to_string(batch_size) + " is below 1");
  std::vector<const StepTiming*> points;
  for (const StepTiming& s : m.steps)
    if (s.frozen_stages == frozen_stages) points.push_back(&s);
  if (frozen_stages < 0 || frozen_stages > m.num_stages || points.empty())
    throw Error(ErrorCode::kNotFound, "model '" + model + "' has no measurement with " +
                                          std::to_string(frozen_stages) + " frozen stages (it has " +
                                          std::to_string(m.num_stages) + " stages, stem included)");
  for (const StepTiming* s : points)
    if (s->batch_size == batch_size) return s->step_seconds;

  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const StepTiming* s : points) {
    const double x = s->batch_size, y = s->step_seconds;
    n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  const double denominator = n * sxx - sx * sx;
  if (denominator > 0) {
    const double slope = (n * sxy - sx * sy) / denominator;
    // A larger batch never takes less time per step: a falling line is
    // timing noise, and extrapolated it would price a big batch below a
    // measured small one.
    const double intercept = (sy - slope * sx) / n;
    const double predicted = intercept + slope * batch_size;
    if (slope >= 0 && std::isfinite(predicted) && predicted > 0) return predicted;
  }
  // One batch size measured, or noise made the line fall or cross zero: no
  // fit to trust.
  const StepTiming* nearest = *std::min_element(points.begin(), points.end(), [&](auto* a, auto* b) {
    return std::abs(a->batch_size - batch_size) < std::abs(b->batch_size - batch_size);
  });
  return nearest->step_seconds * double(batch_size) / double(nearest->batch_size);
}

double predict_epoch_seconds(const DeviceProfile& profile, const std::string& model, std::int64_t images,
                             int batch_size, int frozen_stages) {
  if (images < 0)
    throw Error(ErrorCode::kInvalidArgument, "image count " + std::to_string(images) + " is negative");
  const double step = predict_step_seconds(profile, model, batch_size, frozen_stages);
  // A lone image over joins the batch before when training (batching.h);
  // counted here as a step of its own, on the safe side.
  return double(batches_per_epoch(images, batch_size, /*no_batch_of_one=*/false)) * step;
}

double predict_evaluation_seconds(const DeviceProfile& profile, const std::string& model, std::int64_t images,
                                  int batch_size) {
  const ModelProfile& m = profile.model(model);
  if (images < 0 || batch_size < 1)
    throw Error(ErrorCode::kInvalidArgument, "cannot predict an evaluation of " + std::to_string(images) +
                                                 " images at batch " + std::to_string(batch_size));
  const double at1 = m.inference_seconds_per_image_batch1, at64 = m.inference_seconds_per_image_batch64;
  if (!(at1 > 0 && at64 > 0)) return double(images) * std::max({0.0, at1, at64});
  // A batch of b takes per_batch + b * per_image: at1 = per_batch + per_image
  // and at64 = per_batch / 64 + per_image. Evaluation does not merge a last
  // short batch, which pays per_batch whole.
  const double per_batch = std::max(0.0, (at1 - at64) / (1.0 - 1.0 / 64));
  const double per_image = std::max(0.0, at1 - per_batch);
  const std::int64_t batches = batches_per_epoch(images, batch_size, /*no_batch_of_one=*/false);
  return double(batches) * per_batch + double(images) * per_image;
}

}  // namespace nasoa::runtime
