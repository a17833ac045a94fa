// Adapter::plan, fine_tune(plan) and record through the public API only: the
// default plan without experience, plans held to the budget by the device
// profile, and a record that the next Adapter on the same state learns from
// while the shipped bundle stays untouched.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nasoa/nasoa.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <regex>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "../support/scoped_env.h"

namespace fs = std::filesystem;

extern std::string g_bundle;  // zoo_api_test.cpp: --bundle=DIR (input 32, two models)
extern std::string g_shipped_bundle;  // the same, with shipped experience and predictor; may not exist

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    files[fs::relative(e.path(), dir).string()] = e.is_regular_file() ? read_all(e.path()) : "(not a file)";
  return files;
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

// The CPU device profile cached in `state_dir`: the one file named for the
// compute threads it was measured with; empty (and a failure) if there is
// not exactly one.
fs::path cpu_profile_in(const fs::path& state_dir) {
  static const std::regex name(R"(device-profile-cpu-[1-9][0-9]*-threads\.json)");
  std::vector<fs::path> found;
  if (fs::is_directory(state_dir))
    for (const auto& e : fs::directory_iterator(state_dir))
      if (std::regex_match(e.path().filename().string(), name)) found.push_back(e.path());
  if (found.size() != 1) {
    ADD_FAILURE() << state_dir << " holds " << found.size() << " CPU profiles named for their threads";
    return {};
  }
  return found.front();
}

class PlanApiTest : public ::testing::Test {
 protected:
  // One profile measured for the tests that need one, so that only the test
  // of profiling itself pays for another.
  static const fs::path& suite_profile() {
    if (profile_.empty()) {
      suite_dir_ = fs::temp_directory_path() / ("nasoa-plan-api-suite-" + std::to_string(::getpid()));
      fs::remove_all(suite_dir_);
      const nasoa::Zoo zoo = nasoa::Zoo::open(g_bundle);
      nasoa::Adapter adapter(zoo, options_for(suite_dir_ / "state"));
      EXPECT_GT(adapter.calibrate(), 0);
      EXPECT_EQ(adapter.calibrate(), 0) << "measured once, then kept";
      profile_ = cpu_profile_in(adapter.state_dir());
    }
    return profile_;
  }
  static void TearDownTestSuite() {
    if (!suite_dir_.empty()) fs::remove_all(suite_dir_);
  }

  static nasoa::AdapterOptions options_for(const fs::path& state) {
    nasoa::AdapterOptions options;
    options.device = nasoa::DevicePreference::kCpu;
    options.state_dir = state.string();
    return options;
  }

