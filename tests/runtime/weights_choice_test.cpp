// Which evaluated weights a run hands back: each rule's choice, made one
// evaluation at a time with one set of weights kept, is its definition
// applied to the whole run.
#include "runtime/train/weights_choice.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace nasoa::runtime {
namespace {

// The epoch (1-based) a rule keeps after evaluations of `accuracies`, one
// at a time, as the fine-tuner decides it.
int kept_online(WeightsChoice choice, const std::vector<double>& accuracies, std::size_t images) {
  int kept = 0;
  double kept_accuracy = -1, highest = -1;
  for (std::size_t i = 0; i < accuracies.size(); ++i) {
    highest = std::max(highest, accuracies[i]);
    if (replaces_kept(choice, accuracies[i], kept_accuracy, highest, images)) {
      kept = int(i) + 1;
      kept_accuracy = accuracies[i];
    }
  }
  return kept;
}

// The rules as stated, over the whole run.
int kept_by_definition(WeightsChoice choice, const std::vector<double>& accuracies, std::size_t images) {
  const double highest = *std::max_element(accuracies.begin(), accuracies.end());
  switch (choice) {
    case WeightsChoice::kBestValidated:
      return int(std::find(accuracies.begin(), accuracies.end(), highest) - accuracies.begin()) + 1;
    case WeightsChoice::kLatestWithinNoise:
      for (std::size_t i = accuracies.size(); i-- > 0;)
        if (accuracies[i] >= highest - std::sqrt(highest * (1 - highest) / double(images)) - 1e-12) return int(i) + 1;
      return 0;
    case WeightsChoice::kLast: return int(accuracies.size());
  }
  return 0;
}

TEST(WeightsChoiceTest, TheStandardErrorIsTheBinomialOne) {
  EXPECT_NEAR(accuracy_standard_error(0.9, 100), 0.03, 1e-12);
  EXPECT_NEAR(accuracy_standard_error(0.5, 25), 0.1, 1e-12);
  EXPECT_EQ(accuracy_standard_error(1.0, 100), 0.0) << "a perfect score leaves no room";
  EXPECT_EQ(accuracy_standard_error(0.5, 0), 0.0) << "no images, no error to speak of";
}

TEST(WeightsChoiceTest, EachRuleKeepsTheEpochItNames) {
  // On 100 images: 0.80's standard error is 0.04, so 0.78 is within its
  // noise and 0.60 is not.
  const std::vector<double> run = {0.50, 0.80, 0.78, 0.60};
  EXPECT_EQ(kept_online(WeightsChoice::kBestValidated, run, 100), 2);
  EXPECT_EQ(kept_online(WeightsChoice::kLatestWithinNoise, run, 100), 3);
  EXPECT_EQ(kept_online(WeightsChoice::kLast, run, 100), 4);
  // Of equal accuracies, best-validated keeps the earliest.
  EXPECT_EQ(kept_online(WeightsChoice::kBestValidated, {0.7, 0.9, 0.9, 0.9}, 100), 2);
  EXPECT_EQ(kept_online(WeightsChoice::kLatestWithinNoise, {0.7, 0.9, 0.9, 0.9}, 100), 4);
  // A split too small to tell epochs apart: the later one is kept.
  EXPECT_EQ(kept_online(WeightsChoice::kLatestWithinNoise, {0.9, 0.8}, 5), 2);
  EXPECT_EQ(kept_online(WeightsChoice::kLatestWithinNoise, {0.9, 0.8}, 1000), 1);
}

TEST(WeightsChoiceTest, KeptOneEvaluationAtATimeTheChoiceIsTheWholeRunsChoice) {
  std::mt19937 rng(5);
  for (const std::size_t images : {std::size_t(7), std::size_t(60), std::size_t(400)}) {
    std::uniform_int_distribution<std::size_t> right(0, images);
    std::uniform_int_distribution<int> length(1, 40);
    for (int run = 0; run < 500; ++run) {
      std::vector<double> accuracies(std::size_t(length(rng)));
      // Whole images right, as a real split's accuracies are.
      for (double& a : accuracies) a = double(right(rng)) / double(images);
      for (const WeightsChoice choice :
           {WeightsChoice::kBestValidated, WeightsChoice::kLatestWithinNoise, WeightsChoice::kLast})
        ASSERT_EQ(kept_online(choice, accuracies, images), kept_by_definition(choice, accuracies, images))
            << to_string(choice) << " on " << images << " images, run " << run;
    }
  }
}

TEST(WeightsChoiceTest, AnythingEvaluatedReplacesNothingKeptAndNothingEvaluatedReplacesNothing) {
  for (const WeightsChoice choice :
       {WeightsChoice::kBestValidated, WeightsChoice::kLatestWithinNoise, WeightsChoice::kLast}) {
    EXPECT_TRUE(replaces_kept(choice, 0.0, -1, 0.0, 50)) << to_string(choice);
    // An empty validation split evaluates to -1: no weights are kept for it.
    EXPECT_FALSE(replaces_kept(choice, -1, -1, -1, 0)) << to_string(choice);
    EXPECT_FALSE(replaces_kept(choice, -1, 0.5, 0.5, 50)) << to_string(choice);
  }
}

TEST(WeightsChoiceTest, NamesAreTheOnesTheCommandLineTakes) {
  EXPECT_STREQ(to_string(WeightsChoice::kBestValidated), "best-validated");
  EXPECT_STREQ(to_string(WeightsChoice::kLatestWithinNoise), "latest-within-noise");
  EXPECT_STREQ(to_string(WeightsChoice::kLast), "last");
  for (const WeightsChoice choice :
       {WeightsChoice::kBestValidated, WeightsChoice::kLatestWithinNoise, WeightsChoice::kLast})
    EXPECT_EQ(parse_weights_choice(to_string(choice)), choice);
  EXPECT_FALSE(parse_weights_choice("best").has_value());
}

}  // namespace
}  // namespace nasoa::runtime
