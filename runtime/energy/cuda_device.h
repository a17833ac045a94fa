// runtime/energy/cuda_device.h: which physical GPU a CUDA device number is.
//
// CUDA numbers the devices it can see (after CUDA_VISIBLE_DEVICES, fastest
// first by default); NVML numbers every GPU in PCI order. The two agree only
// on single-GPU machines, so the NVML meter finds the GPU a job trains on by
// its PCI bus id instead of by number.
#pragma once

#include <string>

namespace nasoa::runtime {

// The PCI bus id ("0000:3b:00.0") of CUDA device `ordinal`, read through the
// driver API of `library` (loaded with dlopen, so no link dependency); ""
// when the library, the driver or the device is not there.
std::string cuda_pci_bus_id(int ordinal, const std::string& library = "libcuda.so.1");

}  // namespace nasoa::runtime