  void SetUp() override {
    if (g_bundle.empty()) GTEST_SKIP() << "run with --bundle=DIR (ctest passes it)";
    dir_ = fs::temp_directory_path() / ("nasoa-plan-api-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    cv::RNG rng(5);
    for (int c = 0; c < 2; ++c) {
      const fs::path cls = dir_ / "task" / (c ? "bright" : "dark");
      fs::create_directories(cls);
      for (int i = 0; i < 12; ++i) {
        cv::Mat m(32, 32, CV_8UC3);
        rng.fill(m, cv::RNG::UNIFORM, c ? 150 : 0, c ? 255 : 100);
        cv::imwrite((cls / (std::to_string(i) + ".png")).string(), m);
      }
    }
    nasoa::TaskOptions options;
    options.image_side = 32;
    task_ = std::make_unique<nasoa::Task>(nasoa::Task::from_folder((dir_ / "task").string(), options));
    zoo_ = std::make_unique<nasoa::Zoo>(nasoa::Zoo::open(g_bundle));
    base_.validation_fraction = 0.25;  // 3 of each class's 12 images: 18 to train on
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The plan for an hour on `suffix`'s bundle, and the model with the long
  // runs; nothing (the test skips) without the fixture.
  std::optional<std::pair<nasoa::Plan, std::string>> plan_an_hour(const std::string& suffix) {
    const fs::path bundle = g_shipped_bundle + suffix;
    if (g_shipped_bundle.empty() || !fs::exists(bundle / "experience.log")) return std::nullopt;
    const nasoa::Zoo zoo = nasoa::Zoo::open(bundle.string());
    EXPECT_GE(zoo.models().size(), 2u) << "the fixture needs a second model to cap";
    std::string long_run_model = zoo.models().front().name;
    for (const nasoa::ModelInfo& m : zoo.models()) long_run_model = std::min(long_run_model, m.name);
    nasoa::AdapterOptions options = options_for(dir_ / ("state" + suffix));
    options.min_experience = 1;
    nasoa::Adapter adapter(zoo, options);
    adapter.calibrate();  // times the experience's batch size (8)
    nasoa::Budget budget;
    budget.seconds = 3600;  // time for hundreds of epochs
    return std::pair{adapter.plan(*task_, budget), long_run_model};
  }

  // The suite's profile, changed by `change`, cached as the profile of an
  // Adapter with the state directory `state`; returns the cached file.
  fs::path cache_changed_profile(const fs::path& state, const std::function<void(nlohmann::json&)>& change) const {
    std::ifstream in(suite_profile());
    nlohmann::json profile = nlohmann::json::parse(in);
    change(profile);
    // Named as the suite's: the same options, so the same threads.
    const fs::path cached =
        fs::path(nasoa::Adapter(*zoo_, options_for(state)).state_dir()) / suite_profile().filename();
    fs::create_directories(cached.parent_path());
    std::ofstream(cached) << profile.dump(2);
    return cached;
  }

  nasoa::AdapterOptions profiled_options(const fs::path& state, int min_experience = 10) const {
    nasoa::AdapterOptions options = options_for(state);
    options.device_profile = suite_profile().string();
    options.min_experience = min_experience;
    return options;
  }

  // A three-epoch run of the zoo's first model with the base regime, as if
  // made elsewhere: what a test records to give the predictor experience.
  nasoa::Result made_elsewhere() const {
    nasoa::Result made;
    made.regime = base_;
    made.regime.model = zoo_->models().front().name;
    made.regime.epochs = 3;
    made.epochs = {{1, 0.9, 0.6, 0.5, 1.0, 0}, {2, 0.7, 0.7, 0.75, 2.0, 0}, {3, 0.6, 0.8, 0.7, 3.0, 0}};
    made.validation_accuracy = 0.75;
    made.best_epoch = 2;
    made.wall_seconds = 3.5;
    made.stop_reason = "completed";
    made.device = "cpu";
    made.energy_meter = "none";
    return made;
  }

  static fs::path suite_dir_, profile_;
  fs::path dir_;
  std::unique_ptr<nasoa::Task> task_;
  std::unique_ptr<nasoa::Zoo> zoo_;
  nasoa::Regime base_;
};

fs::path PlanApiTest::suite_dir_, PlanApiTest::profile_;

TEST(RegimeApiTest, ACosineWarmUpMustEndBeforeTheRunDoes) {
  nasoa::Regime r;
  r.model = "m";
  r.epochs = 2;
  r.warmup_epochs = 2;
  try {
    nasoa::validate(r);
    ADD_FAILURE() << "a warm-up as long as the run was accepted";
  } catch (const nasoa::Error& e) {
    EXPECT_EQ(e.code(), nasoa::ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("warmup_epochs = 2: expected less than epochs (2)"), std::string::npos)
        << e.what();
  }
  r.warmup_epochs = 1.5;
  EXPECT_NO_THROW(nasoa::validate(r));
  r.warmup_epochs = 3;  // the step schedule has no warm-up
  r.schedule = nasoa::ScheduleKind::kStep;
  EXPECT_NO_THROW(nasoa::validate(r));
}

TEST(RegimeApiTest, ValidateNamesTheFieldAtFaultIncludingEnumsOutOfRange) {
  nasoa::Regime ok;
  ok.model = "m";
  EXPECT_NO_THROW(nasoa::validate(ok));
  const auto message = [](const nasoa::Regime& r) -> std::string {
    try {
      nasoa::validate(r);
    } catch (const nasoa::Error& e) {
      EXPECT_EQ(e.code(), nasoa::ErrorCode::kInvalidArgument);
      return e.what();
    }
    return "(accepted)";
  };
  nasoa::Regime r = ok;
  r.optimizer = static_cast<nasoa::OptimizerKind>(7);
  EXPECT_NE(message(r).find("regime field optimizer = 7"), std::string::npos) << message(r);
  r = ok;
  r.schedule = static_cast<nasoa::ScheduleKind>(9);
  EXPECT_NE(message(r).find("regime field schedule = 9"), std::string::npos) << message(r);
  r = ok;
  r.momentum = 1;
  EXPECT_NE(message(r).find("regime field momentum = 1"), std::string::npos) << message(r);
}

TEST_F(PlanApiTest, WithoutExperienceItIsTheDefaultPlanAndTheProfileIsMeasuredOnce) {
  nasoa::Adapter adapter(*zoo_, options_for(dir_ / "state"));
  nasoa::Budget budget;
  budget.seconds = 20;
  const nasoa::Plan plan = adapter.plan(*task_, budget, base_);

  EXPECT_EQ(plan.source, nasoa::PlanSource::kDefault);
  EXPECT_EQ(plan.shipped_records, 0u);
  EXPECT_EQ(plan.device_records, 0u);
  EXPECT_FALSE(plan.best.predicted_accuracy.has_value());
  EXPECT_NE(plan.best.why.find("no experience"), std::string::npos) << plan.best.why;
  const nasoa::ModelInfo* largest = &zoo_->models().front();
  for (const nasoa::ModelInfo& m : zoo_->models())
    if (m.parameters > largest->parameters) largest = &m;
  EXPECT_EQ(plan.best.regime.model, largest->name);
  EXPECT_DOUBLE_EQ(plan.best.regime.learning_rate, 0.01);
  EXPECT_EQ(plan.best.regime.frozen_stages, 0);
  EXPECT_EQ(plan.best.regime.batch_size, 32);
  EXPECT_EQ(plan.best.regime.epochs, plan.best.max_fitting_epochs);
  EXPECT_DOUBLE_EQ(plan.best.regime.validation_fraction, 0.25);  // from the base regime
  ASSERT_EQ(plan.alternatives.size(), zoo_->models().size() - 1);
  EXPECT_NE(plan.alternatives[0].regime.model, largest->name);

  EXPECT_TRUE(plan.profiled);
  EXPECT_GT(plan.profiling_seconds, 0);
  EXPECT_GE(plan.planning_seconds, plan.profiling_seconds);
  // Named for the threads it was measured with, the default's included.
  const fs::path profile = cpu_profile_in(adapter.state_dir());
  ASSERT_FALSE(profile.empty());
  {
    std::ifstream in(profile);
    const int threads = nlohmann::json::parse(in).at("device").at("threads").get<int>();
    EXPECT_EQ(profile.filename().string(), "device-profile-cpu-" + std::to_string(threads) + "-threads.json");
  }
  EXPECT_EQ(fs::path(adapter.state_dir()).parent_path(), dir_ / "state");
  EXPECT_FALSE(adapter.plan(*task_, budget, base_).profiled);
  nasoa::Adapter again(*zoo_, options_for(dir_ / "state"));
  const nasoa::Plan cached = again.plan(*task_, budget, base_);
  EXPECT_FALSE(cached.profiled);
  EXPECT_EQ(cached.best.regime.model, plan.best.regime.model);

  // The JSON carries the plan whole.
  const nasoa::Plan back = nasoa::Plan::from_json(plan.to_json());
  EXPECT_EQ(back.source, plan.source);
  EXPECT_EQ(back.best.regime.model, plan.best.regime.model);
  EXPECT_EQ(back.best.regime.epochs, plan.best.regime.epochs);
  EXPECT_DOUBLE_EQ(back.best.predicted_seconds, plan.best.predicted_seconds);
  EXPECT_DOUBLE_EQ(back.planning_seconds, plan.planning_seconds);
  EXPECT_EQ(back.alternatives.size(), plan.alternatives.size());
  EXPECT_EQ(back.to_json(), plan.to_json());
  std::string message;
  std::string damaged = plan.to_json();
  damaged.replace(damaged.find("\"epochs\": "), 10, "\"epochs\": -");
  EXPECT_EQ(code_of([&] { nasoa::Plan::from_json(damaged); }, &message), nasoa::ErrorCode::kCorrupt);
  EXPECT_NE(message.find("epochs"), std::string::npos) << message;
  // planning_joules: a plan of 0.3.4 has none (it counted no energy); a
  // negative one is refused by name.
  nasoa::Plan dear = plan;
  dear.planning_joules = 12.5;
  EXPECT_DOUBLE_EQ(nasoa::Plan::from_json(dear.to_json()).planning_joules, 12.5);
  nlohmann::json older = nlohmann::json::parse(dear.to_json());
  ASSERT_TRUE(older.contains("planning_joules"));
  older.erase("planning_joules");
  EXPECT_EQ(nasoa::Plan::from_json(older.dump()).planning_joules, 0.0);
  older["planning_joules"] = -3;
  EXPECT_EQ(code_of([&] { nasoa::Plan::from_json(older.dump()); }, &message), nasoa::ErrorCode::kCorrupt);
  EXPECT_NE(message.find("planning_joules"), std::string::npos) << message;

  // A budget whose JSON form would not read back is refused up front; a
  // hand-made plan holding such a number is refused by to_json, naming it.
  nasoa::Budget nan_joules = budget;
  nan_joules.joules = std::nan("");
  EXPECT_EQ(code_of([&] { adapter.plan(*task_, nan_joules, base_); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("budget field joules = nan"), std::string::npos) << message;
  // No time limit is a budget of energy alone: without joules, no budget.
  nasoa::Budget endless = budget;
  endless.seconds = HUGE_VAL;
  EXPECT_EQ(code_of([&] { adapter.plan(*task_, endless, base_); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("budget has no limit"), std::string::npos) << message;
  nasoa::Plan edited = plan;
  edited.budget_joules = HUGE_VAL;
  EXPECT_EQ(code_of([&] { (void)edited.to_json(); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("budget.joules"), std::string::npos) << message;
  // 200,000 nested brackets parse; reporting their type must not recurse.
  const std::string deep = "{\"source\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
  EXPECT_EQ(code_of([&] { nasoa::Plan::from_json(deep); }, &message), nasoa::ErrorCode::kCorrupt);
  EXPECT_NE(message.find("source"), std::string::npos) << message;
}

TEST_F(PlanApiTest, APlanWaitsForAnotherProcessMeasuringTheProfileNoLongerThanItsBudget) {
  nasoa::Adapter adapter(*zoo_, options_for(dir_ / "state"));
  const fs::path state = adapter.state_dir();
  fs::create_directories(state);
  // Another process measuring the profile holds the state folder's lock (an
  // open description of its own, as a process has).
  const int other = ::open(state.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(other, 0);
  ASSERT_EQ(::flock(other, LOCK_EX), 0);
  nasoa::Budget budget;
  budget.seconds = 4;  // 90 % of it, less 1.5 s to start and save: 2.1 s to wait
  std::string message;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(code_of([&] { adapter.plan(*task_, budget, base_); }, &message), nasoa::ErrorCode::kInvalidArgument);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ::close(other);
  EXPECT_NE(message.find(state.string() + ": another process is measuring"), std::string::npos) << message;
  EXPECT_NE(message.find("Adapter::calibrate()"), std::string::npos) << message;
  EXPECT_GE(waited, 2.0) << "gave up before its budget was spent";
  EXPECT_LT(waited, 30.0) << "waited on past its 4 s budget";
  for (const auto& e : fs::directory_iterator(state))
    EXPECT_EQ(e.path().filename().string().rfind("device-profile-", 0), std::string::npos)
        << e.path() << ": measured without the lock";

  // A budget of energy alone has no time limit: it waits for the other
  // process however long that takes (here 0.5 s), then measures and plans.
  nasoa::AdapterOptions energy_options = options_for(dir_ / "state");
  energy_options.sysfs_root = (dir_ / "empty-sysfs").string();  // no meter: charged at the estimate
  energy_options.estimate_watts = 10;
  nasoa::Adapter energy_adapter(*zoo_, energy_options);
  ASSERT_EQ(energy_adapter.state_dir(), adapter.state_dir());
  const int again = ::open(state.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(again, 0);
  ASSERT_EQ(::flock(again, LOCK_EX), 0);
  std::thread other_process_finishes([again] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ::close(again);
  });
  nasoa::Budget joules;
  joules.joules = 600;
  std::optional<nasoa::Plan> planned;
  EXPECT_NO_THROW(planned = energy_adapter.plan(*task_, joules, base_));
  other_process_finishes.join();
  ASSERT_TRUE(planned.has_value());
  EXPECT_TRUE(planned->profiled);
  EXPECT_GE(planned->profiling_seconds, 0.4) << "it did not wait for the lock";

  // calibrate() that waits while another process measures, and then finds
  // the profile that process saved, measured nothing itself: 0.
  const fs::path other_state = dir_ / "other-state";
  nasoa::Adapter waiting(*zoo_, options_for(other_state));
  const fs::path waiting_state = waiting.state_dir();
  fs::create_directories(waiting_state);
  const int measuring = ::open(waiting_state.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(measuring, 0);
  ASSERT_EQ(::flock(measuring, LOCK_EX), 0);
  const fs::path saved = suite_profile();  // the same options: the same device, threads and heap
  std::thread saves_its_profile([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    fs::copy_file(saved, waiting_state / saved.filename());
    ::close(measuring);
  });
  const double measured = waiting.calibrate();
  saves_its_profile.join();
  EXPECT_EQ(measured, 0.0) << "the wait for another process's profile counted as measuring";
}

TEST_F(PlanApiTest, EveryPlanFitsTheBudgetByTheProfilesEstimate) {
  nasoa::Adapter adapter(*zoo_, profiled_options(dir_ / "state", /*min_experience=*/1));
  // A run made elsewhere, recorded with a plan of the caller's, gives the
  // predictor something to learn from, so that the grid is planned (at the
  // run's batch size, the one the predictor has seen).
  EXPECT_TRUE(adapter.record(*task_, nasoa::Plan{}, made_elsewhere()));

  nasoa::Budget budget;
  budget.seconds = 4;
  budget.spent_seconds = 0.5;
  const nasoa::Plan plan = adapter.plan(*task_, budget, base_);
  EXPECT_EQ(plan.source, nasoa::PlanSource::kPredictor);
  EXPECT_FALSE(plan.profiled);
  EXPECT_EQ(plan.alternatives.size(), 5u);
  EXPECT_DOUBLE_EQ(plan.usable_seconds, 0.9 * budget.seconds);

  // The estimate recomputed here from the profile's own numbers.
  std::ifstream in(suite_profile());
  const nlohmann::json profile = nlohmann::json::parse(in);
  const auto step_seconds = [&](const nasoa::Regime& r) {
    for (const auto& m : profile.at("models"))
      if (m.at("name") == r.model)
        for (const auto& s : m.at("training"))
          if (s.at("batch_size") == r.batch_size && s.at("frozen_stages") == r.frozen_stages)
            return s.at("step_seconds").get<double>();
    ADD_FAILURE() << "the profile has no step of " << r.model << " at batch " << r.batch_size;
    return 0.0;
  };
  std::vector<nasoa::PlannedRun> runs{plan.best};
  runs.insert(runs.end(), plan.alternatives.begin(), plan.alternatives.end());
  for (const nasoa::PlannedRun& p : runs) {
    SCOPED_TRACE(p.regime.model);
    const double steps = p.regime.epochs * std::ceil(18.0 / p.regime.batch_size);
    EXPECT_NEAR(p.training_seconds, steps * step_seconds(p.regime), 1e-9);
    EXPECT_GE(p.predicted_seconds, budget.spent_seconds + p.training_seconds + p.evaluation_seconds);
    EXPECT_LE(p.predicted_seconds, plan.usable_seconds);
    EXPECT_GE(p.max_fitting_epochs, p.regime.epochs);
  }

  nasoa::Budget tiny;
  tiny.seconds = 1.2;  // 1.08 s usable: less than starting and saving the smallest model take
  std::string message;
  EXPECT_EQ(code_of([&] { adapter.plan(*task_, tiny, base_); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("time budget too small"), std::string::npos) << message;
  nasoa::TaskOptions other_side;
  other_side.image_side = 48;
  const nasoa::Task big = nasoa::Task::from_folder((dir_ / "task").string(), other_side);
  EXPECT_EQ(code_of([&] { adapter.plan(big, budget); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("48 px"), std::string::npos) << message;
}

TEST_F(PlanApiTest, ARegimeOfTheCallersUsesTheProfileKeptInTheState) {
  // Without AdapterOptions::device_profile, fine_tune(task, regime, ...)
  // reads the profile an earlier plan() kept (so that even its first step
  // has a predicted time). Its layout choice, flipped, shows it was read.
  nasoa::Regime regime = base_;
  regime.model = zoo_->models().front().name;
  regime.epochs = 1;
  std::string flipped;
  cache_changed_profile(dir_ / "state", [&](nlohmann::json& profile) {
    for (auto& m : profile.at("models"))
      if (m.at("name") == regime.model) {
        flipped = m.at("training_layout") == "channels-last" ? "channels-first" : "channels-last";
        m["training_layout"] = flipped;
      }
  });
  ASSERT_FALSE(flipped.empty()) << "the profile has no " << regime.model;
  nasoa::Budget budget;
  budget.seconds = 60;
  nasoa::Adapter adapter(*zoo_, options_for(dir_ / "state"));
  const nasoa::Result r = adapter.fine_tune(*task_, regime, budget, (dir_ / "model").string());
  EXPECT_EQ(r.memory_layout, flipped);
  EXPECT_EQ(r.stop_reason, "completed");
  // A state with no profile kept: trained without one, and none is measured.
  nasoa::Adapter fresh(*zoo_, options_for(dir_ / "fresh-state"));
  EXPECT_EQ(fresh.fine_tune(*task_, regime, budget, (dir_ / "model2").string()).stop_reason, "completed");
  EXPECT_FALSE(fs::exists(dir_ / "fresh-state")) << "fine_tune measured or wrote a profile";
}

TEST_F(PlanApiTest, FineTunesInTheLayoutTheProfileTimed) {
  // The profile says which layout each model's steps were timed in; training
  // follows it so that the profile's predictions hold. Flip the measured
  // choice of one model, and the run follows the file, not its own trial.
  std::ifstream in(suite_profile());
  nlohmann::json profile = nlohmann::json::parse(in);
  nasoa::Regime regime = base_;
  regime.model = zoo_->models().front().name;
  regime.epochs = 1;
  std::string flipped;
  for (auto& m : profile.at("models"))
    if (m.at("name") == regime.model) {
      flipped = m.at("training_layout") == "channels-last" ? "channels-first" : "channels-last";
      m["training_layout"] = flipped;
    }
  ASSERT_FALSE(flipped.empty()) << "the profile has no " << regime.model;
  const fs::path edited = dir_ / "profile.json";
  std::ofstream(edited) << profile.dump(2);

  nasoa::AdapterOptions options = options_for(dir_ / "state");
  options.device_profile = edited.string();
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Budget budget;
  budget.seconds = 60;
  const nasoa::Result r = adapter.fine_tune(*task_, regime, budget, (dir_ / "model").string());
  EXPECT_EQ(r.memory_layout, flipped);
  EXPECT_EQ(r.stop_reason, "completed");

  // More frozen stages than the model has is a bad regime, profile or not
  // (with one it was "no measurement", kNotFound).
  nasoa::Regime too_frozen = regime;
  too_frozen.frozen_stages = 99;
  std::string message;
  EXPECT_EQ(code_of([&] { adapter.fine_tune(*task_, too_frozen, budget, (dir_ / "model2").string()); }, &message),
            nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("frozen_stages = 99"), std::string::npos) << message;

  // A profile of other networks (one encoding differs) is refused, by
  // fine_tune as by plan; one that measured only some of the zoo's models
  // plans with those.
  nlohmann::json other = profile;
  other["bundle"]["models"][0]["encoding"] = "2-_8_1";
  const fs::path other_path = dir_ / "other-profile.json";
  std::ofstream(other_path) << other.dump(2);
  nasoa::AdapterOptions other_options = options_for(dir_ / "state3");
  other_options.device_profile = other_path.string();
  nasoa::Adapter other_adapter(*zoo_, other_options);
  EXPECT_EQ(code_of([&] { other_adapter.fine_tune(*task_, regime, budget, (dir_ / "model3").string()); }, &message),
            nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("measured for other models"), std::string::npos) << message;
  EXPECT_EQ(code_of([&] { other_adapter.plan(*task_, budget); }, &message), nasoa::ErrorCode::kInvalidArgument);
  nlohmann::json some = profile;
  some["models"].erase(some["models"].begin());
  const fs::path some_path = dir_ / "some-profile.json";
  std::ofstream(some_path) << some.dump(2);
  nasoa::AdapterOptions some_options = options_for(dir_ / "state4");
  some_options.device_profile = some_path.string();
  const nasoa::Plan some_plan = nasoa::Adapter(*zoo_, some_options).plan(*task_, budget);
  EXPECT_NE(some_plan.best.regime.model, some["bundle"]["models"][0]["name"].get<std::string>());

  // A profile whose field holds 200,000 nested arrays is refused, naming it
  // (describing the value recursed until the stack ran out).
  const fs::path deep = dir_ / "deep-profile.json";
  std::ofstream(deep) << "{\"format_version\": " << std::string(200000, '[') << std::string(200000, ']') << "}";
  nasoa::AdapterOptions deep_options = options_for(dir_ / "state2");
  deep_options.device_profile = deep.string();
  EXPECT_EQ(code_of([&] { nasoa::Adapter(*zoo_, deep_options).calibrate(); }, &message), nasoa::ErrorCode::kCorrupt);
  EXPECT_NE(message.find("format_version"), std::string::npos) << message;
}

TEST_F(PlanApiTest, AProfileOfAnOlderFormatIsMeasuredAgain) {
  // A version-1 profile timed every model channels-first: kept, it would keep
  // the device from training in the faster layout.
  const fs::path cached = cache_changed_profile(dir_ / "state", [](nlohmann::json& old) {
    old["format_version"] = 1;
    for (auto& m : old.at("models")) m.erase("training_layout");
  });
  EXPECT_GT(nasoa::Adapter(*zoo_, options_for(dir_ / "state")).calibrate(), 0) << "measured again";
  std::ifstream again(cached);
  const nlohmann::json now = nlohmann::json::parse(again);
  EXPECT_GT(now.at("format_version").get<int>(), 1);
  for (const auto& m : now.at("models")) EXPECT_TRUE(m.contains("training_layout")) << m.at("name");
}

TEST_F(PlanApiTest, AProfileTimedWithTheHeapSetOtherwiseIsMeasuredAgain) {
  bool kept = false;
  const fs::path cached = cache_changed_profile(dir_ / "state", [&](nlohmann::json& other) {
    kept = other.at("device").at("kept_freed_memory").get<bool>();
    other["device"]["kept_freed_memory"] = !kept;
  });
  EXPECT_GT(nasoa::Adapter(*zoo_, options_for(dir_ / "state")).calibrate(), 0) << "measured again";
  std::ifstream again(cached);
  EXPECT_EQ(nlohmann::json::parse(again).at("device").at("kept_freed_memory").get<bool>(), kept);
  // Kept as it is, it is used.
  EXPECT_EQ(nasoa::Adapter(*zoo_, options_for(dir_ / "state")).calibrate(), 0);
}

TEST_F(PlanApiTest, AGivenProfileTimedOtherwiseIsUsedAndThePlanSaysSo) {
  nasoa::Budget budget;
  budget.seconds = 60;
  const auto note_naming = [](const nasoa::Plan& plan, const std::string& path) {
    for (const std::string& n : plan.notes)
      if (n.rfind(path + ": ", 0) == 0) return n;
    return std::string();
  };
  // As measured for these options: nothing to say.
  const nasoa::Plan plain = nasoa::Adapter(*zoo_, profiled_options(dir_ / "state")).plan(*task_, budget);
  EXPECT_EQ(note_naming(plain, suite_profile().string()), "") << "a note on a profile that fits";

  std::ifstream in(suite_profile());
  nlohmann::json profile = nlohmann::json::parse(in);
  const int threads = profile.at("device").at("threads").get<int>();
  profile["device"]["threads"] = threads + 1;
  const fs::path other = dir_ / "more-threads.json";
  std::ofstream(other) << profile.dump(2);
  nasoa::AdapterOptions options = profiled_options(dir_ / "state2");
  options.device_profile = other.string();
  const nasoa::Plan plan = nasoa::Adapter(*zoo_, options).plan(*task_, budget);
  EXPECT_FALSE(plan.profiled) << "a given profile is used, not measured again";
  const std::string note = note_naming(plan, other.string());
  EXPECT_NE(note.find("measured with " + std::to_string(threads + 1) + " threads, fine-tuning uses " +
                      std::to_string(threads)),
            std::string::npos)
      << ::testing::PrintToString(plan.notes);

  // Its steps timed with the heap set otherwise than fine-tuning will set it.
  profile["device"]["threads"] = threads;
  const bool kept = profile.at("device").at("kept_freed_memory").get<bool>();
  profile["device"]["kept_freed_memory"] = !kept;
  const fs::path heap = dir_ / "other-heap.json";
  std::ofstream(heap) << profile.dump(2);
  options.device_profile = heap.string();
  const nasoa::Plan heap_plan = nasoa::Adapter(*zoo_, options).plan(*task_, budget);
  EXPECT_NE(note_naming(heap_plan, heap.string()).find(std::string("steps were timed with the heap ") +
                                                       (kept ? "not " : "") + "keeping freed memory"),
            std::string::npos)
      << ::testing::PrintToString(heap_plan.notes);
}

TEST_F(PlanApiTest, ABundlesShippedPredictorPlansWithoutReadingItsRecords) {
  if (g_shipped_bundle.empty() || !fs::exists(fs::path(g_shipped_bundle) / "experience.log"))
    GTEST_SKIP() << "no shipped bundle (--shipped-bundle=DIR; its fixture needs Fashion-MNIST)";
  const fs::path bundle = dir_ / "shipped";
  fs::copy(g_shipped_bundle, bundle, fs::copy_options::recursive);
  std::size_t lines = 0;
  {
    std::ifstream log(bundle / "experience.log");
    for (std::string line; std::getline(log, line);) ++lines;
  }
  ASSERT_GT(lines, 0u);
  const nasoa::Zoo zoo = nasoa::Zoo::open(bundle.string());

  // A device profile measured for it times the batch size its experience
  // was gathered at (8, by the fixture), beside 16 and 32, so that the
  // predictor's plans have step times to keep to.
  nasoa::Adapter measuring(zoo, options_for(dir_ / "measured"));
  EXPECT_GT(measuring.calibrate(), 0);
  std::ifstream measured(cpu_profile_in(measuring.state_dir()));
  EXPECT_EQ(nlohmann::json::parse(measured).at("settings").at("batch_sizes"), nlohmann::json({8, 16, 32}));

  // Damaged after the bundle was opened (verified): a plan that read the
  // records would refuse them, kCorrupt. The bundle's predictor summarises
  // them, and that is all planning needs.
  {
    std::ofstream damage(bundle / "experience.log", std::ios::binary | std::ios::trunc);
    damage << "not the records the manifest vouches for\n";
  }
  nasoa::Budget budget;
  budget.seconds = 60;
  for (const int min_experience : {1, 1000}) {  // the predictor's plan, then the default plan
    nasoa::Adapter adapter(zoo, profiled_options(dir_ / "state", min_experience));
    const nasoa::Plan plan = adapter.plan(*task_, budget);
    EXPECT_EQ(plan.shipped_records, lines) << min_experience;
    EXPECT_EQ(plan.source, min_experience == 1 ? nasoa::PlanSource::kPredictor : nasoa::PlanSource::kDefault);
    EXPECT_EQ(plan.device_records, 0u);
  }
}

// The fixtures' made-up experience (tests/cli/ship_public_api_bundle.sh):
// accuracy rises with the steps trained, on tasks of 18 to 576 training
// images at 1 to 32 epochs, and for the model first by name at 64 and 128
// epochs too. On this task 512 epochs are as many steps as larger tasks
// reached in 128, which the trees score higher; no run of the experience
// went past 128, and no run of the other models past 32.
TEST_F(PlanApiTest, APredictorPlansNoMoreEpochsThanItsExperienceRan) {
  const auto planned = plan_an_hour("-steps");
  if (!planned) GTEST_SKIP() << "no shipped bundle (--shipped-bundle=DIR; its fixture needs Fashion-MNIST)";
  const auto& [plan, long_run_model] = *planned;
  ASSERT_EQ(plan.source, nasoa::PlanSource::kPredictor);
  EXPECT_EQ(plan.best.regime.model, long_run_model) << "its runs are as good, and longer";
  EXPECT_EQ(plan.best.regime.epochs, 128) << "more steps pay, up to the longest run of the experience";
  EXPECT_EQ(plan.best.why, "the longest run of the predictor's experience (128 epochs)");
  for (const nasoa::PlannedRun& a : plan.alternatives)
    EXPECT_LE(a.regime.epochs, a.regime.model == long_run_model ? 128 : 32) << a.regime.model << ": " << a.why;
}

TEST_F(PlanApiTest, EachModelPlansNoMoreEpochsThanItsOwnRuns) {
  const auto planned = plan_an_hour("-steps-capped");
  if (!planned) GTEST_SKIP() << "no shipped bundle (--shipped-bundle=DIR; its fixture needs Fashion-MNIST)";
  const auto& [plan, long_run_model] = *planned;
  ASSERT_EQ(plan.source, nasoa::PlanSource::kPredictor);
  EXPECT_NE(plan.best.regime.model, long_run_model) << "the fixture makes it 20 points worse";
  EXPECT_EQ(plan.best.regime.epochs, 32) << "more steps pay, up to the longest run of that model";
  EXPECT_EQ(plan.best.why,
            "the longest run of " + plan.best.regime.model + " in the predictor's experience (32 epochs)");
  for (const nasoa::PlannedRun& a : plan.alternatives)
    EXPECT_LE(a.regime.epochs, a.regime.model == long_run_model ? 128 : 32) << a.regime.model << ": " << a.why;
}

TEST_F(PlanApiTest, TheProbeScoresEveryModelInsideThePlanningTime) {
  nasoa::AdapterOptions options = profiled_options(dir_ / "state");
  options.probe = true;
  options.probe_per_class = 4;
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Budget budget;
  budget.seconds = 10;
  const nasoa::Plan plan = adapter.plan(*task_, budget, base_);
  EXPECT_TRUE(plan.probe_used);
  ASSERT_EQ(plan.probe_scores.size(), zoo_->models().size());
  for (const nasoa::ModelInfo& m : zoo_->models()) {
    ASSERT_EQ(plan.probe_scores.count(m.name), 1u) << m.name;
    EXPECT_TRUE(std::isfinite(plan.probe_scores.at(m.name))) << m.name;
  }
  EXPECT_GT(plan.probe_seconds, 0);
  EXPECT_GE(plan.planning_seconds, plan.probe_seconds);
  EXPECT_GE(plan.best.predicted_seconds, plan.probe_seconds) << "the probe's time is spent from the budget";
  EXPECT_FALSE(nasoa::Adapter(*zoo_, profiled_options(dir_ / "state")).plan(*task_, budget, base_).probe_used);
}

TEST_F(PlanApiTest, ARecordTeachesTheNextAdapterAndLeavesTheBundleAlone) {
  const auto before = snapshot(g_bundle);
  nasoa::Adapter adapter(*zoo_, profiled_options(dir_ / "state"));
  nasoa::Budget budget;
  budget.seconds = 6;
  budget.spent_seconds = task_->ingest_seconds();
  // Timed from outside too: the result's own count could leave out what it forgot.
  const auto started = std::chrono::steady_clock::now();
  const nasoa::Plan plan = adapter.plan(*task_, budget, base_);
  ASSERT_EQ(plan.source, nasoa::PlanSource::kDefault);
  const nasoa::Result r = adapter.fine_tune(*task_, plan, budget, (dir_ / "model").string());
  const double outside = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_LE(r.wall_seconds, budget.seconds * 1.05 + 2);
  EXPECT_LE(budget.spent_seconds + outside, budget.seconds * 1.05 + 2)
      << "planning and fine-tuning took " << outside << " s";
  // What it may leave out: the moments between plan() and fine_tune()'s
  // clock, and after its last reading (freeing the network, returning).
  EXPECT_GE(r.wall_seconds, budget.spent_seconds + outside - 1.0) << "the result counted less time than passed";
  EXPECT_GE(r.spent_seconds, budget.spent_seconds + plan.planning_seconds);
  EXPECT_EQ(r.regime.model, plan.best.regime.model);
  EXPECT_TRUE(adapter.record(*task_, plan, r));
  EXPECT_FALSE(adapter.record(*task_, plan, r)) << "the same result is one run";
  ASSERT_FALSE(r.epochs.empty());
  nasoa::Result bad = r;
  bad.epochs[0].validation_accuracy = HUGE_VAL;
  std::string message;
  EXPECT_EQ(code_of([&] { adapter.record(*task_, plan, bad); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("epochs[0].validation_accuracy"), std::string::npos) << message;

  // Another Adapter, as a later process would open it, learns from the
  // record: one is too few to follow, but enough to predict the default plan.
  nasoa::Adapter later(*zoo_, profiled_options(dir_ / "state"));
  EXPECT_EQ(later.state_dir(), adapter.state_dir());
  const nasoa::Plan next = later.plan(*task_, budget, base_);
  EXPECT_EQ(next.source, nasoa::PlanSource::kDefault);
  EXPECT_EQ(next.device_records, 1u);
  EXPECT_NE(next.best.why.find("too little experience"), std::string::npos) << next.best.why;
  EXPECT_EQ(next.best.regime.model, plan.best.regime.model);
  ASSERT_TRUE(next.best.predicted_accuracy.has_value());
  double best = r.validation_accuracy;
  for (const nasoa::EpochResult& e : r.epochs) best = std::max(best, e.validation_accuracy);
  EXPECT_NEAR(*next.best.predicted_accuracy, best, 0.05) << "the one record's own plan";
  ASSERT_TRUE(next.best.predicted_std.has_value());
  EXPECT_GT(*next.best.predicted_std, 0);
  // And costs it at the speed the run showed against the device profile it
  // was planned with (runtime/adapt/device_speed.h).
  const int evaluated = int(std::count_if(r.epochs.begin(), r.epochs.end(),
                                          [](const nasoa::EpochResult& e) { return e.validation_accuracy >= 0; }));
  ASSERT_GE(evaluated, 4) << "fewer than three gaps between evaluated epochs tell no speed";
  EXPECT_EQ(std::count_if(plan.notes.begin(), plan.notes.end(),
                          [](const std::string& n) { return n.find("under its profile took") != std::string::npos; }),
            0);
  EXPECT_EQ(std::count_if(next.notes.begin(), next.notes.end(),
                          [](const std::string& n) {
                            return n.find("this device's last 1 fine-tune under its profile took") != std::string::npos;
                          }),
            1);
  nasoa::Adapter trusting(*zoo_, profiled_options(dir_ / "state", /*min_experience=*/1));
  EXPECT_EQ(trusting.plan(*task_, budget, base_).source, nasoa::PlanSource::kPredictor);
  // Predictions are for runs trained as the record was; a base that flips
  // images, which it did not, is told so.
  const auto mentions_flip = [](const nasoa::Plan& p) {
    return std::count_if(p.notes.begin(), p.notes.end(),
                         [](const std::string& n) { return n.find("horizontal_flip") != std::string::npos; });
  };
  EXPECT_EQ(mentions_flip(next), 0);
  nasoa::Regime flipping = base_;
  flipping.horizontal_flip = true;
  const nasoa::Plan flipped = later.plan(*task_, budget, flipping);
  ASSERT_EQ(mentions_flip(flipped), 1);
  EXPECT_TRUE(std::any_of(flipped.notes.begin(), flipped.notes.end(), [](const std::string& n) {
    return n.rfind("horizontal_flip is on, but it is off in the one run of the experience", 0) == 0;
  })) << ::testing::PrintToString(flipped.notes);
  EXPECT_TRUE(fs::exists(fs::path(later.state_dir()) / "experience.log"));
  EXPECT_TRUE(fs::exists(fs::path(later.state_dir()) / "predictor.json"));

  // Another state directory knows nothing of it.
  nasoa::Adapter elsewhere(*zoo_, profiled_options(dir_ / "other-state"));
  EXPECT_EQ(elsewhere.plan(*task_, budget, base_).device_records, 0u);

  EXPECT_EQ(snapshot(g_bundle), before) << "the shipped bundle was modified";
}

TEST_F(PlanApiTest, PredictorPlansKeepToTheBatchSizesItHasSeenUnlessNoneFits) {
  // The profile times batches of 16 and 32; here 16 is made nearly free, so
  // that a planner free to choose it would.
  std::ifstream in(suite_profile());
  nlohmann::json profile = nlohmann::json::parse(in);
  for (auto& m : profile.at("models"))
    for (auto& step : m.at("training"))
      if (step.at("batch_size") != 32) step["step_seconds"] = step.at("step_seconds").get<double>() * 1e-3;
  const fs::path cheap = dir_ / "cheap-profile.json";
  std::ofstream(cheap) << profile.dump(2);
  nasoa::AdapterOptions options = options_for(dir_ / "state");
  options.device_profile = cheap.string();
  options.min_experience = 1;
  nasoa::Adapter adapter(*zoo_, options);
  // One run at batch 32, recorded with a plan of the caller's: the experience.
  const nasoa::Result made = made_elsewhere();
  ASSERT_EQ(made.regime.batch_size, 32);
  ASSERT_TRUE(adapter.record(*task_, nasoa::Plan{}, made));

  nasoa::Budget budget;
  budget.seconds = 6;
  const nasoa::Plan plan = adapter.plan(*task_, budget, base_);
  ASSERT_EQ(plan.source, nasoa::PlanSource::kPredictor);
  std::vector<nasoa::PlannedRun> runs{plan.best};
  runs.insert(runs.end(), plan.alternatives.begin(), plan.alternatives.end());
  for (const nasoa::PlannedRun& p : runs) EXPECT_EQ(p.regime.batch_size, 32) << "a batch size no run it learnt from had";
  const auto note_of = [](const nasoa::Plan& p) {
    for (const std::string& n : p.notes)
      if (n.find("batch sizes the predictor has seen") != std::string::npos) return n;
    return std::string();
  };
  EXPECT_EQ(note_of(plan), "");

  // A memory cap that only batch 16 fits: planned there, and said so.
  for (auto& m : profile.at("models"))
    for (auto& step : m.at("training"))
      if (step.at("batch_size") != 16) step["rss_increase_bytes"] = std::int64_t(1) << 40;
  std::ofstream(cheap, std::ios::trunc) << profile.dump(2);
  nasoa::Adapter capped(*zoo_, options);
  budget.memory_mib = 64 * 1024;
  const nasoa::Plan small = capped.plan(*task_, budget, base_);
  EXPECT_EQ(small.best.regime.batch_size, 16);
  EXPECT_EQ(note_of(small).rfind("no plan at the batch sizes the predictor has seen (32) fits: ", 0), 0u)
      << note_of(small);
  EXPECT_NE(note_of(small).find("planned over the profile's (16, 32)"), std::string::npos) << note_of(small);
}

TEST_F(PlanApiTest, AFirstPlansProfilingStopsWhereItWouldSpendTheEnergyBudget) {
  // No meter, a fresh state folder and an estimate of 1 kW: the 100 J
  // budget's usable 90 J are 0.09 s of planning, far less than measuring the
  // profile takes, so profiling stops there instead of running on unbounded
  // as it did when an energy budget counted only the fine-tune.
  nasoa::AdapterOptions options = options_for(dir_ / "fresh-state");
  options.sysfs_root = (dir_ / "empty-sysfs").string();
  options.estimate_watts = 1000;
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Budget budget;
  budget.joules = 100;
  std::string message;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(code_of([&] { adapter.plan(*task_, budget, base_); }, &message), nasoa::ErrorCode::kInvalidArgument);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_NE(message.find("measuring this device's profile used more than the 90 J it could have"), std::string::npos)
      << message;
  EXPECT_LT(took, 30.0) << "profiling ran on past its energy";
  // The energy is what stopped it: with enough, the same first plan profiles and plans.
  budget.joules = 1e7;
  std::optional<nasoa::Plan> plan;
  EXPECT_NO_THROW(plan = adapter.plan(*task_, budget, base_));
  ASSERT_TRUE(plan.has_value());
  EXPECT_TRUE(plan->profiled);
  EXPECT_NEAR(plan->planning_joules, 1000 * plan->planning_seconds, 1e-6);
}

TEST_F(PlanApiTest, AJouleBudgetWithoutAnyPowerFigureIsRefusedBeforeTheProfileIsMeasured) {
  // No meter (an empty sysfs root), no estimate, and a fresh state folder:
  // measuring the profile could not give watts, so it is not spent.
  nasoa::AdapterOptions options = options_for(dir_ / "fresh-state");
  options.sysfs_root = (dir_ / "empty-sysfs").string();
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Budget budget;
  budget.seconds = 60;
  budget.joules = 500;
  std::string message;
  EXPECT_EQ(code_of([&] { adapter.plan(*task_, budget, base_); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("set AdapterOptions::estimate_watts"), std::string::npos) << message;
  bool profile_written = false;
  if (fs::exists(dir_ / "fresh-state"))
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "fresh-state"))
      profile_written = profile_written || e.path().filename().string().rfind("device-profile", 0) == 0;
  EXPECT_FALSE(profile_written) << "the profile was measured for a plan that could not be made";
  // With an estimate, the same budget plans.
  options.estimate_watts = 10;
  nasoa::Adapter estimated(*zoo_, options);
  EXPECT_NO_THROW(estimated.plan(*task_, budget, base_));
}

TEST_F(PlanApiTest, ABudgetOfEnergyAlonePlansAndTrainsWithinItsJoules) {
  // No meter on an empty sysfs root: runs are charged at the estimate, and
  // plans costed at it, so the test holds on any machine.
  nasoa::AdapterOptions options = profiled_options(dir_ / "state");
  options.sysfs_root = (dir_ / "empty-sysfs").string();
  options.estimate_watts = 10;
  nasoa::Adapter adapter(*zoo_, options);
  nasoa::Budget budget;
  budget.joules = 60;  // 6 s at 10 W; no seconds: no time limit
  const nasoa::Plan plan = adapter.plan(*task_, budget, base_);
  EXPECT_EQ(plan.budget_seconds, 0.0) << "no time limit is recorded as 0, as JSON can hold it";
  EXPECT_EQ(plan.usable_seconds, 0.0);
  EXPECT_EQ(plan.budget_joules, 60.0);
  std::vector<nasoa::PlannedRun> runs{plan.best};
  runs.insert(runs.end(), plan.alternatives.begin(), plan.alternatives.end());
  for (const nasoa::PlannedRun& p : runs) {
    ASSERT_TRUE(p.predicted_joules.has_value()) << p.regime.model;
    EXPECT_LE(*p.predicted_joules, 0.9 * 60 + 1e-9) << p.regime.model;
    // Energy is the run's time at the estimated power, planning's included:
    // no meter measures, so planning is charged at the estimate too.
    EXPECT_NEAR(*p.predicted_joules, 10 * p.predicted_seconds, 1e-9 * 10 * p.predicted_seconds) << p.regime.model;
  }
  // Planning's own energy, at the same estimate, is counted for the fine-tune.
  EXPECT_GT(plan.planning_joules, 0.0);
  EXPECT_NEAR(plan.planning_joules, 10 * plan.planning_seconds, 1e-9);
  const nasoa::Plan back = nasoa::Plan::from_json(plan.to_json());
  EXPECT_EQ(back.to_json(), plan.to_json());
  nasoa::Budget infinite_seconds = budget;
  infinite_seconds.seconds = HUGE_VAL;  // the other spelling of no time limit
  const nasoa::Plan same = adapter.plan(*task_, infinite_seconds, base_);
  EXPECT_EQ(same.budget_seconds, 0.0);
  EXPECT_EQ(same.best.regime.model, plan.best.regime.model);
  EXPECT_EQ(same.best.regime.learning_rate, plan.best.regime.learning_rate);
  EXPECT_EQ(same.best.regime.frozen_stages, plan.best.regime.frozen_stages);
  // Each plan() measures its own planning energy, and the epochs fill the
  // joules it leaves, so the plan that spent more plans no more epochs.
  const std::string energies = std::to_string(same.planning_joules) + " J against " + std::to_string(plan.planning_joules);
  if (same.planning_joules >= plan.planning_joules)
    EXPECT_LE(same.best.regime.epochs, plan.best.regime.epochs) << energies;
  else
    EXPECT_GE(same.best.regime.epochs, plan.best.regime.epochs) << energies;

  const nasoa::Result r = adapter.fine_tune(*task_, plan, budget, (dir_ / "m").string());
  EXPECT_TRUE(r.stop_reason == "completed" || r.stop_reason == "energy budget") << r.stop_reason;
  EXPECT_GT(r.epochs.size(), 0u);
  // The guarantee, in joules: within the budget x 1.05 plus 2 s at the power.
  EXPECT_LE(r.joules, 60 * 1.05 + 2 * 10) << r.energy_meter;
  // Planning's joules are part of the call's, and said apart.
  EXPECT_DOUBLE_EQ(r.spent_joules, plan.planning_joules);
  EXPECT_GT(r.joules, r.spent_joules);
  for (const nasoa::EpochResult& e : r.epochs) EXPECT_GE(e.joules, r.spent_joules) << "epoch " << e.epoch;
  EXPECT_TRUE(adapter.record(*task_, plan, r));
  nasoa::Result impossible = r;
  impossible.spent_joules = r.joules + 1;
  std::string message;
  EXPECT_EQ(code_of([&] { adapter.record(*task_, plan, impossible); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("spent_joules"), std::string::npos) << message;

  // Joules the caller already spent count against the budget: planning
  // refuses a budget they used up (beyond its safety margin), and a
  // fine-tune one they leave no step of.
  nasoa::Budget spent = budget;
  spent.spent_joules = 0.9 * 60;
  EXPECT_EQ(code_of([&] { adapter.plan(*task_, spent, base_); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("energy budget too small to plan"), std::string::npos) << message;
  EXPECT_NE(message.find("54 J of 60 J are already spent"), std::string::npos) << message;
  spent.spent_joules = 60 - plan.planning_joules;
  EXPECT_EQ(code_of([&] { adapter.fine_tune(*task_, plan, spent, (dir_ / "m3").string()); }, &message),
            nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("energy budget too small"), std::string::npos) << message;
  // A quarter of it spent: the plans are costed from there, so they fit the rest.
  spent.spent_joules = 15;
  const nasoa::Plan after = adapter.plan(*task_, spent, base_);
  ASSERT_TRUE(after.best.predicted_joules.has_value());
  EXPECT_LE(*after.best.predicted_joules, 0.9 * 60 + 1e-9);
  EXPECT_NEAR(*after.best.predicted_joules, 15 + 10 * after.best.predicted_seconds, 1e-6);
  spent.spent_joules = -1;
  EXPECT_EQ(code_of([&] { adapter.plan(*task_, spent, base_); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("budget field spent_joules = -1"), std::string::npos) << message;

  nasoa::Budget none;
  EXPECT_EQ(code_of([&] { adapter.plan(*task_, none, base_); }, &message), nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("budget has no limit"), std::string::npos) << message;
  nasoa::Budget endless_energy;
  endless_energy.joules = HUGE_VAL;
  EXPECT_EQ(code_of([&] { adapter.fine_tune(*task_, plan, endless_energy, (dir_ / "m2").string()); }, &message),
            nasoa::ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("budget has no limit"), std::string::npos) << message;
}

TEST_F(PlanApiTest, TheDefaultStateDirectoryFollowsXdgThenHome) {
  {
    const nasoa::testing::ScopedEnv xdg("XDG_STATE_HOME", (dir_ / "xdg").string());
    EXPECT_EQ(nasoa::default_state_dir(), (dir_ / "xdg" / "nasoa").string());
    nasoa::Adapter adapter(*zoo_);
    EXPECT_EQ(fs::path(adapter.state_dir()).parent_path(), dir_ / "xdg" / "nasoa");
    EXPECT_FALSE(fs::exists(dir_ / "xdg")) << "nothing is written before plan, record or calibrate";
  }
  const nasoa::testing::ScopedEnv relative("XDG_STATE_HOME", "relative/path");  // the XDG spec ignores relative paths
  const nasoa::testing::ScopedEnv home("HOME", (dir_ / "home").string());
  EXPECT_EQ(nasoa::default_state_dir(), (dir_ / "home" / ".local/state/nasoa").string());
}

}  // namespace
