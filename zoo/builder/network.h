// zoo/builder/network.h: the LibTorch network of an encoding.
//
// Network is a torch::nn::Module holder (shared ownership, as LibTorch's
// modules are). Layout, channel counts and strides come from the
// NetworkPlan, so the module always has exactly count_cost() parameters.
//
// Parameter names are stable and are what weights files store:
//   stem.<k>.{conv,bn}.*, stage<i>.<j>.layers<k>.*, stage<i>.<j>.proj<k>.*,
//   head.{weight,bias}.
// A Network is not thread-safe: use one per thread, or guard it.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "nasoa/encoding.h"
#include "zoo/search_space/network_plan.h"

namespace nasoa::zoo {

// Counts the multiply-accumulates of every convolution and of the head that
// runs on this thread while the probe is alive, per image (batch dimension
// divided out). An independent check of count_cost() on a real forward pass.
class MacProbe {
 public:
  MacProbe();
  ~MacProbe();
  MacProbe(const MacProbe&) = delete;
  MacProbe& operator=(const MacProbe&) = delete;
  std::int64_t macs() const { return macs_; }
  static void add(std::int64_t macs);

 private:
  std::int64_t macs_ = 0;
  MacProbe* previous_;
};

// A convolution (or the separable pair) followed by BN; ReLU is the caller's.
class ConvBnImpl : public torch::nn::Module {
 public:
  ConvBnImpl(Op op, int in, int out, int kernel, int stride, int groups);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d depthwise_{nullptr};  // only for Op::kSeparable
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(ConvBn);

class BlockImpl : public torch::nn::Module {
 public:
  explicit BlockImpl(const BlockPlan& plan);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  BlockPlan plan_;
  std::vector<ConvBn> layers_;
  std::vector<ConvBn> projections_;  // aligned with plan_.connections; null where none
};
TORCH_MODULE(Block);

class NetworkImpl : public torch::nn::Module {
 public:
  NetworkImpl(const Encoding& encoding, int num_classes);

  // Logits, [N, num_classes] for input [N, 3, H, W].
  torch::Tensor forward(const torch::Tensor& x);
  // Pooled penultimate features, [N, feature_channels()].
  torch::Tensor features(const torch::Tensor& x);

  const Encoding& encoding() const { return encoding_; }
  int num_classes() const { return num_classes_; }
  int feature_channels() const { return plan_.feature_channels; }

  // Stage 0 is the stem, stage i the i-th macro segment.
  int num_stages() const { return static_cast<int>(stages_.size()); }
  torch::nn::Module& stage(int index);

  // Freezes stages [0, k): no gradients, BatchNorm kept in eval mode (also
  // through later train() calls), and run under NoGradGuard so that no
  // activations are kept for backward. k = 0 unfreezes everything.
  // Throws Error{kInvalidArgument} unless 0 <= k <= num_stages().
  void freeze_stages(int k);
  int frozen_stages() const { return frozen_; }

  // A new, freshly initialised classifier for `num_classes`; the body keeps its weights.
  void reset_head(int num_classes);

  void train(bool on = true) override;

 private:
  torch::Tensor body(const torch::Tensor& x);

  Encoding encoding_;
  NetworkPlan plan_;
  int num_classes_;
  int frozen_ = 0;
  std::vector<torch::nn::Sequential> stages_;
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(Network);

// Kaiming-normal (fan_out, ReLU) for convolutions, BN weight 1 and bias 0,
// N(0, 0.01) and bias 0 for linear layers. Applied to `module` recursively.
void initialise(torch::nn::Module& module);

}  // namespace nasoa::zoo
