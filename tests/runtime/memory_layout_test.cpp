// Memory layouts: a network computes and trains the same in either layout,
// the optimiser's buffers follow its weights, and the trial picks the layout
// whose counted steps were faster.
#include "runtime/train/memory_layout.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tuple>

#include "nasoa/encoding.h"
#include "nasoa/regime.h"
#include "runtime/train/optimizer.h"
#include "zoo/builder/network.h"
#include "zoo/bundle/weights_file.h"

namespace nasoa::runtime {
namespace {

constexpr MemoryLayout kFirst = MemoryLayout::kChannelsFirst, kLast = MemoryLayout::kChannelsLast;

TEST(LayoutTrial, AlternatesThenSettlesOnTheFasterLayout) {
  LayoutTrial trial;
  EXPECT_FALSE(trial.decided());
  EXPECT_EQ(trial.choice(), kFirst);
  // Set-up steps (0 and 1) are slow and not counted; then channels-last is faster.
  const double seconds[] = {9.0, 9.0, 0.30, 0.20, 0.25, 0.22};
  for (int i = 0; i < LayoutTrial::kSteps; ++i) {
    EXPECT_EQ(trial.layout_for(i), i % 2 == 0 ? kFirst : kLast) << "step " << i;
    trial.record(i, seconds[i]);
  }
  EXPECT_TRUE(trial.decided());
  EXPECT_DOUBLE_EQ(trial.fastest(kFirst), 0.25);
  EXPECT_DOUBLE_EQ(trial.fastest(kLast), 0.20);
  EXPECT_EQ(trial.choice(), kLast);
  EXPECT_EQ(trial.layout_for(6), kLast);
  EXPECT_EQ(trial.layout_for(1000), kLast);
  trial.record(6, 0.001);  // past the trial: ignored
  EXPECT_DOUBLE_EQ(trial.fastest(kFirst), 0.25);
}

TEST(LayoutTrial, KeepsChannelsFirstWhenItIsFasterOrTies) {
  LayoutTrial faster, tie;
  for (int i = 0; i < LayoutTrial::kSteps; ++i) {
    faster.record(i, i % 2 == 0 ? 0.1 : 0.2);
    tie.record(i, 0.1);
  }
  EXPECT_EQ(faster.choice(), kFirst);
  EXPECT_EQ(tie.choice(), kFirst);
  // The set-up steps do not decide: a slow first channels-first step is not held against it.
  LayoutTrial slow_start;
  const double seconds[] = {5.0, 0.3, 0.1, 0.3, 0.1, 0.3};
  for (int i = 0; i < LayoutTrial::kSteps; ++i) slow_start.record(i, seconds[i]);
  EXPECT_EQ(slow_start.choice(), kFirst);
}

TEST(MemoryLayout, NamesRoundTripAndUnknownNamesAreRefused) {
  for (const MemoryLayout l : {kFirst, kLast}) EXPECT_EQ(parse_memory_layout(to_string(l)), l);
  EXPECT_FALSE(parse_memory_layout("nhwc").has_value());
  EXPECT_FALSE(parse_memory_layout("").has_value());
}

zoo::Network network() {
  torch::manual_seed(4);
  return zoo::Network(Encoding::parse("020-_16_11-21"), 5);
}

TEST(MemoryLayout, TheNetworkComputesTheSameInEitherLayout) {
  zoo::Network net = network();
  net->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor images = torch::randn({4, 3, 32, 32});
  const torch::Tensor first = net->forward(images);
  set_memory_layout(*net, kLast);
  int converted = 0;
  for (const torch::Tensor& p : net->parameters())
    if (p.dim() == 4) {
      EXPECT_TRUE(p.is_contiguous(torch::MemoryFormat::ChannelsLast));
      converted += p.size(2) > 1 ? 1 : 0;  // 1x1 kernels are both layouts at once
    }
  EXPECT_GT(converted, 0);
  const torch::Tensor batch = in_memory_layout(images, kLast);
  EXPECT_TRUE(batch.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::allclose(net->forward(batch), first, 1e-4, 1e-5));
  set_memory_layout(*net, kFirst);
  for (const torch::Tensor& p : net->parameters()) EXPECT_TRUE(p.is_contiguous());
  EXPECT_TRUE(torch::allclose(net->forward(images), first, 1e-4, 1e-5));
}

// Three SGD steps on the same batches: one network stays channels-first, the
// other switches to channels-last after the first step (as a layout trial
// does, its optimiser buffers following). The weights end up the same.
TEST(MemoryLayout, TrainingStepsAgreeAcrossASwitchOfLayout) {
  zoo::Network a = network(), b = network();
  a->train();
  b->train();
  Regime regime;
  regime.model = "m";
  Optimizer opt_a(*a, regime), opt_b(*b, regime);
  torch::manual_seed(9);
  const torch::Tensor images = torch::randn({8, 3, 32, 32});
  const torch::Tensor labels = torch::randint(0, 5, {8}, torch::kLong);
  MemoryLayout b_layout = kFirst;
  for (int step = 0; step < 3; ++step) {
    if (step == 1) {
      set_memory_layout(*b, kLast);
      opt_b.set_memory_layout(kLast);
      b_layout = kLast;
    }
    for (auto [net, opt, layout] : {std::tuple{&a, &opt_a, kFirst}, std::tuple{&b, &opt_b, b_layout}}) {
      opt->zero_grad();
      const torch::Tensor loss = torch::nn::functional::cross_entropy((*net)->forward(in_memory_layout(images, layout)), labels);
      loss.backward();
      opt->step(0.05);
    }
  }
  const zoo::NamedTensors wa = zoo::module_state(*a), wb = zoo::module_state(*b);
  ASSERT_EQ(wa.size(), wb.size());
  for (std::size_t i = 0; i < wa.size(); ++i)
    EXPECT_TRUE(torch::allclose(wa[i].second, wb[i].second, 1e-3, 1e-5)) << wa[i].first;
  // The checkpointed optimiser state is written in the default layout.
  for (const auto& [name, tensor] : opt_b.state()) EXPECT_TRUE(tensor.is_contiguous()) << name;
}

}  // namespace
}  // namespace nasoa::runtime
