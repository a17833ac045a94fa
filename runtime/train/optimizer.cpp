#include "runtime/train/optimizer.h"

#include <cmath>
#include <map>

#include "nasoa/error.h"

namespace nasoa::runtime {

double step_learning_rate(const Regime& regime, int epoch, std::int64_t step, std::int64_t steps_per_epoch,
                          const ScheduleFit& fit) {
  return learning_rate_at(regime, fit.scheduled(double(epoch) + (double(step) + 0.5) / double(steps_per_epoch)));
}

Optimizer::Optimizer(torch::nn::Module& module, const Regime& regime) : regime_(regime) {
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    Slot slot{item.key(), item.value(), torch::zeros_like(item.value()), {}};
    if (regime.optimizer == OptimizerKind::kAdamW) slot.second = torch::zeros_like(item.value());
    slots_.push_back(std::move(slot));
  }
}

void Optimizer::zero_grad() {
  for (Slot& s : slots_)
    if (s.param.grad().defined()) s.param.mutable_grad().zero_();
}

void Optimizer::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double wd = regime_.weight_decay;
  if (regime_.optimizer == OptimizerKind::kSgd) {
    for (Slot& s : slots_) {
      if (!s.param.grad().defined()) continue;
      torch::Tensor g = s.param.grad();
      if (wd > 0) g = g.add(s.param, wd);
      s.first.mul_(regime_.momentum).add_(g);
      s.param.add_(s.first, -lr);
    }
    return;
  }
  const double beta1 = regime_.momentum, beta2 = 0.999, eps = 1e-8;
  const double correction1 = 1.0 - std::pow(beta1, double(steps_));
  const double correction2 = 1.0 - std::pow(beta2, double(steps_));
  for (Slot& s : slots_) {
    if (!s.param.grad().defined()) continue;
    const torch::Tensor& g = s.param.grad();
    if (wd > 0) s.param.mul_(1.0 - lr * wd);
    s.first.mul_(beta1).add_(g, 1.0 - beta1);
    s.second.mul_(beta2).addcmul_(g, g, 1.0 - beta2);
    const torch::Tensor denom = (s.second / correction2).sqrt_().add_(eps);
    s.param.addcdiv_(s.first, denom, -lr / correction1);
  }
}

zoo::NamedTensors Optimizer::state() const {
  zoo::NamedTensors out;
  out.emplace_back("optimizer.steps", torch::tensor({steps_}, torch::kInt64));
  for (const Slot& s : slots_) {
    out.emplace_back("optimizer." + s.name + ".first", s.first.detach().to(torch::kCPU).contiguous());
    if (s.second.defined())
      out.emplace_back("optimizer." + s.name + ".second", s.second.detach().to(torch::kCPU).contiguous());
  }
  return out;
}

void Optimizer::load_state(const zoo::NamedTensors& state, const std::string& source) {
  std::map<std::string, torch::Tensor> by_name(state.begin(), state.end());
  auto take = [&](const std::string& name, const torch::Tensor& like) {
    auto it = by_name.find(name);
    if (it == by_name.end() || it->second.sizes() != like.sizes())
      throw Error(ErrorCode::kCorrupt, source + ": optimiser state '" + name + "' is missing or has the wrong shape");
    return it->second;
  };
  const torch::Tensor steps = take("optimizer.steps", torch::empty({1}));
  torch::NoGradGuard no_grad;
  for (Slot& s : slots_) {
    s.first.copy_(take("optimizer." + s.name + ".first", s.first));
    if (s.second.defined()) s.second.copy_(take("optimizer." + s.name + ".second", s.second));
  }
  steps_ = steps.item<std::int64_t>();
}

void Optimizer::set_memory_layout(MemoryLayout layout) {
  for (Slot& s : slots_) {
    if (s.param.dim() != 4) continue;
    s.first = in_memory_layout(s.first, layout);
    if (s.second.defined()) s.second = in_memory_layout(s.second, layout);
  }
}

}  // namespace nasoa::runtime
