// Test support: a network whose every saved value differs from what a fresh
// one starts from. A freshly initialised network's BatchNorm statistics
// (running mean 0, variance 1, count 0) and affine parameters (1 and 0) are
// what a loader that skipped them would leave too, so a save/load test on
// such a network cannot see them dropped.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace nasoa::testing {

// Moves every parameter by a small random amount and sets every buffer to a
// value no initialisation gives: running variances in [0.5, 2], other
// floating buffers in [-0.2, 0.2], counters to 7. Small moves keep the
// network's outputs in range (no saturated softmax).
inline void scramble_state(torch::nn::Module& module, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : module.named_parameters(/*recurse=*/true))
    p.value().add_(torch::empty_like(p.value()).uniform_(-0.1, 0.1));
  for (auto& b : module.named_buffers(/*recurse=*/true)) {
    torch::Tensor& t = b.value();
    if (!t.is_floating_point()) {
      t.fill_(7);
    } else if (b.key().size() >= 11 && b.key().compare(b.key().size() - 11, 11, "running_var") == 0) {
      t.uniform_(0.5, 2.0);
    } else {
      t.uniform_(-0.2, 0.2);
    }
  }
}

}  // namespace nasoa::testing
