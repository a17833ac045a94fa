// runtime/train/autocast.h: bfloat16 mixed precision on CUDA.
//
// While a CudaAutocast guard lives, CUDA ops that autocast covers
// (convolutions, matmuls) run in bfloat16 on this thread, the rest in float32,
// as torch.autocast does in Python. bfloat16 needs no loss scaling (its
// exponent range is float32's), which LibTorch's C++ API does not offer.
// Only GPUs with native bfloat16 (compute capability 8.0+, e.g. Orin) are
// worth it; cuda_bf16_usable() probes that once per process.
//
// Builds against LibTorch 1.13's and 2.4+'s autocast API; run on an H200
// with LibTorch 2.11 (tests/runtime/cuda_test.cpp).
#pragma once

#include <torch/torch.h>

namespace nasoa::runtime {

class CudaAutocast {
 public:
  explicit CudaAutocast(bool enable);
  ~CudaAutocast();
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool enable_;
  bool previous_ = false;
  at::ScalarType previous_dtype_ = at::kHalf;
};

// True when `device` is a CUDA device on which a bfloat16 matmul runs.
bool cuda_bf16_usable(const torch::Device& device);

}  // namespace nasoa::runtime
