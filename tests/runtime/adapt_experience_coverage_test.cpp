// regime_outside_experience: which of a base regime's unplanned fields lie
// where the experience has no run.
#include <gtest/gtest.h>

#include <vector>

#include "runtime/adapt/experience_coverage.h"
#include "tests/runtime/adapt_support.h"

namespace nasoa::runtime {
namespace {

// Runs that differ in what plans choose and agree on the rest (the
// defaults): SGD, no flips, crops.
std::vector<ExperienceRecord> runs(int n) {
  std::vector<ExperienceRecord> out;
  for (int i = 0; i < n; ++i) {
    ExperienceRecord r = testing::make_record(i);
    r.regime.optimizer = OptimizerKind::kSgd;
    out.push_back(r);
  }
  return out;
}

TEST(ExperienceCoverageTest, ABaseLikeEveryRunHasNothingToNote) {
  const Regime base;
  EXPECT_TRUE(regime_outside_experience(base, runs(6)).empty());
}

TEST(ExperienceCoverageTest, AFieldEveryRunSharesAndTheBaseDoesNotIsNamedWithBothValuesAndTheCount) {
  Regime base;
  base.horizontal_flip = true;
  const std::vector<std::string> notes = regime_outside_experience(base, runs(6));
  ASSERT_EQ(notes.size(), 1u) << ::testing::PrintToString(notes);
  EXPECT_EQ(notes[0],
            "horizontal_flip is on, but it is off in all 6 runs of the experience plans are predicted from: the "
            "predicted accuracy is for horizontal_flip off");
}

TEST(ExperienceCoverageTest, SeveralFieldsComeInTheRegimesOrder) {
  Regime base;
  base.random_resized_crop = false;
  base.label_smoothing = 0;
  base.optimizer = OptimizerKind::kAdamW;
  const std::vector<std::string> notes = regime_outside_experience(base, runs(3));
  ASSERT_EQ(notes.size(), 3u) << ::testing::PrintToString(notes);
  EXPECT_EQ(notes[0].rfind("optimizer is adamw, but it is sgd in all 3 runs", 0), 0u) << notes[0];
  EXPECT_EQ(notes[1].rfind("label_smoothing is 0, but it is 0.1 in all 3 runs", 0), 0u) << notes[1];
  EXPECT_EQ(notes[2].rfind("random_resized_crop is off, but it is on in all 3 runs", 0), 0u) << notes[2];
}

TEST(ExperienceCoverageTest, AFieldTheRunsDisagreeOnIsNotNoted) {
  std::vector<ExperienceRecord> records = runs(4);
  records[2].regime.horizontal_flip = true;  // the experience shows both
  Regime base;
  base.horizontal_flip = true;
  EXPECT_TRUE(regime_outside_experience(base, records).empty());
  base.horizontal_flip = false;
  EXPECT_TRUE(regime_outside_experience(base, records).empty());
}

TEST(ExperienceCoverageTest, OnlyEvaluatedRunsCountAndWithoutThemThereIsNothingToNote) {
  std::vector<ExperienceRecord> records = runs(3);
  records[0].regime.horizontal_flip = true;
  records[0].best_accuracy = -1;  // never evaluated: the predictor does not learn from it
  Regime base;
  base.horizontal_flip = true;
  const std::vector<std::string> notes = regime_outside_experience(base, records);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("in all 2 runs"), std::string::npos) << notes[0];
  for (ExperienceRecord& r : records) r.best_accuracy = -1;
  EXPECT_TRUE(regime_outside_experience(base, records).empty());
  EXPECT_TRUE(regime_outside_experience(base, {}).empty());
}

TEST(ExperienceCoverageTest, OneRunIsSaidSo) {
  Regime base;
  base.weight_decay = 0.01;
  const std::vector<std::string> notes = regime_outside_experience(base, runs(1));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].rfind("weight_decay is 0.01, but it is 0.0001 in the one run of the experience", 0), 0u)
      << notes[0];
}

}  // namespace
}  // namespace nasoa::runtime
