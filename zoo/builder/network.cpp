#include "zoo/builder/network.h"

#include "nasoa/error.h"

namespace nasoa::zoo {
namespace {

thread_local MacProbe* active_probe = nullptr;

// MACs per image of `conv` producing `out`: output elements times input
// channels per group times kernel area, i.e. weight numel times output area.
void count_conv(const torch::nn::Conv2d& conv, const torch::Tensor& out) {
  MacProbe::add(conv->weight.numel() * out.size(2) * out.size(3));
}

}  // namespace

MacProbe::MacProbe() : previous_(active_probe) { active_probe = this; }
MacProbe::~MacProbe() { active_probe = previous_; }
void MacProbe::add(std::int64_t macs) {
  if (active_probe) active_probe->macs_ += macs;
}

ConvBnImpl::ConvBnImpl(Op op, int in, int out, int kernel, int stride, int groups) {
  const int padding = kernel / 2;
  if (op == Op::kSeparable) {
    depthwise_ = register_module(
        "depthwise", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, in, 3)
                                           .stride(stride).padding(1).groups(in).bias(false)));
    conv_ = register_module(
        "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).bias(false)));
  } else {
    conv_ = register_module(
        "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                      .stride(stride).padding(padding).groups(groups).bias(false)));
  }
  bn_ = register_module("bn", torch::nn::BatchNorm2d(out));
}

torch::Tensor ConvBnImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = x;
  if (depthwise_) {
    y = depthwise_(y);
    if (active_probe) count_conv(depthwise_, y);
  }
  y = conv_(y);
  if (active_probe) count_conv(conv_, y);
  return bn_(y);
}

BlockImpl::BlockImpl(const BlockPlan& plan) : plan_(plan) {
  for (std::size_t i = 0; i < plan_.layers.size(); ++i) {
    const LayerPlan& l = plan_.layers[i];
    layers_.push_back(register_module(
        "layers" + std::to_string(i),
        ConvBn(l.op, l.in_channels, l.out_channels, l.op == Op::kConv1x1 ? 1 : 3, l.stride,
               l.groups)));
  }
  for (std::size_t i = 0; i < plan_.connections.size(); ++i) {
    const auto& p = plan_.connections[i].projection;
    projections_.push_back(
        p ? register_module("proj" + std::to_string(i),
                            ConvBn(Op::kConv1x1, p->in_channels, p->out_channels, 1, p->stride, 1))
          : ConvBn(nullptr));
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> nodes{x};
  nodes.reserve(plan_.layers.size() + 1);
  std::size_t next = 0;
  for (std::size_t i = 1; i <= layers_.size(); ++i) {
    torch::Tensor y = layers_[i - 1](nodes[i - 1]);
    for (; next < plan_.connections.size() &&
           plan_.connections[next].connection.to == static_cast<int>(i);
         ++next) {
      const Connection& c = plan_.connections[next].connection;
      torch::Tensor src = nodes[static_cast<std::size_t>(c.from)];
      if (projections_[next]) src = projections_[next](src);
      y = c.kind == ConnectionKind::kAdd ? y + src : torch::cat({src, y}, 1);
    }
    nodes.push_back(torch::relu(y));
  }
  return nodes.back();
}

NetworkImpl::NetworkImpl(const Encoding& encoding, int num_classes)
    : encoding_(encoding), plan_(plan_network(encoding)), num_classes_(num_classes) {
  if (num_classes < 1)
    throw Error(ErrorCode::kInvalidArgument,
                "num_classes must be at least 1, got " + std::to_string(num_classes));
  torch::nn::Sequential stem;
  for (const ConvPlan& c : plan_.stem) {
    stem->push_back(ConvBn(Op::kConv3x3, c.in_channels, c.out_channels, 3, c.stride, 1));
    stem->push_back(torch::nn::Functional(torch::relu));
  }
  stages_.push_back(register_module("stem", stem));
  for (std::size_t s = 0; s < plan_.stages.size(); ++s) {
    torch::nn::Sequential stage;
    for (const BlockPlan& b : plan_.stages[s]) stage->push_back(Block(b));
    stages_.push_back(register_module("stage" + std::to_string(s + 1), stage));
  }
  head_ = register_module("head", torch::nn::Linear(plan_.feature_channels, num_classes));
  initialise(*this);
}

torch::Tensor NetworkImpl::body(const torch::Tensor& x) {
  torch::Tensor y = x;
  for (int s = 0; s < num_stages(); ++s) {
    if (s < frozen_) {
      torch::NoGradGuard no_grad;
      y = stages_[static_cast<std::size_t>(s)]->forward(y);
    } else {
      y = stages_[static_cast<std::size_t>(s)]->forward(y);
    }
  }
  return y;
}

torch::Tensor NetworkImpl::features(const torch::Tensor& x) {
  return torch::adaptive_avg_pool2d(body(x), {1, 1}).flatten(1);
}

torch::Tensor NetworkImpl::forward(const torch::Tensor& x) {
  if (active_probe) MacProbe::add(head_->weight.numel());
  return head_(features(x));
}

torch::nn::Module& NetworkImpl::stage(int index) {
  if (index < 0 || index >= num_stages())
    throw Error(ErrorCode::kInvalidArgument,
                "stage " + std::to_string(index) + " out of range 0-" +
                    std::to_string(num_stages() - 1));
  return *stages_[static_cast<std::size_t>(index)];
}

void NetworkImpl::freeze_stages(int k) {
  if (k < 0 || k > num_stages())
    throw Error(ErrorCode::kInvalidArgument,
                "cannot freeze " + std::to_string(k) + " stages: the network has " +
                    std::to_string(num_stages()) + " (stem included)");
  frozen_ = k;
  for (int s = 0; s < num_stages(); ++s)
    for (auto& p : stages_[static_cast<std::size_t>(s)]->parameters()) p.set_requires_grad(s >= k);
  train(is_training());
}

void NetworkImpl::train(bool on) {
  torch::nn::Module::train(on);
  for (int s = 0; s < frozen_; ++s) stages_[static_cast<std::size_t>(s)]->eval();
}

void NetworkImpl::reset_head(int num_classes) {
  if (num_classes < 1)
    throw Error(ErrorCode::kInvalidArgument,
                "num_classes must be at least 1, got " + std::to_string(num_classes));
  head_ = replace_module("head", torch::nn::Linear(plan_.feature_channels, num_classes));
  initialise(*head_);
  num_classes_ = num_classes;
}

void initialise(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  auto initialise_one = [](torch::nn::Module& m) {
    if (auto* conv = m.as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = m.as<torch::nn::BatchNorm2d>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    } else if (auto* linear = m.as<torch::nn::Linear>()) {
      torch::nn::init::normal_(linear->weight, 0.0, 0.01);
      torch::nn::init::zeros_(linear->bias);
    }
  };
  // modules(include_self=true) needs the module to be held by a shared_ptr,
  // which is not yet so while a constructor runs; visit the module itself apart.
  initialise_one(module);
  for (const auto& child : module.modules(/*include_self=*/false)) initialise_one(*child);
}

}  // namespace nasoa::zoo
