// NVML is loaded with dlopen at run time: the runtime must start on machines
// without NVIDIA's driver (Jetsons have no NVML at all), and linking it would
// make libnvidia-ml a load-time dependency. The few entry points used are
// declared here with the C ABI NVML documents; no NVML header is needed.
//
// Energy comes from nvmlDeviceGetTotalEnergyConsumption (a millijoule counter
// since driver load, Volta and newer). Older GPUs only have
// nvmlDeviceGetPowerUsage (milliwatts), which makes this a power meter.
#include <dlfcn.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nasoa/error.h"
#include "runtime/energy/meters.h"

namespace nasoa::runtime {
namespace {

using NvmlReturn = int;  // nvmlReturn_t; NVML_SUCCESS is 0
using NvmlDevice = struct NvmlDeviceOpaque*;
constexpr NvmlReturn kNvmlSuccess = 0;

using InitFn = NvmlReturn (*)();
using ShutdownFn = NvmlReturn (*)();
using HandleByIndexFn = NvmlReturn (*)(unsigned int, NvmlDevice*);
using HandleByPciBusIdFn = NvmlReturn (*)(const char*, NvmlDevice*);
using TotalEnergyFn = NvmlReturn (*)(NvmlDevice, unsigned long long*);
using PowerUsageFn = NvmlReturn (*)(NvmlDevice, unsigned int*);
using ErrorStringFn = const char* (*)(NvmlReturn);

// The loaded library, initialised. Shutdown and dlclose happen in the
// destructor, in that order, so nothing calls into an unloaded library.
class NvmlLibrary {
 public:
  NvmlLibrary(void* handle, ShutdownFn shutdown) : handle_(handle), shutdown_(shutdown) {}
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;
  ~NvmlLibrary() {
    if (shutdown_ != nullptr) shutdown_();
    ::dlclose(handle_);
  }

 private:
  void* handle_;
  ShutdownFn shutdown_;
};

struct NvmlApi {
  InitFn init = nullptr;
  ShutdownFn shutdown = nullptr;
  HandleByIndexFn handle_by_index = nullptr;
  HandleByPciBusIdFn handle_by_pci_bus_id = nullptr;  // optional: only to find a GPU by bus id
  TotalEnergyFn total_energy = nullptr;  // optional
  PowerUsageFn power_usage = nullptr;    // optional
  ErrorStringFn error_string = nullptr;  // optional
};

std::string describe(const NvmlApi& api, NvmlReturn rc) {
  std::string text = "NVML error " + std::to_string(rc);
  if (api.error_string != nullptr) {
    if (const char* s = api.error_string(rc)) text += " (" + std::string(s) + ")";
  }
  return text;
}

class NvmlMeter final : public EnergyMeter {
 public:
  NvmlMeter(std::unique_ptr<NvmlLibrary> library, NvmlApi api, NvmlDevice device, std::string gpu,
            bool counter)
      : library_(std::move(library)), api_(api), device_(device), name_("nvml:" + gpu), counter_(counter) {}

  std::string name() const override { return name_; }
  MeterKind kind() const override { return MeterKind::kNvml; }
  MeterQuantity quantity() const override {
    return counter_ ? MeterQuantity::kEnergyCounter : MeterQuantity::kPower;
  }
  bool measured() const override { return true; }

  double read_watts() override {
    if (counter_) return EnergyMeter::read_watts();
    unsigned int milliwatts = 0;
    const NvmlReturn rc = api_.power_usage(device_, &milliwatts);
    if (rc != kNvmlSuccess) {
      throw Error(ErrorCode::kIo, name_ + ": nvmlDeviceGetPowerUsage failed: " + describe(api_, rc));
    }
    return milliwatts / 1000.0;
  }

  std::vector<std::uint64_t> read_counters_uj() override {
    if (!counter_) return EnergyMeter::read_counters_uj();
    unsigned long long millijoules = 0;
    const NvmlReturn rc = api_.total_energy(device_, &millijoules);
    if (rc != kNvmlSuccess) {
      throw Error(ErrorCode::kIo,
                  name_ + ": nvmlDeviceGetTotalEnergyConsumption failed: " + describe(api_, rc));
    }
    return {static_cast<std::uint64_t>(millijoules) * 1000};
  }

  std::vector<std::uint64_t> counter_ranges_uj() const override {
    if (!counter_) return {};
    return {0};  // 64-bit millijoules: no wrap in any run
  }

