// The device's speed against its profile, from the device's own records:
// the ratio of the seconds per epoch observed to those the profile predicts,
// over the runs made under this very profile, the last five at most, their
// median shrunk towards 1 and bounded.
#include "runtime/adapt/device_speed.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/runtime/adapt_support.h"

namespace nasoa::runtime {
namespace {

using testing::make_profile;
using testing::SyntheticWorld;

const std::vector<ModelFeatures>& models() {
  static const std::vector<ModelFeatures> m = SyntheticWorld(1).models();
  return m;
}

constexpr int kBatch = 32, kFrozen = 1;
constexpr std::int64_t kImages = 500, kTrain = 400;

// The seconds per epoch the profile predicts for record()'s configuration:
// training kTrain images and evaluating the other 100, worked out here from
// the profile's own step and inference figures.
double predicted_epoch(const DeviceProfile& profile, const std::string& model) {
  const double step = predict_step_seconds(profile, model, kBatch, kFrozen);
  const ModelProfile& m = profile.model(model);
  const double per_image = (64 * m.inference_seconds_per_image_batch64 - m.inference_seconds_per_image_batch1) / 63;
  const double per_batch = m.inference_seconds_per_image_batch1 - per_image;
  const std::int64_t validation = kImages - kTrain;
  return double((kTrain + kBatch - 1) / kBatch) * step +
         double((validation + kBatch - 1) / kBatch) * per_batch + double(validation) * per_image;
}

// A device record of models()[1] under `profile` whose `epochs` epochs each
// took `ratio` times what the profile predicts, after a first epoch that also
// held 3 s of start-up.
ExperienceRecord record(const DeviceProfile& profile, double ratio, const std::string& id, int epochs = 5) {
  ExperienceRecord r;
  r.run_id = id;
  r.source = ExperienceSource::kDevice;
  r.task = testing::make_meta(5, kImages / 5);
  r.train_images = kTrain;
  r.model = models()[1];
  r.model.step_seconds = predict_step_seconds(profile, r.model.name, kBatch, kFrozen);
  r.regime.model = r.model.name;
  r.regime.batch_size = kBatch;
  r.regime.frozen_stages = kFrozen;
  r.regime.epochs = epochs;
  const double epoch = ratio * predicted_epoch(profile, r.model.name);
  for (int e = 1; e <= epochs; ++e) r.history.push_back({e, 3.0 + e * epoch, 1.0 / e, 0.5 + 0.04 * e});
  r.best_accuracy = r.final_accuracy = 0.5 + 0.04 * epochs;
  r.total_seconds = 3.0 + epochs * epoch + 1.0;
  r.device = "cpu";
  r.stop_reason = "completed";
  return r;
}

TEST(DeviceSpeedTest, WithoutRecordsThePlanTrustsTheProfile) {
  const DeviceSpeed speed = device_speed({}, make_profile(models()));
  EXPECT_EQ(speed.runs, 0u);
  EXPECT_EQ(speed.time_scale, 1.0);
  EXPECT_EQ(device_speed_note(speed), "");
}

TEST(DeviceSpeedTest, OneRunTwiceAsSlowIsBelievedAtOnce) {
  const DeviceProfile profile = make_profile(models());
  const DeviceSpeed speed = device_speed({record(profile, 2.0, "a")}, profile);
  EXPECT_EQ(speed.runs, 1u);
  EXPECT_NEAR(speed.observed_ratio, 2.0, 1e-9);
  EXPECT_NEAR(speed.time_scale, 2.0, 1e-9);
  const std::string note = device_speed_note(speed);
  EXPECT_NE(note.find("last 1 fine-tune under its profile took 2.00x"), std::string::npos) << note;
  EXPECT_NE(note.find("planned at 2.00x"), std::string::npos) << note;
}

TEST(DeviceSpeedTest, FasterRunsAreBelievedOverRunsShrunkByNOverNPlusOne) {
  const DeviceProfile profile = make_profile(models());
  const DeviceSpeed one = device_speed({record(profile, 0.5, "f1")}, profile);
  EXPECT_NEAR(one.observed_ratio, 0.5, 1e-9);
  EXPECT_NEAR(one.time_scale, std::sqrt(0.5), 1e-9);
  const DeviceSpeed two = device_speed({record(profile, 0.5, "f1"), record(profile, 0.5, "f2")}, profile);
  EXPECT_NEAR(two.time_scale, std::pow(0.5, 2.0 / 3.0), 1e-9);
}

TEST(DeviceSpeedTest, TheMedianOfTheLastFiveRuns) {
  const DeviceProfile profile = make_profile(models());
  // Two old runs ten times as slow, then five: the median of those is 1.5.
  std::vector<ExperienceRecord> records{record(profile, 10, "old-1"), record(profile, 10, "old-2")};
  int i = 0;
  for (const double ratio : {1.5, 0.5, 3.0, 1.5, 1.2}) records.push_back(record(profile, ratio, std::to_string(i++)));
  DeviceSpeed speed = device_speed(records, profile);
  EXPECT_EQ(speed.runs, 5u);
  EXPECT_NEAR(speed.observed_ratio, 1.5, 1e-9);
  EXPECT_NEAR(speed.time_scale, 1.5, 1e-9);
  EXPECT_NE(device_speed_note(speed).find("(median)"), std::string::npos);
  // The newest five, whatever came before: 3.0, 1.5, 1.2, 0.6, 0.6.
  records.push_back(record(profile, 0.6, "later"));
  records.push_back(record(profile, 0.6, "latest"));
  speed = device_speed(records, profile);
  EXPECT_EQ(speed.runs, 5u);
  EXPECT_NEAR(speed.observed_ratio, 1.2, 1e-9);
  // An even count: the middle pair's geometric mean.
  speed = device_speed({record(profile, 2.0, "a"), record(profile, 8.0, "b")}, profile);
  EXPECT_NEAR(speed.observed_ratio, 4.0, 1e-9);
}

TEST(DeviceSpeedTest, OnlyTheDevicesRunsUnderThisVeryProfileCount) {
  const DeviceProfile profile = make_profile(models());
  std::vector<ExperienceRecord> records{record(profile, 2.0, "counted")};
  ExperienceRecord other_profile = record(profile, 9, "other-profile");
  *other_profile.model.step_seconds *= 1.1;  // recorded under a profile measured again, or other threads
  ExperienceRecord shipped = record(profile, 9, "shipped");
  shipped.source = ExperienceSource::kShipped;
  ExperienceRecord no_step = record(profile, 9, "no-step");
  no_step.model.step_seconds.reset();
  ExperienceRecord unknown_model = record(profile, 9, "unknown-model");
  unknown_model.model.name = unknown_model.regime.model = "not-in-the-profile";
  ExperienceRecord one_epoch = record(profile, 9, "one-epoch");
  one_epoch.history.resize(1);
  ExperienceRecord unevaluated = record(profile, 9, "cut");
  for (EpochPoint& p : unevaluated.history)
    if (p.epoch > 1) p.validation_accuracy = -1;
  ExperienceRecord two_gaps = record(profile, 9, "three-epochs");  // fewer than kLeastGaps gaps
  two_gaps.history.resize(3);
  ExperienceRecord on_a_gpu = record(profile, 9, "gpu");
  on_a_gpu.device = "cuda:0";
  for (const ExperienceRecord& r : {other_profile, shipped, no_step, unknown_model, one_epoch, unevaluated, two_gaps,
                                    on_a_gpu})
    records.push_back(r);
  const DeviceSpeed speed = device_speed(records, profile);
  EXPECT_EQ(speed.runs, 1u);
  EXPECT_NEAR(speed.observed_ratio, 2.0, 1e-9);
}

TEST(DeviceSpeedTest, ACheckpointOrAResumeInOneGapDoesNotCount) {
  const DeviceProfile profile = make_profile(models());
  ExperienceRecord r = record(profile, 1.5, "checkpointed", 8);
  // 4 s of checkpoint writing after epoch 1, and a resume's 20 s between
  // epochs 3 and 4: every later epoch ends that much later. Two of seven
  // gaps: the median is of the others.
  for (EpochPoint& p : r.history) p.elapsed_seconds += (p.epoch >= 2 ? 4.0 : 0.0) + (p.epoch >= 4 ? 20.0 : 0.0);
  EXPECT_NEAR(device_speed({r}, profile).observed_ratio, 1.5, 1e-9);
  // On a GPU, a mixed-precision run's device names its autocast too.
  DeviceProfile gpu = profile;
  gpu.device.device = "cuda:0";
  ExperienceRecord autocast = record(gpu, 2.0, "autocast");
  autocast.device = "cuda:0 (bf16 autocast)";
  EXPECT_EQ(device_speed({autocast}, gpu).runs, 1u);
  EXPECT_EQ(device_speed({autocast}, profile).runs, 0u) << "a GPU run says nothing of the CPU";
}

TEST(DeviceSpeedTest, TheScaleIsBoundedToAFactorOfFour) {
  const DeviceProfile profile = make_profile(models());
  std::vector<ExperienceRecord> slow, fast;
  for (int i = 0; i < 5; ++i) {
    slow.push_back(record(profile, 100, "s" + std::to_string(i)));
    fast.push_back(record(profile, 0.01, "f" + std::to_string(i)));
  }
  EXPECT_NEAR(device_speed(slow, profile).time_scale, 4.0, 1e-9);
  EXPECT_NEAR(device_speed(slow, profile).observed_ratio, 100.0, 1e-6);
  EXPECT_NEAR(device_speed(fast, profile).time_scale, 0.25, 1e-9);
}

}  // namespace
}  // namespace nasoa::runtime
