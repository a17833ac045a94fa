#include "runtime/train/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

// PyTorch 2.4 replaced the CUDA-specific autocast calls by per-device ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define NASOA_AUTOCAST_PER_DEVICE 1
#endif

namespace nasoa::runtime {
namespace {

bool autocast_enabled() {
#ifdef NASOA_AUTOCAST_PER_DEVICE
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}

void set_autocast(bool enabled, at::ScalarType dtype) {
#ifdef NASOA_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
  at::autocast::set_enabled(enabled);
  at::autocast::set_autocast_gpu_dtype(dtype);
#endif
}

at::ScalarType autocast_dtype() {
#ifdef NASOA_AUTOCAST_PER_DEVICE
  return at::autocast::get_autocast_dtype(at::kCUDA);
#else
  return at::autocast::get_autocast_gpu_dtype();
#endif
}

}  // namespace

CudaAutocast::CudaAutocast(bool enable) : enable_(enable) {
  if (!enable_) return;
  previous_ = autocast_enabled();
  previous_dtype_ = autocast_dtype();
  set_autocast(true, at::kBFloat16);
  at::autocast::increment_nesting();
}

CudaAutocast::~CudaAutocast() {
  if (!enable_) return;
  // The cast weights are cached while autocast is on; drop them when the
  // outermost guard ends, as torch.autocast does.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(previous_, previous_dtype_);
}

bool cuda_bf16_usable(const torch::Device& device) {
  if (!device.is_cuda()) return false;
  static const bool usable = [&] {
    try {
      const torch::Tensor a = torch::ones({16, 16}, torch::TensorOptions().device(device).dtype(torch::kBFloat16));
      return a.matmul(a).sum().item<float>() == 16.0f * 16 * 16;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return usable;
}

}  // namespace nasoa::runtime
