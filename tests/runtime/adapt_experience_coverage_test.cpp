// The experience's summary (summarize_experience), and what it says of a
// plan: which of a base regime's unplanned fields lie where the experience
// has no run (regime_outside_experience), which batch sizes it has seen
// (batch_sizes_with_evidence), how many epochs it ran (epochs_with_evidence).
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "runtime/adapt/experience_coverage.h"
#include "tests/runtime/adapt_support.h"

namespace nasoa::runtime {
namespace {

// Runs that differ in what plans choose (but batch 32) and agree on the
// rest (the defaults): SGD, no flips, crops.
std::vector<ExperienceRecord> runs(int n) {
  std::vector<ExperienceRecord> out;
  for (int i = 0; i < n; ++i) {
    ExperienceRecord r = testing::make_record(i);
    r.regime.optimizer = OptimizerKind::kSgd;
    r.regime.batch_size = 32;
    out.push_back(r);
  }
  return out;
}

TEST(ExperienceCoverageTest, ABaseLikeEveryRunHasNothingToNote) {
  const Regime base;
  EXPECT_TRUE(regime_outside_experience(base, summarize_experience(runs(6))).empty());
}

TEST(ExperienceCoverageTest, AFieldEveryRunSharesAndTheBaseDoesNotIsNamedWithBothValuesAndTheCount) {
  Regime base;
  base.horizontal_flip = true;
  const std::vector<std::string> notes = regime_outside_experience(base, summarize_experience(runs(6)));
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
  const std::vector<std::string> notes = regime_outside_experience(base, summarize_experience(runs(3)));
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
  EXPECT_TRUE(regime_outside_experience(base, summarize_experience(records)).empty());
  base.horizontal_flip = false;
  EXPECT_TRUE(regime_outside_experience(base, summarize_experience(records)).empty());
}

TEST(ExperienceCoverageTest, OnlyEvaluatedRunsCountAndWithoutThemThereIsNothingToNote) {
  std::vector<ExperienceRecord> records = runs(3);
  records[0].regime.horizontal_flip = true;
  records[0].best_accuracy = -1;  // never evaluated: the predictor does not learn from it
  Regime base;
  base.horizontal_flip = true;
  const std::vector<std::string> notes = regime_outside_experience(base, summarize_experience(records));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("in all 2 runs"), std::string::npos) << notes[0];
  for (ExperienceRecord& r : records) r.best_accuracy = -1;
  EXPECT_TRUE(regime_outside_experience(base, summarize_experience(records)).empty());
  EXPECT_TRUE(regime_outside_experience(base, summarize_experience({})).empty());
}

TEST(ExperienceCoverageTest, OneRunIsSaidSo) {
  Regime base;
  base.weight_decay = 0.01;
  const std::vector<std::string> notes = regime_outside_experience(base, summarize_experience(runs(1)));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].rfind("weight_decay is 0.01, but it is 0.0001 in the one run of the experience", 0), 0u)
      << notes[0];
}

TEST(ExperienceCoverageTest, ValuesAreComparedExactlyAndShownApart) {
  Regime base;
  base.momentum = 0.9 + 1e-12;  // "0.9" to printf's %g
  const std::vector<std::string> notes = regime_outside_experience(base, summarize_experience(runs(2)));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].rfind("momentum is 0.900000000001, but it is 0.9 in all 2 runs", 0), 0u) << notes[0];
}

TEST(ExperienceCoverageTest, TheSummaryCountsRecordsAndListsTheEvaluatedRunsBatchSizes) {
  std::vector<ExperienceRecord> records = runs(5);
  records[0].regime.batch_size = 64;
  records[1].regime.batch_size = 16;
  records[2].regime.batch_size = 128;
  records[2].best_accuracy = -1;  // never evaluated: not seen
  records[3].regime.weight_decay = 0.01;
  const ExperienceSummary s = summarize_experience(records);
  EXPECT_EQ(s.record_count, 5u);
  EXPECT_EQ(s.evaluated_count, 4u);
  EXPECT_EQ(s.batch_sizes, (std::vector<int>{16, 32, 64}));
  EXPECT_EQ(s.shared_fields, (std::vector<std::string>{"optimizer", "momentum", "schedule", "warmup_epochs",
                                                        "label_smoothing", "random_resized_crop", "horizontal_flip"}));
  EXPECT_EQ(s.shared_regime.optimizer, OptimizerKind::kSgd);
  EXPECT_FALSE(s.shared_regime.horizontal_flip);

  const ExperienceSummary none = summarize_experience({});
  EXPECT_EQ(none.record_count, 0u);
  EXPECT_TRUE(none.batch_sizes.empty());
  EXPECT_TRUE(none.shared_fields.empty());
  EXPECT_NE(s, none);
  EXPECT_EQ(s, summarize_experience(records));
}

