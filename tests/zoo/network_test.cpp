// The LibTorch network builder: shapes, counts, freezing, head replacement.
#include "zoo/builder/network.h"

#include <gtest/gtest.h>

#include <random>

#include "nasoa/error.h"
#include "zoo/search_space/sampler.h"

namespace nasoa::zoo {
namespace {

std::int64_t built_parameters(NetworkImpl& net) {
  std::int64_t n = 0;
  for (const auto& p : net.parameters()) n += p.numel();
  return n;
}

std::int64_t probed_macs(NetworkImpl& net, int input_size) {
  torch::NoGradGuard no_grad;
  net.eval();
  MacProbe probe;
  net.forward(torch::randn({1, 3, input_size, input_size}));
  return probe.macs();
}

Network build(const std::string& encoding, int classes = 10) {
  return Network(Encoding::parse(encoding), classes);
}

TEST(NetworkTest, EveryOpBuildsAndGivesLogitsAndFeatures) {
  for (int op = 0; op < kNumOps; ++op) {
    // The op in a two-layer block, at a stride-2, width-doubling block too.
    const std::string encoding = "0" + std::string("2") + std::to_string(op) + "-_32_1-2";
    Network net = build(encoding, 7);
    for (int side : {32, 64, 224}) {
      const torch::Tensor x = torch::randn({2, 3, side, side});
      EXPECT_EQ(net->forward(x).sizes(), (std::vector<std::int64_t>{2, 7})) << encoding;
      EXPECT_EQ(net->features(x).sizes(), (std::vector<std::int64_t>{2, 64})) << encoding;
    }
  }
}

TEST(NetworkTest, ConnectionsStridesAndWidthChangesGiveTheRightShapes) {
  const char* encodings[] = {
      "23311-a02c12_32_1-21",        // DESIGN.md's example: add and concat into one node
      "10001-c02_16_1-2",            // concat across the stride: projected source
      "10001-a12_16_1-2-4",          // add across the stride and a 4x widening
      "04022-c01c02_16_2-11-2",      // two concats widen a node, the next layer reads it
      "11111-_16_1-2",               // all 1x1: the stride goes on the last layer
      "64616-a12a13_24_1-21-2",      // separable layers with projected extra adds
      "4-_8_1-1-1-1-1-1",            // more downsamplings than a 32 input has halvings
  };
  for (const char* encoding : encodings) {
    Network net = build(encoding, 5);
    for (int side : {32, 64, 224}) {
      // Two images: training-mode BN needs more than one value per channel.
      const torch::Tensor x = torch::randn({2, 3, side, side});
      EXPECT_EQ(net->forward(x).sizes(), (std::vector<std::int64_t>{2, 5})) << encoding << " " << side;
    }
    EXPECT_EQ(built_parameters(*net), count_cost(net->encoding(), 5, 64).parameters) << encoding;
    EXPECT_EQ(probed_macs(*net, 64), count_cost(net->encoding(), 5, 64).macs) << encoding;
  }
}

TEST(NetworkTest, ReferenceNetworksMatchTheDesignTable) {
  struct Reference {
    const char* encoding;
    std::int64_t parameters;
    std::int64_t macs;
  };
  const Reference references[] = {
      {"2-_32_2-11-112-1121112", 2615320, 229113856},
      {"031-_64_1-1-221-11121", 15235528, 1551151104},
      {"020-_64_11-21-21-21", 11708744, 1880305664},
      {"10001-_64_411-2111-211111-211", 25576264, 4155416576},
  };
  for (const Reference& r : references) {
    Network net = build(r.encoding, 1000);
    EXPECT_EQ(built_parameters(*net), r.parameters) << r.encoding;
    EXPECT_EQ(probed_macs(*net, 224), r.macs) << r.encoding;
  }
}

TEST(NetworkTest, AnalyticCountsEqualBuiltCountsOnSampledEncodings) {
  std::mt19937_64 rng(5);
  SamplerOptions options;
  options.max_channels = 512;  // keeps 220 builds quick on a CPU
  for (int i = 0; i < 220; ++i) {
    const Encoding e = sample_encoding(rng, options);
    Network net(e, 13);
    const NetworkCost cost = count_cost(e, 13, 32);
    ASSERT_EQ(built_parameters(*net), cost.parameters) << e.to_string();
    ASSERT_EQ(probed_macs(*net, 32), cost.macs) << e.to_string();
  }
}

TEST(NetworkTest, InitialisationFollowsTheRecipe) {
  Network net = build("020-_64_11-21", 10);
  for (const auto& item : net->named_parameters()) {
    const std::string& name = item.key();
    const torch::Tensor& p = item.value();
    if (name.find("bn.weight") != std::string::npos) {
      EXPECT_TRUE(torch::all(p == 1).item<bool>()) << name;
    } else if (name.find("bn.bias") != std::string::npos || name == "head.bias") {
      EXPECT_TRUE(torch::all(p == 0).item<bool>()) << name;
    } else if (name == "head.weight") {
      EXPECT_NEAR(p.std().item<double>(), 0.01, 0.002);
    }
  }
  // Kaiming fan_out for a 3x3 conv 64 -> 128: std = sqrt(2 / (128 * 9)).
  const torch::Tensor w = net->named_parameters()["stage2.0.layers0.conv.weight"];
  ASSERT_EQ(w.size(0), 128);
  EXPECT_NEAR(w.std().item<double>(), std::sqrt(2.0 / (128 * 9)), 0.002);
}

TEST(NetworkTest, FrozenStagesDoNotChangeInATrainingStep) {
  Network net = build("020-_16_11-21-21", 4);
  ASSERT_EQ(net->num_stages(), 4);
  net->freeze_stages(2);  // stem and stage 1
  net->train();
  EXPECT_FALSE(net->stage(0).is_training());
  EXPECT_FALSE(net->stage(1).is_training());
  EXPECT_TRUE(net->stage(2).is_training());

  auto snapshot = [&] {
    std::map<std::string, torch::Tensor> s;
    for (const auto& i : net->named_parameters()) s[i.key()] = i.value().detach().clone();
    for (const auto& i : net->named_buffers()) s[i.key()] = i.value().detach().clone();
    return s;
  };
  const auto before = snapshot();
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const torch::Tensor x = torch::randn({8, 3, 32, 32});
  const torch::Tensor y = torch::randint(0, 4, {8});
  for (int step = 0; step < 2; ++step) {
    sgd.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(x), y).backward();
    sgd.step();
  }
  const auto after = snapshot();
  int frozen = 0, trained = 0;
  for (const auto& [name, tensor] : before) {
    const bool is_frozen = name.rfind("stem.", 0) == 0 || name.rfind("stage1.", 0) == 0;
    const bool same = torch::equal(tensor, after.at(name));
    if (is_frozen) {
      ++frozen;
      EXPECT_TRUE(same) << name << " changed although frozen";
    } else if (name.find("num_batches_tracked") == std::string::npos) {
      ++trained;
      EXPECT_FALSE(same) << name << " did not change although trainable";
    }
  }
  EXPECT_GT(frozen, 10);
  EXPECT_GT(trained, 10);
  for (const auto& p : net->stage(1).parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(NetworkTest, FullyFrozenBodyKeepsNoGraph) {
  Network net = build("020-_16_11-21", 3);
  net->freeze_stages(net->num_stages());
  EXPECT_FALSE(net->features(torch::randn({2, 3, 32, 32})).requires_grad());
  EXPECT_TRUE(net->forward(torch::randn({2, 3, 32, 32})).requires_grad());  // the head trains
  net->freeze_stages(0);
  EXPECT_TRUE(net->features(torch::randn({2, 3, 32, 32})).requires_grad());
  EXPECT_THROW(net->freeze_stages(net->num_stages() + 1), Error);
  EXPECT_THROW(net->freeze_stages(-1), Error);
}

TEST(NetworkTest, ResetHeadKeepsTheBody) {
  Network net = build("020-_16_11-21", 10);
  const torch::Tensor body_weight = net->named_parameters()["stage1.0.layers0.conv.weight"].clone();
  net->reset_head(3);
  EXPECT_EQ(net->num_classes(), 3);
  EXPECT_EQ(net->forward(torch::randn({2, 3, 32, 32})).size(1), 3);
  EXPECT_TRUE(torch::equal(body_weight, net->named_parameters()["stage1.0.layers0.conv.weight"]));
  EXPECT_EQ(net->named_parameters()["head.weight"].sizes(), (std::vector<std::int64_t>{3, 32}));
  EXPECT_THROW(net->reset_head(0), Error);
}

}  // namespace
}  // namespace nasoa::zoo
