// tests/support/fake_nvml.cpp: a stand-in for NVIDIA's libnvidia-ml, so that
// the NVML meter's loading, reading and choice are tested on machines without
// the driver. It exports the entry points runtime/energy/nvml.cpp looks up,
// with their C ABI, and simulates one GPU (index 0, PCI bus id kBusId) whose
// energy counter grows by kMillijoulesPerRead at every read.
#include <atomic>
#include <strings.h>

#include <cstring>

namespace {

constexpr int kSuccess = 0, kInvalidArgument = 2, kUninitialized = 1, kNotFound = 6;
constexpr const char* kBusId = "00000000:3B:00.0";  // as NVML writes it
constexpr unsigned long long kStartMillijoules = 1000000, kMillijoulesPerRead = 250;
std::atomic<int> g_initialised{0};
std::atomic<unsigned long long> g_reads{0};
int g_device = 0;  // its address is the device handle

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int nvmlInit_v2() {
  ++g_initialised;
  return kSuccess;
}

__attribute__((visibility("default"))) int nvmlShutdown() {
  if (g_initialised == 0) return kUninitialized;
  --g_initialised;
  return kSuccess;
}

__attribute__((visibility("default"))) int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (g_initialised == 0) return kUninitialized;
  if (index != 0 || device == nullptr) return kInvalidArgument;
  *device = &g_device;
  return kSuccess;
}

// NVML accepts a bus id with a 4- or 8-digit domain, in either case.
__attribute__((visibility("default"))) int nvmlDeviceGetHandleByPciBusId_v2(const char* bus_id, void** device) {
  if (g_initialised == 0) return kUninitialized;
  if (bus_id == nullptr || device == nullptr) return kInvalidArgument;
  if (strcasecmp(bus_id, kBusId) != 0 && strcasecmp(bus_id, kBusId + 4) != 0) return kNotFound;
  *device = &g_device;
  return kSuccess;
}

__attribute__((visibility("default"))) int nvmlDeviceGetTotalEnergyConsumption(void* device,
                                                                               unsigned long long* millijoules) {
  if (device != &g_device || millijoules == nullptr) return kInvalidArgument;
  *millijoules = kStartMillijoules + kMillijoulesPerRead * g_reads++;
  return kSuccess;
}

__attribute__((visibility("default"))) int nvmlDeviceGetPowerUsage(void* device, unsigned int* milliwatts) {
  if (device != &g_device || milliwatts == nullptr) return kInvalidArgument;
  *milliwatts = 75000;
  return kSuccess;
}

__attribute__((visibility("default"))) const char* nvmlErrorString(int rc) {
  return rc == kInvalidArgument ? "Invalid Argument"
         : rc == kUninitialized ? "Uninitialized"
         : rc == kNotFound      ? "Not Found"
                                : "Unknown Error";
}

}  // extern "C"
