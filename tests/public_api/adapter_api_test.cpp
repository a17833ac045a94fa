// Task, Adapter and Classifier through the public API only: the round trip an
// app makes, and the errors it must get for bad input.
#include <gtest/gtest.h>
#include <nasoa/nasoa.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "../support/expect_error.h"
#include <opencv2/imgcodecs.hpp>

namespace fs = std::filesystem;

extern std::string g_bundle;  // zoo_api_test.cpp: --bundle=DIR (input 32, models below)

namespace {

class AdapterApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (g_bundle.empty()) GTEST_SKIP() << "run with --bundle=DIR (ctest passes it)";
    dir_ = fs::temp_directory_path() / ("nasoa-adapter-api-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    // Two visibly different classes: dark and bright noise.
    cv::RNG rng(3);
    for (int c = 0; c < 2; ++c) {
      fs::create_directories(dir_ / "task" / (c ? "bright" : "dark"));
      for (int i = 0; i < 12; ++i) {
        cv::Mat m(32, 32, CV_8UC3);
        rng.fill(m, cv::RNG::UNIFORM, c ? 150 : 0, c ? 255 : 100);
        cv::imwrite((dir_ / "task" / (c ? "bright" : "dark") / (std::to_string(i) + ".png")).string(), m);
      }
    }
    nasoa::TaskOptions options;
    options.image_side = 32;
    task_ = std::make_unique<nasoa::Task>(nasoa::Task::from_folder((dir_ / "task").string(), options));
    zoo_ = std::make_unique<nasoa::Zoo>(nasoa::Zoo::open(g_bundle));
    regime_.model = "2-_16_2-11";
    regime_.epochs = 3;
    regime_.batch_size = 8;
    regime_.validation_fraction = 0.25;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // On the CPU, a checkpoint at every step boundary: what the kill-and-resume tests need.
  static nasoa::AdapterOptions checkpointing_options() {
    nasoa::AdapterOptions options;
    options.device = nasoa::DevicePreference::kCpu;
    options.checkpoint_interval_seconds = 1e-3;
    return options;
  }

  // Runs `fine_tune` with a progress callback that kills it (an exception
  // the SDK lets through) in the second epoch, when the first epoch's
  // checkpoint is on disk; checks the checkpoint is there.
  static void kill_in_second_epoch(const std::function<void(const nasoa::ProgressCallback&)>& fine_tune,
                                   const std::string& out) {
    struct Killed {};
    EXPECT_THROW(fine_tune([](const nasoa::Progress& p) {
                   if (p.epoch >= 2 && p.step >= 1) throw Killed{};
                 }),
                 Killed);
    ASSERT_TRUE(fs::exists(out + ".checkpoint"));
  }

  nasoa::ErrorCode code_of(const std::function<void()>& f, std::string* message = nullptr) {
    try {
      f();
    } catch (const nasoa::Error& e) {
      if (message) *message = e.what();
      return e.code();
    }
    ADD_FAILURE() << "no nasoa::Error thrown";
    return nasoa::ErrorCode::kInternal;
  }

  fs::path dir_;
  std::unique_ptr<nasoa::Task> task_;
  std::unique_ptr<nasoa::Zoo> zoo_;
  nasoa::Regime regime_;
};

TEST_F(AdapterApiTest, FineTunesSavesAndClassifies) {
  EXPECT_EQ(task_->meta().classes, 2);
  EXPECT_EQ(task_->size(), 24u);
  nasoa::AdapterOptions options;
  options.device = nasoa::DevicePreference::kCpu;
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Budget budget;
  budget.seconds = 60;
  int progress_calls = 0;
  nasoa::Progress last;
  const nasoa::Result r = adapter.fine_tune(*task_, regime_, budget, (dir_ / "model").string(),
                                            [&](const nasoa::Progress& p) {
                                              ++progress_calls;
                                              last = p;
                                            });
  EXPECT_GT(progress_calls, 0);
  EXPECT_EQ(r.stop_reason, "completed");
  ASSERT_EQ(r.epochs.size(), 3u);
  // The last evaluation reaches the callback, not only the result.
  EXPECT_EQ(last.epoch, 3);
  EXPECT_DOUBLE_EQ(last.validation_accuracy, r.epochs.back().validation_accuracy);
  EXPECT_EQ(r.device, "cpu");
  EXPECT_FALSE(fs::exists(dir_ / "model.checkpoint"));
  const nasoa::Classifier clf = nasoa::Classifier::open(r.model_dir);
  EXPECT_EQ(clf.labels(), (std::vector<std::string>{"bright", "dark"}));
  EXPECT_DOUBLE_EQ(clf.validation_accuracy().value(), r.validation_accuracy);
  const auto top = clf.predict(cv::Mat(32, 32, CV_8UC3, cv::Scalar(250, 250, 250)), 2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_NEAR(top[0].probability + top[1].probability, 1.0, 1e-5);
  EXPECT_GE(top[0].probability, top[1].probability);
  // The classes are as far apart as images get: the model tells them apart.
  EXPECT_EQ(top[0].label, "bright");
  EXPECT_EQ(clf.predict(cv::Mat(32, 32, CV_8UC3, cv::Scalar(20, 20, 20)), 1).at(0).label, "dark");
}

TEST_F(AdapterApiTest, AnExceptionFromTheProgressCallbackCancelsTheRunAndReachesTheCallerAsItIs) {
  struct Cancelled {
    int at_step;
  };
  nasoa::AdapterOptions options;
  options.device = nasoa::DevicePreference::kCpu;
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Budget budget;
  budget.seconds = 60;
  const fs::path out = dir_ / "cancelled";
  try {
    adapter.fine_tune(*task_, regime_, budget, out.string(), [](const nasoa::Progress& p) {
      if (p.step >= 2) throw Cancelled{int(p.step)};
    });
    FAIL() << "the run was not stopped";
  } catch (const Cancelled& c) {
    EXPECT_GE(c.at_step, 2);
  }
  EXPECT_FALSE(fs::exists(out));
  // A standard exception is not relabelled as a bug of nasoa's either.
  try {
    adapter.fine_tune(*task_, regime_, budget, out.string(),
                      [](const nasoa::Progress&) { throw std::runtime_error("user cancelled"); });
    FAIL() << "the run was not stopped";
  } catch (const nasoa::Error& e) {
    FAIL() << "translated into nasoa::Error: " << e.what();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "user cancelled");
  }
  // The Adapter still works afterwards.
  EXPECT_EQ(adapter.fine_tune(*task_, regime_, budget, out.string()).stop_reason, "completed");
}

TEST_F(AdapterApiTest, ASecondRunIntoTheSameOutputIsRefusedWhileTheFirstTrains) {
  nasoa::AdapterOptions options;
  options.device = nasoa::DevicePreference::kCpu;
  nasoa::Adapter adapter(*zoo_, options), other(*zoo_, options);
  nasoa::Budget budget;
  budget.seconds = 60;
  const fs::path out = dir_ / "shared";
  bool tried = false;
  std::string refusal;
  // The second run starts while the first is in its first step: it would
  // share the first's checkpoint, and one model would overwrite the other.
  const nasoa::Result r = adapter.fine_tune(*task_, regime_, budget, out.string(), [&](const nasoa::Progress& p) {
    if (tried || p.step < 1) return;
    tried = true;
    try {
      other.fine_tune(*task_, regime_, budget, out.string());
      ADD_FAILURE() << "a second run into " << out << " was let in";
    } catch (const nasoa::Error& e) {
      EXPECT_EQ(e.code(), nasoa::ErrorCode::kInvalidArgument);
      refusal = e.what();
    }
  });
  ASSERT_TRUE(tried);
  EXPECT_NE(refusal.find("is being written by another process"), std::string::npos) << refusal;
  EXPECT_EQ(r.stop_reason, "completed");
  EXPECT_FALSE(fs::exists(out.string() + ".lock")) << "the lock file outlived the run";
  // Once the first is done, the output is free again.
  EXPECT_EQ(other.fine_tune(*task_, regime_, budget, out.string()).stop_reason, "completed");
}

// `parse` throws Error{kInvalidArgument} whose message quotes `quoted`.
void expect_refused_naming(const std::function<void()>& parse, const std::string& quoted) {
  EXPECT_TRUE(nasoa::testing::throws_error(parse, nasoa::ErrorCode::kInvalidArgument, quoted));
}

TEST(DevicePreferenceTest, NamesRoundTripAndUnknownOnesAreRefusedByName) {
  for (const nasoa::DevicePreference d :
       {nasoa::DevicePreference::kAuto, nasoa::DevicePreference::kCpu, nasoa::DevicePreference::kCuda})
    EXPECT_EQ(nasoa::parse_device_preference(nasoa::to_string(d)), d);
  EXPECT_STREQ(nasoa::to_string(nasoa::DevicePreference::kCuda), "cuda");
  expect_refused_naming([] { nasoa::parse_device_preference("gpu"); }, "'gpu'");
}

TEST(AdapterOptionsApi, MemoryLayoutNamesRoundTrip) {
  using L = nasoa::MemoryLayoutPreference;
  for (const L l : {L::kAuto, L::kChannelsFirst, L::kChannelsLast})
    EXPECT_EQ(nasoa::parse_memory_layout_preference(nasoa::to_string(l)), l);
  EXPECT_STREQ(nasoa::to_string(L::kChannelsLast), "channels-last");
  expect_refused_naming([] { nasoa::parse_memory_layout_preference("nhwc"); }, "'nhwc'");
}

TEST(AdapterOptionsApi, WeightsChoiceNamesRoundTrip) {
  using W = nasoa::WeightsChoice;
  for (const W w : {W::kBestValidated, W::kLatestWithinNoise, W::kLast})
    EXPECT_EQ(nasoa::parse_weights_choice(nasoa::to_string(w)), w);
  EXPECT_STREQ(nasoa::to_string(W::kLatestWithinNoise), "latest-within-noise");
  EXPECT_EQ(nasoa::AdapterOptions{}.hand_back, W::kLatestWithinNoise);
  expect_refused_naming([] { nasoa::parse_weights_choice("best"); }, "'best'");
}

TEST_F(AdapterApiTest, HandBackLastSavesTheLastEpochsWeights) {
  nasoa::AdapterOptions options;
  options.device = nasoa::DevicePreference::kCpu;
  options.hand_back = nasoa::WeightsChoice::kLast;
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Budget budget;
  budget.seconds = 60;
  const nasoa::Result r = adapter.fine_tune(*task_, regime_, budget, (dir_ / "hand-back-last").string());
  ASSERT_EQ(r.stop_reason, "completed");
  ASSERT_EQ(int(r.epochs.size()), regime_.epochs);
  EXPECT_EQ(r.best_epoch, regime_.epochs);
  EXPECT_EQ(r.hand_back, nasoa::WeightsChoice::kLast);
  EXPECT_DOUBLE_EQ(r.validation_accuracy, r.epochs.back().validation_accuracy);
  EXPECT_DOUBLE_EQ(nasoa::Classifier::open(r.model_dir).validation_accuracy().value(), r.validation_accuracy);
}

TEST_F(AdapterApiTest, TrainsInTheLayoutAskedForAndReportsIt) {
  nasoa::AdapterOptions options;
  options.device = nasoa::DevicePreference::kCpu;
  options.memory_layout = nasoa::MemoryLayoutPreference::kChannelsLast;
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Budget budget;
  budget.seconds = 60;
  const nasoa::Result r = adapter.fine_tune(*task_, regime_, budget, (dir_ / "last").string());
  EXPECT_EQ(r.memory_layout, "channels-last");
  EXPECT_EQ(r.stop_reason, "completed");
  // The saved model loads and classifies as one trained channels-first does.
  const nasoa::Classifier clf = nasoa::Classifier::open(r.model_dir);
  EXPECT_DOUBLE_EQ(clf.validation_accuracy().value(), r.validation_accuracy);
  EXPECT_EQ(clf.predict(cv::Mat(32, 32, CV_8UC3, cv::Scalar(250, 250, 250)), 1).at(0).label, "bright");
  EXPECT_EQ(clf.predict(cv::Mat(32, 32, CV_8UC3, cv::Scalar(20, 20, 20)), 1).at(0).label, "dark");
}

TEST_F(AdapterApiTest, EverySpellingOfTheOutputFolderUsesTheSameCheckpoint) {
  // "m/." once wrote its checkpoint inside the model folder ("m/..checkpoint"),
  // where the saved model replaced it; "m/" and "m/." must both mean m.
  nasoa::Adapter adapter(*zoo_, checkpointing_options());
  nasoa::Budget budget;
  budget.seconds = 60;
  struct Killed {};
  EXPECT_THROW(adapter.fine_tune(*task_, regime_, budget, (dir_ / "dotted" / ".").string(),
                                 [](const nasoa::Progress& p) {
                                   if (p.step >= 2) throw Killed{};
                                 }),
               Killed);
  EXPECT_TRUE(fs::exists(dir_ / "dotted.checkpoint"));
  EXPECT_FALSE(fs::exists(dir_ / "dotted"));
  // Another regime, however close, is another run.
  nasoa::Regime nudged = regime_;
  nudged.weight_decay += 4e-7;
  EXPECT_EQ(code_of([&] { adapter.fine_tune(*task_, nudged, budget, (dir_ / "dotted").string(), {}, true); }),
            nasoa::ErrorCode::kCorrupt)
      << "a weight decay 4e-7 apart resumed the checkpoint";
  EXPECT_TRUE(fs::exists(dir_ / "dotted.checkpoint"));
  const nasoa::Result r = adapter.fine_tune(*task_, regime_, budget, (dir_ / "dotted").string() + "/", {}, true);
  EXPECT_TRUE(r.resumed);
  EXPECT_FALSE(fs::exists(dir_ / "dotted.checkpoint"));
  EXPECT_TRUE(fs::exists(dir_ / "dotted" / "MANIFEST"));
}

TEST_F(AdapterApiTest, AClassWithoutValidationImagesIsNamedInTheResult) {
  nasoa::AdapterOptions options;
  options.device = nasoa::DevicePreference::kCpu;
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Budget budget;
  budget.seconds = 60;
  nasoa::Regime one_epoch = regime_;
  one_epoch.epochs = 1;
  EXPECT_EQ(adapter.fine_tune(*task_, one_epoch, budget, (dir_ / "full").string()).validation_note, "")
      << "every class of the fixture has validation images";
  // A third class of one image: it trains, and the accuracy cannot cover it.
  fs::copy(dir_ / "task", dir_ / "lone-task", fs::copy_options::recursive);
  fs::create_directories(dir_ / "lone-task" / "grey");
  cv::imwrite((dir_ / "lone-task" / "grey" / "0.png").string(), cv::Mat(32, 32, CV_8UC3, cv::Scalar::all(128)));
  nasoa::TaskOptions task_options;
  task_options.image_side = 32;
  const nasoa::Task lone = nasoa::Task::from_folder((dir_ / "lone-task").string(), task_options);
  const nasoa::Result r = adapter.fine_tune(lone, one_epoch, budget, (dir_ / "lone").string());
  EXPECT_NE(r.validation_note.find("hold 2 of the 3 classes; none of 'grey'"), std::string::npos)
      << r.validation_note;
  EXPECT_GE(r.validation_accuracy, 0.0);
}

TEST_F(AdapterApiTest, ATaskWhoseImagesWereRewrittenDoesNotResumeTheCheckpoint) {
  // Same names, other pixels: the checkpoint's best accuracy was measured on
  // the old images, and its weights learnt from them.
  nasoa::Adapter adapter(*zoo_, checkpointing_options());
  nasoa::Budget budget;
  budget.seconds = 600;
  const std::string out = (dir_ / "rewritten").string();
  ASSERT_NO_FATAL_FAILURE(kill_in_second_epoch(
      [&](const nasoa::ProgressCallback& progress) { adapter.fine_tune(*task_, regime_, budget, out, progress); },
      out));
  const fs::path image = dir_ / "task" / "dark" / "0.png";
  const auto before = fs::last_write_time(image);
  cv::imwrite(image.string(), cv::Mat(32, 32, CV_8UC3, cv::Scalar(240, 240, 240)));
  fs::last_write_time(image, before + std::chrono::seconds(1));  // however coarse the file system's clock
  nasoa::TaskOptions options;
  options.image_side = 32;
  const nasoa::Task rewritten = nasoa::Task::from_folder((dir_ / "task").string(), options);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { adapter.fine_tune(rewritten, regime_, budget, out, {}, true); },
                                           nasoa::ErrorCode::kCorrupt, "rewritten since"));
  EXPECT_TRUE(fs::exists(out + ".checkpoint")) << "the refused checkpoint was removed";
}