 private:
  std::unique_ptr<NvmlLibrary> library_;
  NvmlApi api_;
  NvmlDevice device_;
  std::string name_;
  bool counter_;
};

template <typename Fn>
Fn symbol(void* handle, const char* name) {
  return reinterpret_cast<Fn>(::dlsym(handle, name));
}

}  // namespace

std::unique_ptr<EnergyMeter> open_nvml(const MeterOptions& options, std::string* why_not) {
  const std::string& path = options.nvml_library;
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    *why_not = "cannot load " + path + (err ? ": " + std::string(err) : std::string());
    return nullptr;
  }
  NvmlApi api;
  api.init = symbol<InitFn>(handle, "nvmlInit_v2");
  api.shutdown = symbol<ShutdownFn>(handle, "nvmlShutdown");
  api.handle_by_index = symbol<HandleByIndexFn>(handle, "nvmlDeviceGetHandleByIndex_v2");
  api.handle_by_pci_bus_id = symbol<HandleByPciBusIdFn>(handle, "nvmlDeviceGetHandleByPciBusId_v2");
  api.total_energy = symbol<TotalEnergyFn>(handle, "nvmlDeviceGetTotalEnergyConsumption");
  api.power_usage = symbol<PowerUsageFn>(handle, "nvmlDeviceGetPowerUsage");
  api.error_string = symbol<ErrorStringFn>(handle, "nvmlErrorString");
  if (api.init == nullptr || api.shutdown == nullptr || api.handle_by_index == nullptr ||
      (api.total_energy == nullptr && api.power_usage == nullptr)) {
    ::dlclose(handle);
    *why_not = path + " lacks the NVML entry points nvmlInit_v2, nvmlShutdown, "
                      "nvmlDeviceGetHandleByIndex_v2 and an energy or power query";
    return nullptr;
  }
  const NvmlReturn init_rc = api.init();
  if (init_rc != kNvmlSuccess) {
    std::string text = describe(api, init_rc);
    ::dlclose(handle);
    *why_not = path + ": nvmlInit_v2 failed: " + text;
    return nullptr;
  }
  auto library = std::make_unique<NvmlLibrary>(handle, api.shutdown);

  // The GPU: by bus id when the job's GPU is known (CUDA's numbers are not
  // NVML's on a machine with several), else by index.
  const bool by_bus = !options.gpu_pci_bus_id.empty();
  const std::string gpu = by_bus ? "gpu@" + options.gpu_pci_bus_id : "gpu" + std::to_string(options.nvml_gpu_index);
  NvmlDevice device = nullptr;
  if (by_bus && api.handle_by_pci_bus_id == nullptr) {
    *why_not = path + " lacks nvmlDeviceGetHandleByPciBusId_v2, needed to find the GPU at " + options.gpu_pci_bus_id;
    return nullptr;
  }
  const NvmlReturn handle_rc = by_bus ? api.handle_by_pci_bus_id(options.gpu_pci_bus_id.c_str(), &device)
                                      : api.handle_by_index(options.nvml_gpu_index, &device);
  if (handle_rc != kNvmlSuccess) {
    *why_not = path + ": no GPU " +
               (by_bus ? "at PCI bus id " + options.gpu_pci_bus_id
                       : "with index " + std::to_string(options.nvml_gpu_index)) +
               ": " + describe(api, handle_rc);
    return nullptr;
  }
  // Prefer the counter: it integrates in the driver at the sensor's own rate,
  // which no sampling thread can match.
  if (api.total_energy != nullptr) {
    unsigned long long millijoules = 0;
    if (api.total_energy(device, &millijoules) == kNvmlSuccess) {
      return std::make_unique<NvmlMeter>(std::move(library), api, device, gpu, true);
    }
  }
  if (api.power_usage != nullptr) {
    unsigned int milliwatts = 0;
    const NvmlReturn rc = api.power_usage(device, &milliwatts);
    if (rc == kNvmlSuccess) {
      return std::make_unique<NvmlMeter>(std::move(library), api, device, gpu, false);
    }
    *why_not = path + ": " + gpu + " reports neither total energy nor power: " + describe(api, rc);
    return nullptr;
  }
  *why_not = path + ": " + gpu + " does not report total energy";
  return nullptr;
}

}  // namespace nasoa::runtime
