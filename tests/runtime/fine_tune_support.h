// tests/runtime/fine_tune_support.h: the small real task and regime that the
// fine-tuning tests (CPU and CUDA) share.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "nasoa/encoding.h"
#include "runtime/data/batch_loader.h"
#include "runtime/train/fine_tuner.h"

namespace nasoa::runtime::testing {

inline const std::string kFashion = "/usr/share/datasets/fashion-mnist/";

// Whether Debian's dataset-fashion-mnist is installed (scripts/setup.sh).
inline bool have_fashion_mnist() { return std::filesystem::exists(kFashion + "t10k-images-idx3-ubyte.gz"); }

// The first `per_class` Fashion-MNIST test images of classes 0, 1 and 7
// (T-shirt, trouser, sneaker), as an in-memory IDX task.
inline TaskSource fashion_subset(int per_class) {
  TaskSource all = list_idx(kFashion + "t10k-images-idx3-ubyte.gz", kFashion + "t10k-labels-idx1-ubyte.gz");
  TaskSource subset;
  subset.origin = all.origin;
  subset.idx_images = all.idx_images;
  subset.class_names = {"t-shirt", "trouser", "sneaker"};
  const int keep[] = {0, 1, 7};
  std::vector<int> taken(3, 0);
  for (const SampleRef& s : all.samples)
    for (int c = 0; c < 3; ++c)
      if (s.label == keep[c] && taken[std::size_t(c)] < per_class) {
        subset.samples.push_back({s.path, c, s.idx});
        ++taken[std::size_t(c)];
      }
  return subset;
}

// A freshly initialised small network fine-tuned on `store` for `epochs`
// with a fixed regime and split, on the CPU unless `use_cuda`.
inline FineTuneJob small_job(const ImageStore& store, int epochs, bool use_cuda = false) {
  torch::manual_seed(1);
  FineTuneJob j;
  j.network = zoo::Network(Encoding::parse("020-_16_11-21"), 3);
  j.store = &store;
  j.regime.model = "small";
  j.regime.epochs = epochs;
  j.regime.batch_size = 32;
  j.regime.learning_rate = 0.05;
  j.regime.seed = 3;
  std::vector<int> labels;
  for (std::size_t i = 0; i < store.size(); ++i) labels.push_back(store.label(i));
  j.split = stratified_split(labels, 0.25, 3);
  j.mean = {0.5f, 0.5f, 0.5f};
  j.std = {0.25f, 0.25f, 0.25f};
  j.fingerprint = "test";
  j.use_cuda = use_cuda;
  j.loader_workers = 2;
  return j;
}

// Runs `job` (with epochs enough to outlast it) under a 4 s budget of which
// 0.5 s count as already spent, and checks what the guard promises: an early
// stop for the time budget, within budget x 1.05 + 2 s, with trained and
// evaluated weights handed back. The schedule is not fitted to the budget
// (schedule_fit.h), so that the guard alone is what stops the run.
inline void expect_stops_within_the_time_budget(FineTuneJob& job) {
  job.fit_schedule = false;
  const auto start = std::chrono::steady_clock::now();
  const double budget = 4.0;
  const FineTuneOutcome out = fine_tune(job, Limits(budget, 0.5));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(out.stopped_early);
  EXPECT_EQ(out.stop_reason, "time budget");
  EXPECT_LE(took + 0.5, budget * 1.05 + 2.0);
  EXPECT_GE(took + 0.5, 0.5 * budget) << "the guard stopped long before the budget was used";
  EXPECT_GT(out.steps, 0);
  EXPECT_GE(out.validation_accuracy, 0.0) << "the handed-back weights were evaluated";
}

}  // namespace nasoa::runtime::testing