TEST_F(AdapterApiTest, ARunKilledWhileFlippingImagesIsToldHowToResume) {
  // Flips were on by default before 0.3.1: the same command, run again with
  // the new default, must say why the checkpoint is not its own.
  nasoa::Adapter adapter(*zoo_, checkpointing_options());
  nasoa::Budget budget;
  budget.seconds = 600;
  nasoa::Regime flipping = regime_;
  flipping.horizontal_flip = true;
  const std::string out = (dir_ / "flipped").string();
  ASSERT_NO_FATAL_FAILURE(kill_in_second_epoch(
      [&](const nasoa::ProgressCallback& progress) { adapter.fine_tune(*task_, flipping, budget, out, progress); },
      out));
  ASSERT_FALSE(regime_.horizontal_flip);
  try {
    adapter.fine_tune(*task_, regime_, budget, out, {}, /*resume=*/true);
    ADD_FAILURE() << "a run without flips resumed one with them";
  } catch (const nasoa::Error& e) {
    EXPECT_EQ(e.code(), nasoa::ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(out + ".checkpoint: the checkpoint's run flips images"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("--flip"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(out + ".checkpoint"));
  const nasoa::Result r = adapter.fine_tune(*task_, flipping, budget, out, {}, /*resume=*/true);
  EXPECT_TRUE(r.resumed);
  EXPECT_TRUE(r.regime.horizontal_flip);
}

TEST_F(AdapterApiTest, AResumedRunCountsEachRunsTimeBeforeTrainingAsSpent) {
  // What went before training (ingestion, planning) is not training: an
  // experience record takes wall_seconds - spent_seconds as the training
  // time, so a resumed run must count the killed run's set-up too.
  nasoa::Adapter adapter(*zoo_, checkpointing_options());
  nasoa::Budget budget;
  budget.seconds = 600;
  budget.spent_seconds = 7;
  budget.spent_joules = 70;
  const std::string out = (dir_ / "resumed").string();
  ASSERT_NO_FATAL_FAILURE(kill_in_second_epoch(
      [&](const nasoa::ProgressCallback& progress) { adapter.fine_tune(*task_, regime_, budget, out, progress); },
      out));
  budget.spent_seconds = 3;
  budget.spent_joules = 30;
  const nasoa::Result r = adapter.fine_tune(*task_, regime_, budget, out, {}, /*resume=*/true);
  ASSERT_TRUE(r.resumed);
  EXPECT_DOUBLE_EQ(r.spent_seconds, 10);
  // Joules the same way: each run's, the killed one's from its checkpoint,
  // are in the call's and in every epoch's, the epoch before the kill too.
  EXPECT_DOUBLE_EQ(r.spent_joules, 100);
  EXPECT_GE(r.joules, r.spent_joules);
  for (const nasoa::EpochResult& e : r.epochs) EXPECT_GE(e.joules, r.spent_joules - 1e-9) << "epoch " << e.epoch;
  EXPECT_GT(r.wall_seconds, 10);
  ASSERT_EQ(r.epochs.size(), 3u);
  // The epoch before the kill counts the second run's set-up too: minus
  // spent_seconds every epoch is a training time, and they increase.
  double before = 0;
  for (const nasoa::EpochResult& e : r.epochs) {
    EXPECT_GT(e.elapsed_seconds - r.spent_seconds, before) << "epoch " << e.epoch;
    before = e.elapsed_seconds - r.spent_seconds;
  }
  EXPECT_LT(before, r.wall_seconds - r.spent_seconds);
}

// Resuming with the saved plan of the killed run: its planning time is in
// the checkpoint already, and must not be counted twice.
TEST_F(AdapterApiTest, AResumedPlanCountsItsPlanningTimeOnce) {
  nasoa::Adapter adapter(*zoo_, checkpointing_options());
  nasoa::Plan plan;
  plan.best.regime = regime_;
  plan.planning_seconds = 5;
  plan.planning_joules = 50;
  nasoa::Budget budget;
  budget.seconds = 600;
  budget.spent_seconds = 7;
  budget.spent_joules = 70;
  const std::string out = (dir_ / "planned").string();
  ASSERT_NO_FATAL_FAILURE(kill_in_second_epoch(
      [&](const nasoa::ProgressCallback& progress) { adapter.fine_tune(*task_, plan, budget, out, progress); },
      out));
  budget.spent_seconds = 3;
  budget.spent_joules = 30;
  const nasoa::Result r = adapter.fine_tune(*task_, plan, budget, out, {}, /*resume=*/true);
  ASSERT_TRUE(r.resumed);
  EXPECT_DOUBLE_EQ(r.spent_seconds, 7 + 5 + 3);
  EXPECT_DOUBLE_EQ(r.spent_joules, 70 + 50 + 30);

  nasoa::Plan bad = plan;
  bad.planning_joules = -1;
  std::string message;
  EXPECT_EQ(code_of([&] { adapter.fine_tune(*task_, bad, budget, (dir_ / "bad").string()); }, &message),
            nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("planning_joules"), std::string::npos) << message;
}

// What a caller spends before planning (reading the task) counts through
// Budget::spent_joules; the watch reads it from fine-tuning's meter, or
// estimates it where none measures.
TEST_F(AdapterApiTest, AnEnergyWatchReadsTheMeterFineTuningReadsOrEstimates) {
  using Steady = std::chrono::steady_clock;
  nasoa::AdapterOptions estimate;
  estimate.sysfs_root = (dir_ / "empty-sysfs").string();
  estimate.device = nasoa::DevicePreference::kCpu;  // on a GPU host, NVML would measure a GPU job
  estimate.estimate_watts = 10;
  const Steady::time_point two_seconds_ago = Steady::now() - std::chrono::seconds(2);
  const nasoa::EnergyWatch estimated(estimate, two_seconds_ago);
  EXPECT_FALSE(estimated.measured());
  EXPECT_EQ(estimated.meter(), "estimate:10W");
  // The estimate goes back to estimate_from: at least 2 s at 10 W.
  const double first = estimated.joules();
  EXPECT_GE(first, 20.0);
  EXPECT_LT(first, 10.0 * std::chrono::duration<double>(Steady::now() - two_seconds_ago).count() + 1e-9);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_GT(estimated.joules(), first);

  nasoa::AdapterOptions blind = estimate;
  blind.estimate_watts = 0;
  const nasoa::EnergyWatch nothing(blind);
  EXPECT_FALSE(nothing.measured());
  EXPECT_EQ(nothing.meter(), "none");
  EXPECT_EQ(nothing.joules(), 0.0);

  // A RAPL package counter, as the kernel shows it: the watch measures from
  // its creation on, whatever the counter read before.
  const fs::path zone = dir_ / "rapl-sysfs" / "class" / "powercap" / "intel-rapl:0";
  fs::create_directories(zone);
  const auto write = [&](const char* name, const std::string& text) { std::ofstream(zone / name) << text << "\n"; };
  write("name", "package-0");
  write("max_energy_range_uj", "262143328850");
  write("energy_uj", "7000000");
  nasoa::AdapterOptions rapl = estimate;
  rapl.sysfs_root = (dir_ / "rapl-sysfs").string();
  nasoa::EnergyWatch metered(rapl, two_seconds_ago);
  EXPECT_TRUE(metered.measured());
  EXPECT_EQ(metered.meter(), "rapl:package-0");
  EXPECT_EQ(metered.joules(), 0.0);
  write("energy_uj", "10000000");  // 3 J more
  const Steady::time_point deadline = Steady::now() + std::chrono::seconds(5);
  while (metered.joules() < 3.0 && Steady::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_DOUBLE_EQ(metered.joules(), 3.0);
  const nasoa::EnergyWatch moved = std::move(metered);
  EXPECT_DOUBLE_EQ(moved.joules(), 3.0);

  nasoa::AdapterOptions negative = estimate;
  negative.estimate_watts = -1;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { nasoa::EnergyWatch w(negative); }, nasoa::ErrorCode::kInvalidArgument,
                                           "estimate_watts"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { nasoa::EnergyWatch w(estimate, Steady::now() + std::chrono::hours(1)); },
                                           nasoa::ErrorCode::kInvalidArgument, "estimate_from"));
}

TEST_F(AdapterApiTest, BadRequestsGetTheRightErrors) {
  nasoa::Adapter adapter(*zoo_);
  nasoa::Budget budget;
  budget.seconds = 30;
  const std::string out = (dir_ / "m").string();
  nasoa::Regime unknown = regime_;
  unknown.model = "no-such-model";
  EXPECT_EQ(code_of([&] { adapter.fine_tune(*task_, unknown, budget, out); }), nasoa::ErrorCode::kNotFound);
  nasoa::Regime negative = regime_;
  negative.learning_rate = -0.1;
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { adapter.fine_tune(*task_, negative, budget, out); },
                                                nasoa::ErrorCode::kInvalidArgument, {"learning_rate", "-0.1"}));
  nasoa::Budget none;
  EXPECT_EQ(code_of([&] { adapter.fine_tune(*task_, regime_, none, out); }), nasoa::ErrorCode::kInvalidArgument);
  // A compute team wider than the cores stalls every step past any deadline.
  nasoa::AdapterOptions wide;
  wide.threads = int(std::thread::hardware_concurrency()) + 1;
  if (std::thread::hardware_concurrency() > 0) {
    EXPECT_EQ(code_of([&] { nasoa::Adapter(*zoo_, wide); }), nasoa::ErrorCode::kInvalidArgument);
  }
  // A power no device draws would overflow the joules (and the checkpoint).
  nasoa::AdapterOptions absurd;
  absurd.estimate_watts = 1e308;
  EXPECT_EQ(code_of([&] { nasoa::Adapter(*zoo_, absurd); }), nasoa::ErrorCode::kInvalidArgument);
  // The planner's options are refused up front too, not at the first plan().
  nasoa::AdapterOptions negative_experience;
  negative_experience.min_experience = -1;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { nasoa::Adapter(*zoo_, negative_experience); },
                                           nasoa::ErrorCode::kInvalidArgument, "min_experience must be >= 0, got -1"));
  nasoa::AdapterOptions no_probe_images;
  no_probe_images.probe_per_class = 0;
  EXPECT_NO_THROW(nasoa::Adapter(*zoo_, no_probe_images)) << "the probe is off: its sample size is not used";
  no_probe_images.probe = true;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { nasoa::Adapter(*zoo_, no_probe_images); },
                                           nasoa::ErrorCode::kInvalidArgument, "probe_per_class must be >= 1"));
  // Each field out of range is named with its value.
  const auto budget_message = [&](const std::function<void(nasoa::Budget&)>& edit) {
    nasoa::Budget b = budget;
    edit(b);
    try {
      adapter.fine_tune(*task_, regime_, b, out);
    } catch (const nasoa::Error& e) {
      EXPECT_EQ(e.code(), nasoa::ErrorCode::kInvalidArgument);
      return std::string(e.what());
    }
    ADD_FAILURE() << "the budget was accepted";
    return std::string();
  };
  EXPECT_NE(budget_message([](nasoa::Budget& b) { b.seconds = std::nan(""); }).find("budget field seconds = nan"),
            std::string::npos);
  EXPECT_NE(budget_message([](nasoa::Budget& b) { b.joules = -1; }).find("budget field joules = -1"),
            std::string::npos);
  EXPECT_NE(budget_message([](nasoa::Budget& b) { b.memory_mib = -5; }).find("budget field memory_mib = -5"),
            std::string::npos);
  EXPECT_NE(budget_message([](nasoa::Budget& b) { b.spent_seconds = std::nan(""); }).find("budget field spent_seconds"),
            std::string::npos);
  EXPECT_NE(budget_message([](nasoa::Budget& b) { b.spent_joules = -2; }).find("budget field spent_joules = -2"),
            std::string::npos);
  EXPECT_EQ(code_of([&] { adapter.fine_tune(*task_, regime_, budget, out, {}, /*resume=*/true); }),
            nasoa::ErrorCode::kNotFound);
  nasoa::Budget energy = budget;
  energy.joules = 100;  // no meter on an empty sysfs root, and no estimate
  nasoa::AdapterOptions no_meter;
  no_meter.sysfs_root = (dir_ / "empty-sysfs").string();
  no_meter.device = nasoa::DevicePreference::kCpu;  // on a GPU host, NVML would measure a GPU job
  nasoa::Adapter blind(*zoo_, no_meter);
  EXPECT_EQ(code_of([&] { blind.fine_tune(*task_, regime_, energy, out); }), nasoa::ErrorCode::kInvalidArgument);
  nasoa::TaskOptions wrong_side;
  wrong_side.image_side = 48;
  const nasoa::Task big = nasoa::Task::from_folder((dir_ / "task").string(), wrong_side);
  EXPECT_EQ(code_of([&] { adapter.fine_tune(big, regime_, budget, out); }), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(code_of([&] { nasoa::Task::from_folder((dir_ / "missing").string()); }), nasoa::ErrorCode::kNotFound);
}

