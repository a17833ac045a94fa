#include "runtime/energy/cuda_device.h"

#include <dlfcn.h>

namespace nasoa::runtime {

std::string cuda_pci_bus_id(int ordinal, const std::string& library) {
  // The driver API's C ABI: CUresult is an enum (0 is CUDA_SUCCESS) and
  // CUdevice an int.
  using InitFn = int (*)(unsigned int);
  using DeviceGetFn = int (*)(int*, int);
  using PciBusIdFn = int (*)(char*, int, int);
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return "";
  std::string bus_id;
  const auto init = reinterpret_cast<InitFn>(::dlsym(handle, "cuInit"));
  const auto device_get = reinterpret_cast<DeviceGetFn>(::dlsym(handle, "cuDeviceGet"));
  const auto pci_bus_id = reinterpret_cast<PciBusIdFn>(::dlsym(handle, "cuDeviceGetPCIBusId"));
  int device = 0;
  char text[64] = {};
  if (init != nullptr && device_get != nullptr && pci_bus_id != nullptr && init(0) == 0 &&
      device_get(&device, ordinal) == 0 && pci_bus_id(text, sizeof text - 1, device) == 0)
    bus_id = text;
  // The driver stays loaded for LibTorch's own use; closing only drops our
  // reference.
  ::dlclose(handle);
  return bus_id;
}

}  // namespace nasoa::runtime
