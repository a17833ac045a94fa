// Acceptance of the shipped zoo/default, the searched zoo: what it holds
// (searched models pretrained on the upstream corpus, with their record and
// provenance, the shipped experience and predictor), and that its fastest
// model, fine-tuned on a small task it has never seen (Fashion-MNIST test
// images of classes 5-9; the upstream corpus holds only training images of
// classes 0-4), beats chance clearly within a short budget.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "nasoa/task.h"
#include "runtime/data/image_store.h"
#include "runtime/data/split.h"
#include "runtime/data/task_source.h"
#include "runtime/train/fine_tuner.h"
#include "tests/runtime/fine_tune_support.h"
#include "zoo/bundle/bundle.h"

namespace nasoa::runtime {
namespace {

using testing::kFashion;
const std::string kZoo = std::string(NASOA_SOURCE_DIR) + "/zoo/default";

// The first `per_class` test-split images of each of classes 5-9, in memory.
TaskSource default_task_subset(int per_class) {
  TaskSource all = select_classes(
      list_idx(kFashion + "t10k-images-idx3-ubyte.gz", kFashion + "t10k-labels-idx1-ubyte.gz"),
      {"5", "6", "7", "8", "9"}, {"sandal", "shirt", "sneaker", "bag", "ankle-boot"});
  TaskSource subset = all;
  subset.samples.clear();
  std::vector<int> taken(5, 0);
  for (const SampleRef& s : all.samples)
    if (taken[std::size_t(s.label)]++ < per_class) subset.samples.push_back(s);
  return subset;
}

TEST(DefaultZooTest, ShipsSearchedPretrainedModelsWithRecordExperienceAndPredictor) {
  const zoo::Manifest m = zoo::open_bundle(kZoo);
  EXPECT_FALSE(zoo::holds_unknown_fields(kZoo + "/MANIFEST")) << "this build could not ship new experience into it";
  ASSERT_GE(m.models.size(), 6u) << "the search issue asks for at least 6 models from the front";
  std::int64_t fewest = m.models.front().macs, most = fewest;
  for (const ModelInfo& model : m.models) {
    EXPECT_EQ(model.input_size, 32) << model.name;
    EXPECT_EQ(model.input_size, nasoa::TaskOptions{}.image_side)
        << model.name << ": a task read with the default options must fit the shipped zoo";
    EXPECT_EQ(model.name.rfind("nasoa-", 0), 0u) << model.name;
    ASSERT_GT(model.labels.size(), 50u) << model.name;
    EXPECT_NE(std::find(model.labels.begin(), model.labels.end(), "t-shirt"), model.labels.end());
    ASSERT_TRUE(model.upstream_accuracy.has_value()) << model.name;
    EXPECT_GT(*model.upstream_accuracy, 0.2) << model.name << ": chance is about 0.01";
    EXPECT_GT(model.std[0], 0.0f);
    fewest = std::min(fewest, model.macs), most = std::max(most, model.macs);
  }
  EXPECT_GT(most, 2 * fewest) << "the models span the front, not one corner of it";
  EXPECT_EQ(m.provenance.data_card.rfind("docs/corpora.md", 0), 0u) << m.provenance.data_card;
  EXPECT_EQ(m.provenance.command_line.rfind("nasoa-pretrain ", 0), 0u)
      << "the program by name alone: a shipped manifest must not carry a build machine's paths";
  EXPECT_NE(m.provenance.command_line.find("nasoa-gather "), std::string::npos);
  EXPECT_TRUE(m.predictor.has_value()) << "the predictor ships in the bundle";
  EXPECT_TRUE(m.experience.has_value()) << "the experience it was fitted on ships too";
}

// encoding -> step ms, from one of the search's committed CSV files.
std::map<std::string, double> step_ms_by_encoding(const std::string& file) {
  std::ifstream in(std::string(NASOA_SOURCE_DIR) + "/zoo/search/" + file);
  std::map<std::string, double> out;
  std::string line;
  std::getline(in, line);  // header: name,encoding,step_ms,...
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name, encoding, step;
    std::getline(fields, name, ',');
    std::getline(fields, encoding, ',');
    std::getline(fields, step, ',');
    out[encoding] = std::stod(step);
  }
  return out;
}

TEST(DefaultZooTest, ModelsAreTheSearchsPicksFromItsFrontSpanningFiveTimesInStepTime) {
  const std::map<std::string, double> front = step_ms_by_encoding("front.csv"),
                                      selected = step_ms_by_encoding("selected.csv");
  const zoo::Manifest m = zoo::open_bundle(kZoo);
  ASSERT_EQ(selected.size(), m.models.size());
  double fastest = 1e30, slowest = 0;
  for (const ModelInfo& model : m.models) {
    ASSERT_TRUE(selected.count(model.encoding)) << model.name << " " << model.encoding << " is not in selected.csv";
    EXPECT_TRUE(front.count(model.encoding)) << model.name << " " << model.encoding << " is not on the front";
    fastest = std::min(fastest, selected.at(model.encoding));
    slowest = std::max(slowest, selected.at(model.encoding));
  }
  EXPECT_GE(slowest, 5 * fastest) << "the search issue asks for a zoo spanning at least 5x in training step time";
}

TEST(DefaultZooTest, BaselinesBundleHoldsTheHandDesignedFamilies) {
  const zoo::Manifest m = zoo::open_bundle(std::string(NASOA_SOURCE_DIR) + "/zoo/baselines");
  std::vector<std::string> names;
  for (const ModelInfo& model : m.models) {
    names.push_back(model.name);
    ASSERT_TRUE(model.upstream_accuracy.has_value()) << model.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"resnet18-like", "resnet34-like", "resnet50-like", "mobilenet-like",
                                             "regnet-like"}));
}

TEST(DefaultZooTest, FineTunesTheFastestModelOnTheDefaultTaskAboveChance) {
  if (!testing::have_fashion_mnist())
    GTEST_SKIP() << "package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  const zoo::Manifest m = zoo::open_bundle(kZoo);
  const ModelInfo& model = *std::min_element(m.models.begin(), m.models.end(),
                                              [](const ModelInfo& a, const ModelInfo& b) { return a.macs < b.macs; });
  IngestOptions ingest;
  ingest.side = model.input_size;
  const ImageStore store(default_task_subset(60), ingest);

  torch::set_num_threads(1);  // a loader thread runs beside it; ctest runs another test too
  FineTuneJob job;
  job.network = zoo::load_network(kZoo, model);
  torch::manual_seed(5);
  job.network->reset_head(5);
  job.store = &store;
  job.regime.model = model.name;
  job.regime.epochs = 15;
  job.regime.learning_rate = 0.03;
  job.regime.batch_size = 32;
  job.regime.seed = 5;
  std::vector<int> labels;
  for (std::size_t i = 0; i < store.size(); ++i) labels.push_back(store.label(i));
  job.split = stratified_split(labels, 0.25, 5);
  job.mean = model.mean;
  job.std = model.std;
  job.fingerprint = "default-zoo-acceptance";
  job.use_cuda = false;
  job.loader_workers = 1;

  // Bound by its epochs, not by time (they take a few seconds here), so that
  // a slower machine reaches the same accuracy rather than fewer epochs.
  const FineTuneOutcome out = fine_tune(job, Limits(3600, 0));
  EXPECT_EQ(out.stop_reason, "completed");
  EXPECT_GT(out.steps, 0);
  EXPECT_GT(out.validation_accuracy, 0.5) << "5 classes: chance is 0.2";
}

}  // namespace
}  // namespace nasoa::runtime
