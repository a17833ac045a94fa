// Acceptance: a starter model from the shipped zoo/default, fine-tuned on a
// small task it has never seen (Fashion-MNIST test images of classes 5-9,
// disjoint from its upstream classes 0-4), beats chance clearly within a
// short budget. This is the runtime's promise at its smallest scale.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "runtime/data/image_store.h"
#include "runtime/data/split.h"
#include "runtime/data/task_source.h"
#include "runtime/train/fine_tuner.h"
#include "zoo/bundle/bundle.h"

namespace nasoa::runtime {
namespace {

const std::string kFashion = "/usr/share/datasets/fashion-mnist/";
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

TEST(StarterZooTest, ShipsVerifiedPretrainedModelsWithTheirUpstreamRecord) {
  const zoo::Manifest m = zoo::open_bundle(kZoo);
  ASSERT_GE(m.models.size(), 2u);
  for (const ModelInfo& model : m.models) {
    EXPECT_EQ(model.input_size, 32) << model.name;
    EXPECT_EQ(model.labels, (std::vector<std::string>{"t-shirt", "trouser", "pullover", "dress", "coat"}));
    ASSERT_TRUE(model.upstream_accuracy.has_value()) << model.name;
    EXPECT_GT(*model.upstream_accuracy, 0.7) << model.name << ": chance is 0.2";
    EXPECT_GT(model.std[0], 0.0f);
  }
  EXPECT_EQ(m.provenance.data_card, "docs/data.md#starter-upstream");
  EXPECT_EQ(m.provenance.command_line.rfind("nasoa-pretrain ", 0), 0u)
      << "the program by name alone: a shipped manifest must not carry a build machine's paths";
}

TEST(StarterZooTest, FineTunesTheBestStarterModelOnTheDefaultTaskAboveChance) {
  if (!std::filesystem::exists(kFashion + "t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  const zoo::Manifest m = zoo::open_bundle(kZoo);
  const ModelInfo& model = *std::max_element(m.models.begin(), m.models.end(), [](const ModelInfo& a, const ModelInfo& b) {
    return a.upstream_accuracy.value_or(0) < b.upstream_accuracy.value_or(0);
  });
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
  job.regime.learning_rate = 0.03;  // as scripts/quickstart.sh adapts it
  job.regime.batch_size = 32;
  job.regime.seed = 5;
  std::vector<int> labels;
  for (std::size_t i = 0; i < store.size(); ++i) labels.push_back(store.label(i));
  job.split = stratified_split(labels, 0.25, 5);
  job.mean = model.mean;
  job.std = model.std;
  job.fingerprint = "starter-acceptance";
  job.use_cuda = false;
  job.loader_workers = 1;

  const FineTuneOutcome out = fine_tune(job, Limits(60, 0));
  EXPECT_GT(out.steps, 0);
  EXPECT_GT(out.validation_accuracy, 0.5) << "5 classes: chance is 0.2";
}

}  // namespace
}  // namespace nasoa::runtime
