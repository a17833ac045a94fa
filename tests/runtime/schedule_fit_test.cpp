// Fitting the learning-rate schedule to the time a run has: the rate runs on
// without a jump and reaches the schedule's end at the fitted epoch; the end
// follows what the epochs cost and never passes the regime's.
#include "runtime/train/schedule_fit.h"

#include <gtest/gtest.h>

#include <cmath>

#include "nasoa/regime.h"

namespace nasoa::runtime {
namespace {

TEST(ScheduleFitTest, UnfittedItIsTheRegimesOwnSchedule) {
  const ScheduleFit fit;
  EXPECT_EQ(fit.end(98), 98);
  EXPECT_FALSE(fit.fitted(98));
  for (const double trained : {0.0, 0.25, 7.5, 98.0}) EXPECT_DOUBLE_EQ(fit.scheduled(trained), trained);
}

TEST(ScheduleFitTest, AFitEndsTheScheduleAtTheFittedEpochWithoutAJumpInTheRate) {
  Regime regime;
  regime.epochs = 98;
  regime.learning_rate = 0.1;
  ScheduleFit fit;
  fit.end_at(4, 44, 98);
  EXPECT_EQ(fit.end(98), 44);
  EXPECT_TRUE(fit.fitted(98));
  EXPECT_DOUBLE_EQ(fit.scheduled(4), 4) << "where the run was, the schedule stays";
  EXPECT_DOUBLE_EQ(fit.scheduled(44), 98) << "the fitted end is the schedule's end";
  EXPECT_NEAR(learning_rate_at(regime, fit.scheduled(44)), 0.0, 1e-12);
  // Just before and after the fit, the rate is the same; from there it
  // falls faster than the regime's would.
  EXPECT_NEAR(learning_rate_at(regime, fit.scheduled(4 - 1e-9)), learning_rate_at(regime, 4 - 1e-9), 1e-9);
  EXPECT_LT(learning_rate_at(regime, fit.scheduled(20)), learning_rate_at(regime, 20));
  double previous = learning_rate_at(regime, fit.scheduled(4));
  for (double trained = 4.5; trained <= 44; trained += 0.5) {
    const double rate = learning_rate_at(regime, fit.scheduled(trained));
    EXPECT_LE(rate, previous) << "the cosine rises again at epoch " << trained;
    previous = rate;
  }
}

TEST(ScheduleFitTest, ASecondFitGoesOnFromWhereTheFirstHadGot) {
  ScheduleFit fit;
  fit.end_at(4, 44, 98);
  const double reached = fit.scheduled(10);
  fit.end_at(10, 30, 98);
  EXPECT_DOUBLE_EQ(fit.scheduled(10), reached);
  EXPECT_DOUBLE_EQ(fit.scheduled(30), 98);
  EXPECT_EQ(fit.end(98), 30);
  // A device that speeds up again may go back to the regime's end, but the
  // rate still runs on from where it is.
  const double at_12 = fit.scheduled(12);
  fit.end_at(12, 98, 98);
  EXPECT_DOUBLE_EQ(fit.scheduled(12), at_12);
  EXPECT_DOUBLE_EQ(fit.scheduled(98), 98);
  EXPECT_TRUE(fit.fitted(98)) << "its rates are not the regime's";
}

TEST(ScheduleFitTest, AnEpochsCostIsTheMedianOfTheLatestGapsOnceThereAreEnough) {
  EXPECT_EQ(epoch_cost({}), 0.0);
  EXPECT_EQ(epoch_cost({0.5}), 0.0);
  EXPECT_EQ(epoch_cost({0.5, 9.0}), 0.0) << "the mean of two would be half a stall";
  EXPECT_DOUBLE_EQ(epoch_cost({0.5, 9.0, 0.6}), 0.6) << "one stall does not move the median";
  // Only the latest kRecentEpochGaps: a device that slowed is followed.
  EXPECT_DOUBLE_EQ(epoch_cost({0.3, 0.3, 0.3, 0.3, 0.3, 0.9, 0.9, 0.9}), 0.9);
}

TEST(ScheduleFitTest, TheEndIsWhatTheTimeAndEnergyLeftCoverBetweenOneMoreAndTheRegimes) {
  // 20 s left at 0.6 s an epoch: 33 more.
  EXPECT_EQ(fitted_end(4, 98, 0.6, 20), 37);
  // More than enough time: the regime's own end, never later.
  EXPECT_EQ(fitted_end(4, 98, 0.1, 1000), 98);
  // Not even one more fits: one more, which the guard may stop part-way
  // (its rate already down to the schedule's end).
  EXPECT_EQ(fitted_end(4, 98, 0.6, 0.1), 5);
  EXPECT_EQ(fitted_end(4, 98, 0.6, -3), 5);
  // The energy left binds when it covers fewer epochs than the time.
  EXPECT_EQ(fitted_end(4, 98, 0.6, 20, 10, 100), 14);
  EXPECT_EQ(fitted_end(4, 98, 0.6, 20, 1, 100), 37);
  // An unknown cost limits nothing.
  EXPECT_EQ(fitted_end(4, 98, 0, 20), 98);
  EXPECT_EQ(fitted_end(4, 98, 0.6, 20, 0, 0), 37);
  // No limit (an infinite budget) is the regime's end.
  EXPECT_EQ(fitted_end(4, 98, 0.6, INFINITY), 98);
}

}  // namespace
}  // namespace nasoa::runtime
