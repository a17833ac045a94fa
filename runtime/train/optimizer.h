// runtime/train/optimizer.h: SGD with momentum and AdamW over named parameters.
//
// Written here rather than taken from torch::optim because a checkpoint must
// save and restore the optimiser's state by parameter name, in our own
// code-free weights format, identically across LibTorch versions (torch::optim
// keys its state by tensor address, and that API changed between 1.x and 2.x).
// Only parameters that require gradients are updated; weight decay is
// decoupled for AdamW and L2 (added to the gradient) for SGD, as usual.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "nasoa/regime.h"
#include "runtime/train/memory_layout.h"
#include "runtime/train/schedule_fit.h"
#include "zoo/bundle/weights_file.h"

namespace nasoa::runtime {

// The learning rate of step `step` (0-based) of epoch `epoch` (0-based):
// learning_rate_at() in the middle of the step. Taken at the step's end, the
// cosine's last step ran at 0 (a one-step run trained nothing) and the step
// schedule divided one step early; at its start, the warm-up's first step
// would run at 0. A run whose schedule was fitted to its time (`fit`) takes
// the rate of where in the regime's schedule that point falls.
double step_learning_rate(const Regime& regime, int epoch, std::int64_t step, std::int64_t steps_per_epoch,
                          const ScheduleFit& fit = {});

class Optimizer {
 public:
  // Takes the trainable parameters of `module` (requires_grad) by name.
  Optimizer(torch::nn::Module& module, const Regime& regime);

  void zero_grad();
  void step(double learning_rate);

  // Momentum / moment buffers and the step count, by "<param>.<buffer>".
  zoo::NamedTensors state() const;
  // Throws Error{kCorrupt} naming `source` if names or shapes do not match.
  void load_state(const zoo::NamedTensors& state, const std::string& source);

  // Moves the buffers of 4-D parameters to `layout`, to follow the
  // parameters (set_memory_layout): mixed layouts compute the same but slower.
  void set_memory_layout(MemoryLayout layout);

 private:
  struct Slot {
    std::string name;
    torch::Tensor param;
    torch::Tensor first;   // SGD momentum buffer, or AdamW exp_avg
    torch::Tensor second;  // AdamW exp_avg_sq (undefined for SGD)
  };
  Regime regime_;
  std::vector<Slot> slots_;
  std::int64_t steps_ = 0;
};

}  // namespace nasoa::runtime