TEST(ExperienceCoverageTest, BatchSizesWithEvidenceAreTheProfiledOnesTheExperienceHasSeen) {
  std::vector<ExperienceRecord> records = runs(3);
  records[1].regime.batch_size = 64;
  const ExperienceSummary s = summarize_experience(records);  // 32 and 64
  std::string note;
  EXPECT_EQ(batch_sizes_with_evidence(s, {64, 16, 32}, &note), (std::vector<int>{32, 64}));
  EXPECT_TRUE(note.empty()) << note;
  EXPECT_TRUE(batch_sizes_with_evidence(s, {8, 16}, &note).empty());
  EXPECT_EQ(note,
            "the device profile measured none of the batch sizes the predictor has seen (32, 64): planned over the "
            "profile's (8, 16), on no evidence of what they do");
}

TEST(ExperienceCoverageTest, PlansGoPast32EpochsOnlyAsFarAsTheExperienceRan) {
  std::vector<ExperienceRecord> records = runs(3);
  records[0].regime.epochs = 1;
  records[1].regime.epochs = 8;
  records[2].regime.epochs = 256;
  records[2].best_accuracy = -1;  // never evaluated: no evidence
  const std::vector<int> grid{1, 8, 32, 48, 64, 96, 128};
  ExperienceSummary s = summarize_experience(records);
  EXPECT_EQ(s.longest_epochs, 8);
  EXPECT_EQ(epochs_with_evidence(s, grid), (std::vector<int>{1, 8, 32})) << "the grid before longer runs";

  records[1].regime.epochs = 64;
  s = summarize_experience(records);
  EXPECT_EQ(s.longest_epochs, 64);
  EXPECT_EQ(epochs_with_evidence(s, grid), (std::vector<int>{1, 8, 32, 48, 64}));
  ExperienceSummary shorter = s;
  shorter.longest_epochs = 8;
  EXPECT_NE(s, shorter) << "the longest run is part of the summary";

  EXPECT_EQ(summarize_experience({}).longest_epochs, 0);
  EXPECT_EQ(epochs_with_evidence(summarize_experience({}), {128, 16, 32}), (std::vector<int>{16, 32}))
      << "the grid's order is kept";

  // A longest run between two steps of the grid is planned itself.
  records[1].regime.epochs = 40;
  s = summarize_experience(records);
  EXPECT_EQ(epochs_with_evidence(s, grid), (std::vector<int>{1, 8, 32, 40}));
  EXPECT_EQ(epochs_with_evidence(s, {1, 8, 32}), (std::vector<int>{1, 8, 32})) << "nothing past the grid's end";
}

TEST(ExperienceCoverageTest, APlanSaysWhetherItsCapIsALongestRunOrTheFloor) {
  std::vector<ExperienceRecord> records = runs(2);
  records[0].regime.epochs = 128;  // model-0
  records[1].regime.epochs = 8;    // model-1
  const ExperienceSummary s = summarize_experience(records);
  EXPECT_EQ(epoch_cap_reason(s, 128), "the longest run of the predictor's experience");
  EXPECT_EQ(epoch_cap_reason(s, 128, "model-0"), "the longest run of model-0 in the predictor's experience");
  EXPECT_EQ(epoch_cap_reason(s, 32, "model-1"), "the most epochs planned without evidence of longer runs of model-1")
      << "its runs stop at 8: 32 is the floor every model plans";
  EXPECT_EQ(epoch_cap_reason(s, 32, "model-9"), "the most epochs planned without evidence of longer runs of model-9");
  records[0].regime.epochs = 4;
  EXPECT_EQ(epoch_cap_reason(summarize_experience(records), 32),
            "the most epochs planned without evidence of longer runs");
  EXPECT_EQ(epoch_cap_reason(summarize_experience({}), 32), "the most epochs planned without evidence of longer runs")
      << "a summary that keeps no longest run";
}

