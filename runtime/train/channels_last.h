// runtime/train/channels_last.h: the memory layout training uses on the CPU.
//
// oneDNN's convolutions, which LibTorch runs on x86 and Arm CPUs, are faster
// on NHWC ("channels last") tensors than on LibTorch's default NCHW. On one
// core here, training steps of the runtime_bench network on pre-made batches
// ran 1.3-1.5x faster, and nasoa-adapt's epochs 15-18 % faster (evaluation
// and batch building included; three alternated pairs). So on the CPU,
// fine-tuning and the device profile that predicts it keep the network's 4-D
// weights and their input batches channels last.
// On a GPU the default layout stays (not measured there). Saved weights are
// always written NCHW (zoo/bundle/weights_file.cpp makes them contiguous).
#pragma once

#include <torch/torch.h>

namespace nasoa::runtime {

// Whether training on `device` uses channels last.
inline bool trains_channels_last(const torch::Device& device) { return device.is_cpu(); }

// Moves every 4-D parameter and buffer of `module` to `format` in place.
inline void set_memory_format(torch::nn::Module& module, torch::MemoryFormat format) {
  torch::NoGradGuard no_grad;
  for (torch::Tensor& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(format));
  for (torch::Tensor& b : module.buffers())
    if (b.dim() == 4) b.set_data(b.contiguous(format));
}

// A batch of images on `device`, in the layout training there uses.
inline torch::Tensor batch_for(const torch::Tensor& images, const torch::Device& device) {
  torch::Tensor on = images.to(device);
  return trains_channels_last(device) ? on.contiguous(torch::MemoryFormat::ChannelsLast) : on;
}

}  // namespace nasoa::runtime
