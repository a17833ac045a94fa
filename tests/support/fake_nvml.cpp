// tests/support/fake_nvml.cpp: a stand-in for NVIDIA's libnvidia-ml, so that
// the NVML meter's loading, reading and choice are tested on machines without
// the driver. It exports the entry points runtime/energy/nvml.cpp looks up,
// with their C ABI, and simulates one GPU (index 0) whose energy counter
// grows by kMillijoulesPerRead at every read.
#include <atomic>

namespace {

constexpr int kSuccess = 0, kInvalidArgument = 2, kUninitialized = 1;
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
  return rc == kInvalidArgument ? "Invalid Argument" : rc == kUninitialized ? "Uninitialized" : "Unknown Error";
}

}  // extern "C"