TEST(ExperienceCoverageTest, EachModelPlansNoFurtherThanItsOwnRuns) {
  // model-0 ran 512 epochs, model-1 64, model-2 8 (its 256 never
  // evaluated); model-3 is not in the experience at all.
  std::vector<ExperienceRecord> records = runs(3);
  records[0].regime.epochs = 512;
  records[1].regime.epochs = 64;
  records[2].regime.epochs = 8;
  ExperienceRecord unevaluated = records[2];
  unevaluated.regime.epochs = 256;
  unevaluated.best_accuracy = -1;
  records.push_back(unevaluated);
  const ExperienceSummary s = summarize_experience(records);
  EXPECT_EQ(s.longest_epochs, 512);
  EXPECT_EQ(s.longest_epochs_by_model, (std::map<std::string, int>{{"model-0", 512}, {"model-1", 64}, {"model-2", 8}}));

  const std::vector<int> grid{1, 8, 32, 64, 128, 256, 512};
  EXPECT_EQ(model_epoch_caps(s, {"model-0", "model-1", "model-2", "model-3"}, grid),
            (std::map<std::string, int>{{"model-1", 64}, {"model-2", 32}, {"model-3", 32}}))
      << "the model that ran longest keeps the whole grid; one that ran 8 epochs still plans the 32 every model "
         "planned before longer runs; one without runs, the same";
  // The grid's own end binds before a model's runs do.
  EXPECT_EQ(model_epoch_caps(s, {"model-0", "model-1"}, {1, 8, 32, 64}), (std::map<std::string, int>{}));
  EXPECT_EQ(model_epoch_caps(s, {"model-0", "model-1"}, {1, 8, 32, 48}), (std::map<std::string, int>{}));

  ExperienceSummary older = s;  // saved before the per-model figures were kept
  older.longest_epochs_by_model.clear();
  EXPECT_TRUE(model_epoch_caps(older, {"model-1", "model-3"}, grid).empty()) << "every model plans as the whole";
  EXPECT_NE(s, older) << "the per-model figures are part of the summary";
  EXPECT_TRUE(model_epoch_caps(summarize_experience({}), {"model-1"}, grid).empty());
}

TEST(ExperienceCoverageTest, EachFrozenCountPlansNoFurtherThanItsOwnRuns) {
  // model-0 ran 512 epochs with nothing frozen, 16 with one stage frozen and
  // 64 with two; model-1 ran 64 with nothing frozen.
  std::vector<ExperienceRecord> records = runs(2);
  records[0].regime.epochs = 512;
  records[1].regime.epochs = 64;
  for (ExperienceRecord& r : records) r.regime.frozen_stages = 0;
  for (const auto& [frozen, epochs] : std::map<int, int>{{1, 16}, {2, 64}}) {
    ExperienceRecord r = records[0];
    r.regime.frozen_stages = frozen;
    r.regime.epochs = epochs;
    records.push_back(r);
  }
  const ExperienceSummary s = summarize_experience(records);
  EXPECT_EQ(s.longest_epochs_by_frozen,
            (std::map<std::string, std::map<int, int>>{{"model-0", {{0, 512}, {1, 16}, {2, 64}}},
                                                       {"model-1", {{0, 64}}}}));

  const std::vector<int> grid{1, 8, 32, 64, 128, 256, 512};
  const std::map<std::string, std::vector<int>> counts{{"model-0", {0, 1, 2, 3}}, {"model-1", {0, 1}}};
  EXPECT_EQ(frozen_epoch_caps(s, counts, grid),
            (std::map<std::string, std::map<int, int>>{{"model-0", {{1, 32}, {2, 64}, {3, 32}}},
                                                       {"model-1", {{1, 32}}}}))
      << "a count keeps to its own runs (and to 32 with none, or shorter ones) below its model's cap; nothing "
         "frozen on model-1 is its model's cap already";
  EXPECT_TRUE(frozen_epoch_caps(s, counts, {1, 8, 32}).empty()) << "the grid's end binds first";
  EXPECT_EQ(epoch_cap_reason(s, 64, "model-0", 2),
            "the longest run of model-0 with 2 frozen stages in the predictor's experience");
  EXPECT_EQ(epoch_cap_reason(s, 32, "model-0", 1),
            "the most epochs planned without evidence of longer runs of model-0 with 1 frozen stage");

  ExperienceSummary older = s;  // saved before the per-count figures were kept
  older.longest_epochs_by_frozen.clear();
  EXPECT_TRUE(frozen_epoch_caps(older, counts, grid).empty()) << "each count plans as its model";
  EXPECT_NE(s, older) << "the per-count figures are part of the summary";
}

}  // namespace
}  // namespace nasoa::runtime
