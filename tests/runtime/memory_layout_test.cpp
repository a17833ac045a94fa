// Memory layouts: a network computes and trains the same in either layout,
// the optimiser's buffers follow its weights, and the trial picks the layout
// whose counted steps were faster.
#include "runtime/train/memory_layout.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tuple>
#include <vector>

#include "nasoa/encoding.h"
#include "nasoa/regime.h"
#include "runtime/train/optimizer.h"
#include "zoo/builder/network.h"
#include "zoo/bundle/weights_file.h"

namespace nasoa::runtime {
namespace {

constexpr MemoryLayout kFirst = MemoryLayout::kChannelsFirst, kLast = MemoryLayout::kChannelsLast;

// Step seconds of a trial: the set-up steps (0 and 1) take `setup_first` and
// `setup_last`; later steps take their layout's base plus a little per step.
std::vector<double> trial_seconds(double setup_first, double setup_last, double first, double last) {
  std::vector<double> seconds;
  for (int i = 0; i < LayoutTrial::kSteps; ++i)
    seconds.push_back(i < 2 ? (i == 0 ? setup_first : setup_last) : (i % 2 == 0 ? first : last) + 0.001 * i);
  return seconds;
}

TEST(LayoutTrial, AlternatesThenSettlesOnTheFasterLayout) {
  LayoutTrial trial;
  EXPECT_FALSE(trial.decided());
  EXPECT_EQ(trial.choice(), kFirst);
  // Set-up steps are slow and not counted; then channels-last is faster.
  const std::vector<double> seconds = trial_seconds(9.0, 9.0, 0.25, 0.20);
  for (int i = 0; i < LayoutTrial::kSteps; ++i) {
    EXPECT_FALSE(trial.decided()) << "step " << i;
    EXPECT_EQ(trial.layout_for(i), i % 2 == 0 ? kFirst : kLast) << "step " << i;
    trial.record(i, seconds[i]);
  }
  EXPECT_TRUE(trial.decided());
  EXPECT_DOUBLE_EQ(trial.fastest(kFirst), 0.252);
  EXPECT_DOUBLE_EQ(trial.fastest(kLast), 0.203);
  EXPECT_EQ(trial.choice(), kLast);
  EXPECT_EQ(trial.layout_for(LayoutTrial::kSteps), kLast);
  EXPECT_EQ(trial.layout_for(1000), kLast);
  trial.record(LayoutTrial::kSteps, 0.001);  // past the trial: ignored
  EXPECT_DOUBLE_EQ(trial.fastest(kFirst), 0.252);
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
  const std::vector<double> seconds = trial_seconds(5.0, 0.05, 0.1, 0.3);
  for (int i = 0; i < LayoutTrial::kSteps; ++i) slow_start.record(i, seconds[i]);
  EXPECT_EQ(slow_start.choice(), kFirst);
}

TEST(LayoutTrial, OneUndisturbedStepOfTheSlowerLayoutDoesNotDecide) {
  // Other load slows most steps of both layouts; channels-last once ran
  // undisturbed, faster than channels-first's slowed steps, but slower than
  // channels-first's undisturbed ones.
  LayoutTrial trial;
  std::vector<double> seconds = trial_seconds(1.0, 1.0, 0.40, 0.40);
  seconds[5] = 0.22;   // channels-last, undisturbed
  seconds[10] = 0.20;  // channels-first, undisturbed
  for (int i = 0; i < LayoutTrial::kSteps; ++i) trial.record(i, seconds[i]);
  EXPECT_EQ(trial.choice(), kFirst);
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