TEST_F(AdapterApiTest, MisuseAndImpossibleInputsAreClearErrors) {
  // Moved-from objects: an error, not a crash.
  nasoa::Task task = nasoa::Task::from_folder((dir_ / "task").string());
  const nasoa::Task taken = std::move(task);
  EXPECT_EQ(taken.size(), 24u);
  EXPECT_EQ(code_of([&] { (void)task.size(); }),
            nasoa::ErrorCode::kInvalidArgument);  // NOLINT(bugprone-use-after-move)
  nasoa::AdapterOptions options;
  options.state_dir = (dir_ / "state").string();
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Adapter kept = std::move(adapter);
  EXPECT_EQ(code_of([&] { (void)adapter.state_dir(); }), nasoa::ErrorCode::kInvalidArgument);  // NOLINT

  // A memory cap whose bytes overflow.
  nasoa::Budget huge;
  huge.seconds = 30;
  huge.memory_mib = std::int64_t(1) << 44;
  EXPECT_EQ(code_of([&] { kept.fine_tune(*task_, regime_, huge, (dir_ / "m").string()); }),
            nasoa::ErrorCode::kInvalidArgument);

  // An impossible result would stay in the append-only experience for good.
  nasoa::Result impossible;
  impossible.regime = regime_;
  impossible.regime.frozen_stages = 99;
  impossible.validation_accuracy = 0.5;
  EXPECT_EQ(code_of([&] { kept.record(*task_, nasoa::Plan{}, impossible); }), nasoa::ErrorCode::kInvalidArgument);
  impossible.regime.frozen_stages = 0;
  impossible.wall_seconds = -1;
  EXPECT_EQ(code_of([&] { kept.record(*task_, nasoa::Plan{}, impossible); }), nasoa::ErrorCode::kInvalidArgument);

  // A run a budget cut short is not its regime's outcome: not recorded.
  nasoa::Result cut;
  cut.regime = regime_;
  cut.stop_reason = "memory cap";
  cut.validation_accuracy = 0.06;
  cut.wall_seconds = 1;
  EXPECT_FALSE(kept.record(*task_, nasoa::Plan{}, cut)) << "no epoch evaluated: nothing to learn";
  // One cut after its first of ten epochs is stored as the one epoch it ran,
  // its warm-up (valid for ten epochs, not for one) cut to end before it.
  cut.regime.epochs = 10;
  cut.regime.warmup_epochs = 1;
  cut.stop_reason = "time budget";
  cut.epochs = {{1, 0.9, 0.6, 0.7, 1.0, 0}, {2, 0.8, 0.65, -1, 1.5, 0}};
  cut.validation_accuracy = 0.75;  // a part epoch's weights, evaluated at the end
  ASSERT_TRUE(kept.record(*task_, nasoa::Plan{}, cut));
  std::ifstream log(fs::path(kept.state_dir()) / "experience.log");
  std::string line, last;
  while (std::getline(log, line)) last = line;
  ASSERT_FALSE(last.empty()) << "no experience.log in " << kept.state_dir();
  const auto record = nlohmann::json::parse(last.substr(last.find(' ') + 1));
  EXPECT_EQ(record["regime"]["epochs"], 1);
  EXPECT_LT(record["regime"]["warmup_epochs"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(record["result"]["best_accuracy"].get<double>(), 0.7);
  EXPECT_EQ(record["history"].size(), 1u);

  // A run whose schedule was fitted to end after 2 of its 10 epochs
  // completed those 2: it is stored as the two-epoch regime it annealed in.
  nasoa::Result fitted = cut;
  fitted.regime.warmup_epochs = 3;  // valid for its 10 epochs, not for 2
  fitted.stop_reason = "completed";
  fitted.scheduled_epochs = 2;
  fitted.epochs = {{1, 0.9, 0.6, 0.7, 1.0, 0}, {2, 0.8, 0.65, 0.72, 1.5, 0}};
  fitted.validation_accuracy = 0.72;
  ASSERT_TRUE(kept.record(*task_, nasoa::Plan{}, fitted));
  std::ifstream log_after(fs::path(kept.state_dir()) / "experience.log");
  while (std::getline(log_after, line)) last = line;
  const auto fitted_record = nlohmann::json::parse(last.substr(last.find(' ') + 1));
  EXPECT_EQ(fitted_record["regime"]["epochs"], 2);
  EXPECT_LT(fitted_record["regime"]["warmup_epochs"].get<double>(), 2.0);
  EXPECT_EQ(fitted_record["history"].size(), 2u);
  // A fitted end past the regime's epochs, or before the epochs the result
  // holds, is no result of it.
  for (const int impossible_end : {11, 1}) {
    fitted.scheduled_epochs = impossible_end;
    EXPECT_TRUE(nasoa::testing::throws_error([&] { kept.record(*task_, nasoa::Plan{}, fitted); },
                                             nasoa::ErrorCode::kInvalidArgument,
                                             "scheduled_epochs = " + std::to_string(impossible_end)));
  }

  // A CSV task validated on a folder of its own images.
  std::ofstream csv(dir_ / "list.csv");
  for (const char* c : {"dark", "bright"})
    for (int i = 0; i < 12; ++i) csv << "task/" << c << "/" << i << ".png," << c << "\n";
  csv.close();
  nasoa::TaskOptions on_itself;
  on_itself.validation_dir = (dir_ / "task").string();
  EXPECT_EQ(code_of([&] { nasoa::Task::from_csv((dir_ / "list.csv").string(), on_itself); }),
            nasoa::ErrorCode::kInvalidArgument);

  // A class whose images are all in the validation folder: never trained on.
  fs::create_directories(dir_ / "train/dark");
  fs::create_directories(dir_ / "train/bright");
  for (int i = 0; i < 3; ++i)
    fs::copy_file(dir_ / "task/dark" / (std::to_string(i) + ".png"),
                  dir_ / "train/dark" / (std::to_string(i) + ".png"));
  std::ofstream(dir_ / "train/bright/0.png") << "not an image";
  nasoa::TaskOptions validated;
  validated.validation_dir = (dir_ / "task").string();
  EXPECT_TRUE(nasoa::testing::throws_error([&] { nasoa::Task::from_folder((dir_ / "train").string(), validated); },
                                           nasoa::ErrorCode::kInvalidArgument, "'bright' has no usable training image"))
      << "a class with no training image was accepted";
}

}  // namespace
