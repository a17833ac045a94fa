// tests/support/fake_cuda.cpp: a stand-in for NVIDIA's libcuda (the driver
// API), so that finding the GPU a job trains on is tested without one. It
// exports the three entry points runtime/energy/cuda_device.cpp looks up and
// simulates one visible device, ordinal 0, at PCI bus id 0000:3b:00.0.
#include <cstring>

extern "C" {

__attribute__((visibility("default"))) int cuInit(unsigned int flags) { return flags == 0 ? 0 : 1; }

__attribute__((visibility("default"))) int cuDeviceGet(int* device, int ordinal) {
  if (device == nullptr || ordinal != 0) return 101;  // CUDA_ERROR_INVALID_DEVICE
  *device = 0;
  return 0;
}

__attribute__((visibility("default"))) int cuDeviceGetPCIBusId(char* bus_id, int length, int device) {
  const char* id = "0000:3b:00.0";
  if (bus_id == nullptr || device != 0 || length < int(std::strlen(id)) + 1) return 1;
  std::strcpy(bus_id, id);
  return 0;
}

}  // extern "C"
