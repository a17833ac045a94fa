// The device profile: every configuration measured, the JSON round trip, the
// predictions, and damaged files refused. Timings on a shared, loaded machine
// vary, so no test compares one timing with another.
#include "runtime/profile/device_profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "nasoa/error.h"
#include "tests/runtime/fake_sysfs.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/bundle.h"

namespace nasoa::runtime {
namespace {

using Json = nlohmann::ordered_json;

const char* const kModels[] = {"020-_16_11-21", "2-_8_1-2"};

void make_bundle(const std::string& dir) {
  torch::manual_seed(5);
  zoo::BundleInput input;
  input.name = "tiny";
  input.provenance = {"device_profile_test", "", 5, "2024-01-01T00:00:00Z", "none"};
  for (const char* encoding : kModels) {
    zoo::BundleModelInput model;
    model.name = encoding;
    model.network = zoo::Network(Encoding::parse(encoding), 3);
    model.input_size = 32;
    input.models.push_back(std::move(model));
  }
  zoo::write_bundle(dir, input);
}

ProfileOptions tiny_options() {
  ProfileOptions options;
  options.batch_sizes = {2, 4};
  options.warmup = 1;
  options.repetitions = 2;
  options.use_cuda = false;
  return options;
}

// Measured once for the whole suite: the other tests work on its result.
class DeviceProfileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = (std::filesystem::temp_directory_path() /
                             ("nasoa-device-profile-bundle-" + std::to_string(::getpid())))
                                .string();
    std::filesystem::remove_all(dir);
    make_bundle(dir);
    progress_calls_ = new std::vector<ProfileProgress>;
    profile_ = new DeviceProfile(profile_bundle(dir, tiny_options(), [](const ProfileProgress& p) {
      progress_calls_->push_back(p);
    }));
    std::filesystem::remove_all(dir);
  }
  static void TearDownTestSuite() {
    delete profile_;
    delete progress_calls_;
  }

  static DeviceProfile* profile_;
  static std::vector<ProfileProgress>* progress_calls_;
  nasoa::testing::TempDir dir_;
};

DeviceProfile* DeviceProfileTest::profile_ = nullptr;
std::vector<ProfileProgress>* DeviceProfileTest::progress_calls_ = nullptr;

// Where a meter reads (here a fake Jetson INA3221 rail drawing a steady
// 5 V x 2 A), every configuration gets the watts it drew, which the planner
// costs energy budgets with; without one none (above).
TEST_F(DeviceProfileTest, AMeterThatReadsGivesEveryConfigurationItsWatts) {
  testing::FakeSysfs sysfs;
  sysfs.write("class/hwmon/hwmon0/name", "ina3221");
  sysfs.hwmon_channel("hwmon0", 1, "VDD_IN", 5000, 2000);
  ProfileOptions options = tiny_options();
  options.meter.sysfs_root = sysfs.root();
  options.meter.nvml_library = dir_ / "no-libnvidia-ml.so";  // a GPU host's NVML would be found first
  const std::string zoo = dir_ / "zoo";
  make_bundle(zoo);
  const DeviceProfile p = profile_bundle(zoo, options);
  EXPECT_EQ(p.meter, "jetson-ina3221-hwmon:VDD_IN");
  EXPECT_TRUE(p.meter_measured);
  ASSERT_EQ(p.models.size(), 2u);
  for (const ModelProfile& m : p.models) {
    ASSERT_FALSE(m.steps.empty());
    for (const StepTiming& s : m.steps) {
      ASSERT_TRUE(s.watts) << m.model.name << " batch " << s.batch_size << " frozen " << s.frozen_stages;
      EXPECT_NEAR(*s.watts, 10.0, 1e-6) << m.model.name << " batch " << s.batch_size;
    }
  }
}

TEST_F(DeviceProfileTest, MeasuresEveryBatchSizeAndFrozenCount) {
  const DeviceProfile& p = *profile_;
  EXPECT_EQ(p.format_version, kDeviceProfileFormatVersion);
  EXPECT_EQ(p.bundle_name, "tiny");
  EXPECT_EQ(p.device.device, "cpu");
  EXPECT_FALSE(p.device.gpu_name.has_value());
  EXPECT_GE(p.device.cpu_cores, 1);
  EXPECT_GE(p.device.threads, 1);
#if defined(__x86_64__)
  // x86-64 kernels name the CPU in /proc/cpuinfo; "unknown" is the fallback.
  EXPECT_NE(p.device.cpu_model, "unknown");
#endif
  EXPECT_FALSE(p.date.empty());
  EXPECT_EQ(p.batch_sizes, (std::vector<int>{2, 4}));
  EXPECT_EQ(p.warmup, 1);
  EXPECT_EQ(p.repetitions, 2);
  ASSERT_EQ(p.bundle_models.size(), 2u);
  ASSERT_EQ(p.models.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const ModelProfile& m = p.models[i];
    EXPECT_EQ(m.model.name, kModels[i]);
    EXPECT_EQ(m.model.encoding, kModels[i]);
    EXPECT_EQ(m.model.input_size, 32);
    EXPECT_EQ(m.model.classes, 3);
    EXPECT_EQ(m.model, p.bundle_models[i]);
    EXPECT_EQ(m.num_stages, zoo::Network(Encoding::parse(kModels[i]), 3)->num_stages());
    EXPECT_GT(m.inference_seconds_per_image_batch1, 0);
    EXPECT_GT(m.inference_seconds_per_image_batch64, 0);
    ASSERT_EQ(m.steps.size(), 2u * std::size_t(m.num_stages + 1));
    for (int batch : {2, 4})
      for (int frozen = 0; frozen <= m.num_stages; ++frozen) {
        const auto it = std::find_if(m.steps.begin(), m.steps.end(), [&](const StepTiming& s) {
          return s.batch_size == batch && s.frozen_stages == frozen;
        });
        ASSERT_NE(it, m.steps.end()) << m.model.name << " batch " << batch << " frozen " << frozen;
        EXPECT_GT(it->step_seconds, 0);
        EXPECT_TRUE(std::isfinite(it->step_seconds));
        if (p.memory_method == "vmhwm-reset") {
          ASSERT_TRUE(it->peak_rss_bytes && it->rss_increase_bytes);
          EXPECT_GT(*it->peak_rss_bytes, 0);
          EXPECT_GE(*it->rss_increase_bytes, 0);
          EXPECT_LE(*it->rss_increase_bytes, *it->peak_rss_bytes);
        } else {
          EXPECT_FALSE(it->peak_rss_bytes);
        }
        // A meter that reads but draws nothing measurable (a virtual
        // machine's RAPL) leaves watts absent too; a fake one that reads is
        // tested below.
        if (p.meter == "none") {
          EXPECT_FALSE(it->watts);
        }
        if (it->watts) {
          EXPECT_GT(*it->watts, 0);
        }
      }
  }
  EXPECT_EQ(p.meter_measured, p.meter != "none");
}

TEST_F(DeviceProfileTest, ReportsProgressPerModel) {
  ASSERT_EQ(progress_calls_->size(), 4u);  // a start and an end per model
  EXPECT_EQ((*progress_calls_)[0].model, kModels[0]);
  EXPECT_EQ((*progress_calls_)[0].done, nullptr);
  EXPECT_NE((*progress_calls_)[1].done, nullptr);
  EXPECT_EQ((*progress_calls_)[3].index, 1u);
  EXPECT_EQ((*progress_calls_)[3].count, 2u);
}

TEST_F(DeviceProfileTest, JsonRoundTripIsExact) {
  const std::string path = dir_ / "profile.json";
  save_device_profile(*profile_, path);
  const DeviceProfile back = load_device_profile(path);
  EXPECT_EQ(back, *profile_);
  EXPECT_EQ(to_json(back), to_json(*profile_));
  const Json j = Json::parse(zoo::read_file(path));
  EXPECT_EQ(j.at("format_version"), kDeviceProfileFormatVersion);
  EXPECT_EQ(j.at("models").size(), 2u);
}

TEST_F(DeviceProfileTest, OptionalFieldsRoundTrip) {
  DeviceProfile p = *profile_;
  p.device.device = "cuda:0";
  p.device.gpu_name = "Orin (nvgpu)";
  p.meter = "jetson-ina3221-hwmon:VDD_IN";
  p.meter_measured = true;
  p.models[0].steps[0].watts = 7.25;
  p.models[0].steps[1].peak_rss_bytes.reset();
  p.models[0].steps[1].rss_increase_bytes.reset();
  EXPECT_EQ(parse_device_profile(to_json(p), "mem"), p);
  p.models[1].training_layout = MemoryLayout::kChannelsLast;
  EXPECT_EQ(parse_device_profile(to_json(p), "mem").models[1].training_layout, MemoryLayout::kChannelsLast);
}

TEST_F(DeviceProfileTest, AVersion1ProfileTrainsChannelsFirst) {
  // Version 1 had no training_layout: its steps were all timed channels-first.
  Json j = Json::parse(to_json(*profile_));
  j["format_version"] = 1;
  for (Json& m : j["models"]) m.erase("training_layout");
  const DeviceProfile old = parse_device_profile(j.dump(), "v1.json");
  for (const ModelProfile& m : old.models) EXPECT_EQ(m.training_layout, MemoryLayout::kChannelsFirst);
}

TEST_F(DeviceProfileTest, PredictsExactlyAtMeasuredPoints) {
  for (const ModelProfile& m : profile_->models)
    for (const StepTiming& s : m.steps)
      EXPECT_DOUBLE_EQ(predict_step_seconds(*profile_, m.model.name, s.batch_size, s.frozen_stages),
                       s.step_seconds);
}

TEST_F(DeviceProfileTest, InterpolatesAndExtrapolatesAffinely) {
  DeviceProfile p = *profile_;
  ModelProfile& m = p.models[0];
  // A known line, 0.01 + 0.002 * batch, to check the fit itself.
  for (StepTiming& s : m.steps) s.step_seconds = 0.01 + 0.002 * s.batch_size;
  const std::string name = m.model.name;
  EXPECT_NEAR(predict_step_seconds(p, name, 3, 0), 0.016, 1e-12);
  EXPECT_NEAR(predict_step_seconds(p, name, 64, 1), 0.138, 1e-12);
  EXPECT_NEAR(predict_step_seconds(p, name, 1, m.num_stages), 0.012, 1e-12);

  // Between the measured timings of the real profile, whatever they are: the midpoint.
  const ModelProfile& real = profile_->models[1];
  const auto at = [&](int batch) {
    return std::find_if(real.steps.begin(), real.steps.end(),
                        [&](const StepTiming& s) { return s.batch_size == batch && s.frozen_stages == 0; })
        ->step_seconds;
  };
  // (Where timing noise made batch 4 measure faster than batch 2, the
  // line falls and is not used: AFallingLineIsNotExtrapolated.)
  const double between = predict_step_seconds(*profile_, real.model.name, 3, 0);
  if (at(4) >= at(2))
    EXPECT_NEAR(between, 0.5 * (at(2) + at(4)), 1e-12);
  else
    EXPECT_TRUE(between > 0 && std::isfinite(between)) << between;

  EXPECT_NEAR(predict_epoch_seconds(p, name, 10, 4, 0), 3 * 0.018, 1e-12);  // ceil(10 / 4) steps
  EXPECT_NEAR(predict_epoch_seconds(p, name, 8, 4, 0), 2 * 0.018, 1e-12);
  EXPECT_EQ(predict_epoch_seconds(p, name, 0, 4, 0), 0);
  // The image count's largest value must not overflow to a negative count.
  const std::int64_t most = std::numeric_limits<std::int64_t>::max();
  EXPECT_GT(predict_epoch_seconds(p, name, most, 4, 0), 0);
}

TEST_F(DeviceProfileTest, FallsBackToProportionalWhenTheFitIsNotPositive) {
  DeviceProfile p = *profile_;
  ModelProfile& m = p.models[0];
  for (StepTiming& s : m.steps) s.step_seconds = s.batch_size == 2 ? 0.01 : 0.05;  // crosses zero at 1.5
  EXPECT_NEAR(predict_step_seconds(p, m.model.name, 1, 0), 0.005, 1e-12);
  // One batch size measured: proportional to it.
  m.steps.erase(std::remove_if(m.steps.begin(), m.steps.end(), [](const StepTiming& s) { return s.batch_size == 4; }),
                m.steps.end());
  EXPECT_NEAR(predict_step_seconds(p, m.model.name, 8, 0), 0.04, 1e-12);
}

TEST_F(DeviceProfileTest, AFallingLineIsNotExtrapolated) {
  DeviceProfile p = *profile_;
  ModelProfile& m = p.models[0];
  // Noise made batch 4 look faster than batch 2: the line would price a
  // batch of 8 at 0.035 s, below the 0.045 s measured for 4.
  for (StepTiming& s : m.steps) s.step_seconds = s.batch_size == 2 ? 0.05 : 0.045;
  EXPECT_NEAR(predict_step_seconds(p, m.model.name, 8, 0), 0.09, 1e-12) << "proportional to the nearest, batch 4";
}

TEST_F(DeviceProfileTest, EvaluationPaysEachBatchIncludingAShortLastOne) {
  DeviceProfile p = *profile_;
  ModelProfile& m = p.models[0];
  m.inference_seconds_per_image_batch1 = 0.002;
  m.inference_seconds_per_image_batch64 = 0.0005;
  const std::string name = m.model.name;
  EXPECT_NEAR(predict_evaluation_seconds(p, name, 10, 1), 10 * 0.002, 1e-12);
  EXPECT_NEAR(predict_evaluation_seconds(p, name, 128, 64), 128 * 0.0005, 1e-12);
  // A 129th image is a batch of one of its own: it costs what batch 1 does.
  EXPECT_NEAR(predict_evaluation_seconds(p, name, 129, 64) - predict_evaluation_seconds(p, name, 128, 64), 0.002,
              1e-12);
  EXPECT_EQ(predict_evaluation_seconds(p, name, 0, 64), 0);
}

TEST_F(DeviceProfileTest, RefusesUnknownModelsAndFrozenCounts) {
  const ModelProfile& m = profile_->models[0];
  using nasoa::testing::throws_error;
  EXPECT_TRUE(throws_error([&] { predict_step_seconds(*profile_, "no-such-model", 4, 0); }, ErrorCode::kNotFound, ""));
  EXPECT_TRUE(throws_error([&] { predict_step_seconds(*profile_, m.model.name, 4, m.num_stages + 1); },
                           ErrorCode::kNotFound, ""));
  EXPECT_TRUE(throws_error([&] { predict_step_seconds(*profile_, m.model.name, 4, -1); }, ErrorCode::kNotFound, ""));
  EXPECT_TRUE(
      throws_error([&] { predict_step_seconds(*profile_, m.model.name, 0, 0); }, ErrorCode::kInvalidArgument, ""));
  EXPECT_TRUE(
      throws_error([&] { predict_epoch_seconds(*profile_, "no-such-model", 100, 4, 0); }, ErrorCode::kNotFound, ""));
}

TEST_F(DeviceProfileTest, PlannedBatchSizesAreTheProfilesOrThoseItsStepsWereTimedAt) {
  DeviceProfile p = *profile_;
  const std::string name = p.models[0].model.name;
  EXPECT_EQ(p.planned_batch_sizes(name), (std::vector<int>{2, 4}));
  p.batch_sizes = {8, 2, 8};
  EXPECT_EQ(p.planned_batch_sizes(name), (std::vector<int>{2, 8}));
  p.batch_sizes.clear();  // a profile that lists none: what was timed
  p.models[0].steps.resize(1);
  EXPECT_EQ(p.planned_batch_sizes(name), (std::vector<int>{p.models[0].steps[0].batch_size}));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { p.planned_batch_sizes("no-such-model"); }, ErrorCode::kNotFound,
                                           "no-such-model"));
}

// Loading `json` from a file is refused with `code` (kCorrupt unless given),
// naming the file and `field`.
::testing::AssertionResult load_refused(const nasoa::testing::TempDir& dir, const std::string& json,
                                        const std::string& field, ErrorCode code = ErrorCode::kCorrupt) {
  const std::string path = dir.write("damaged.json", json);
  return nasoa::testing::throws_error_with([&] { load_device_profile(path); }, code, {path, field});
}

TEST_F(DeviceProfileTest, RecordsHowTheHeapWasSetWhileTiming) {
  DeviceProfile p = *profile_;
  for (const bool kept : {false, true}) {
    p.device.kept_freed_memory = kept;
    EXPECT_EQ(parse_device_profile(to_json(p), "heap").device.kept_freed_memory, kept);
  }
  // Version 2 did not record it: its steps were timed with glibc's defaults.
  Json j = Json::parse(to_json(p));
  j["format_version"] = 2;
  j["device"].erase("kept_freed_memory");
  EXPECT_FALSE(parse_device_profile(j.dump(), "v2.json").device.kept_freed_memory);
  // From version 3 on it is a field like the others.
  j["format_version"] = 3;
  EXPECT_TRUE(load_refused(dir_, j.dump(), "kept_freed_memory"));
}

TEST_F(DeviceProfileTest, RefusesDamagedFilesNamingTheField) {
  const Json good = Json::parse(to_json(*profile_));
  {
    std::string text = good.dump();
    text.replace(text.find("\"repetitions\":"), 14, "\"repetitions\":1e905,\"was\":");
    EXPECT_TRUE(load_refused(dir_, text, "not valid JSON"));
  }
  {
    Json j = good;
    j.erase("format_version");
    EXPECT_TRUE(load_refused(dir_, j.dump(), "format_version"));
  }
  {
    Json j = good;
    j["format_version"] = kDeviceProfileFormatVersion + 1;
    EXPECT_TRUE(load_refused(dir_, j.dump(), "format_version", ErrorCode::kUnsupportedVersion));
  }
  {
    // Past the int64 range: a future version, and a count shown as written.
    Json j = good;
    j["format_version"] = std::numeric_limits<std::uint64_t>::max();
    EXPECT_TRUE(load_refused(dir_, j.dump(), "format_version", ErrorCode::kUnsupportedVersion));
    j = good;
    j["device"]["cpu_cores"] = std::numeric_limits<std::uint64_t>::max();
    EXPECT_TRUE(load_refused(dir_, j.dump(), "18446744073709551615"));
  }
  {
    Json j = good;
    j["models"][1]["training"][2]["step_seconds"] = -1.0;
    EXPECT_TRUE(load_refused(dir_, j.dump(), "models[1].training[2].step_seconds"));
  }
  {
    Json j = good;
    j["models"][0]["training"][0]["frozen_stages"] = 99;
    EXPECT_TRUE(load_refused(dir_, j.dump(), "models[0].training[0].frozen_stages"));
  }
  {
    Json j = good;
    j["models"][0]["inference"].erase("seconds_per_image_batch1");
    EXPECT_TRUE(load_refused(dir_, j.dump(), "models[0].inference.seconds_per_image_batch1"));
  }
  {
    Json j = good;
    j["device"]["threads"] = "two";
    EXPECT_TRUE(load_refused(dir_, j.dump(), "device.threads"));
  }
  {
    Json j = good;
    j["settings"]["batch_sizes"][1] = 0;
    EXPECT_TRUE(load_refused(dir_, j.dump(), "settings.batch_sizes[1]"));
  }
  {
    Json j = good;
    j["models"][0]["training"][1] = j["models"][0]["training"][0];
    EXPECT_TRUE(load_refused(dir_, j.dump(), "models[0].training[1]"));
  }
  {
    // No device takes an hour per step: a damaged or hand-edited figure.
    Json j = good;
    j["models"][0]["training"][0]["step_seconds"] = 1e308;
    EXPECT_TRUE(load_refused(dir_, j.dump(), "models[0].training[0].step_seconds"));
  }
  {
    // 0 W would make every plan's energy free.
    Json j = good;
    j["models"][0]["training"][0]["watts"] = 0.0;
    EXPECT_TRUE(load_refused(dir_, j.dump(), "models[0].training[0].watts"));
    j["models"][0]["training"][0]["watts"] = 1e308;
    EXPECT_TRUE(load_refused(dir_, j.dump(), "models[0].training[0].watts"));
  }
  {
    // Watts the planner would charge as measured, from no meter.
    Json j = good;
    j["power"] = Json{{"meter", "none"}, {"measured", false}};
    j["models"][0]["training"][0]["watts"] = 7.5;
    EXPECT_TRUE(load_refused(dir_, j.dump(), "models[0].training[0].watts"));
    j["power"] = Json{{"meter", "jetson-ina3221-hwmon:VDD_IN"}, {"measured", true}};
    EXPECT_NO_THROW(parse_device_profile(j.dump(), "edited.json"));
  }
  {
    Json j = good;
    j["models"][1]["training_layout"] = "nhwc";
    EXPECT_TRUE(load_refused(dir_, j.dump(), "models[1].training_layout"));
  }
  {
    Json j = good;
    j["models"][0].erase("training_layout");
    EXPECT_TRUE(load_refused(dir_, j.dump(), "models[0].training_layout"));
  }
  EXPECT_TRUE(load_refused(dir_, to_json(*profile_).substr(0, 200), "not valid JSON"));
  EXPECT_TRUE(load_refused(dir_, "[]", "top level"));
  EXPECT_THROW(load_device_profile(dir_ / "absent.json"), Error);
}

TEST(DeviceProfileOptions, RefusesBadOptionsAndUnknownModels) {
  nasoa::testing::TempDir dir;
  const std::string bundle = dir / "bundle";
  make_bundle(bundle);
  // Profiling with `options` is refused with `code`.
  const auto refused = [&](const ProfileOptions& options, ErrorCode code) {
    return nasoa::testing::throws_error([&] { profile_bundle(bundle, options); }, code, "");
  };
  ProfileOptions o = tiny_options();
  o.models = {"absent"};
  EXPECT_TRUE(refused(o, ErrorCode::kNotFound));
  o = tiny_options();
  o.batch_sizes = {0};
  EXPECT_TRUE(refused(o, ErrorCode::kInvalidArgument));
  o = tiny_options();
  o.batch_sizes = {8, 4, 8};  // the profile's reader refuses a batch size measured twice
  EXPECT_TRUE(refused(o, ErrorCode::kInvalidArgument));
  o = tiny_options();
  o.repetitions = 0;
  EXPECT_TRUE(refused(o, ErrorCode::kInvalidArgument));
  o = tiny_options();
  o.meter.kind = MeterKind::kEstimate;
  o.meter.estimate_watts = 10;
  EXPECT_TRUE(refused(o, ErrorCode::kInvalidArgument));
  o = tiny_options();
  o.time_limit_seconds = -1;
  EXPECT_TRUE(refused(o, ErrorCode::kInvalidArgument));
  o = tiny_options();
  o.joules_limit = -1;
  EXPECT_TRUE(refused(o, ErrorCode::kInvalidArgument));
}

TEST(DeviceProfileOptions, StopsAtItsEnergyLimitAsTheCallersMeterCountsIt) {
  nasoa::testing::TempDir dir;
  const std::string bundle = dir / "bundle";
  make_bundle(bundle);
  ProfileOptions o = tiny_options();
  // The caller's meter: 3 J more at every reading. The limit is passed at
  // the first check after the first configuration's reading.
  double used = 0;
  int readings = 0;
  o.joules_used = [&] {
    ++readings;
    return used += 3;
  };
  o.joules_limit = 4;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { profile_bundle(bundle, o); }, ErrorCode::kInvalidArgument,
                                           "used more than the 4 J it could have"));
  EXPECT_GE(readings, 2) << "stopped before it measured anything";
  // Without a limit the meter is not asked, and the profile is whole.
  readings = 0;
  o.joules_limit = 0;
  EXPECT_FALSE(profile_bundle(bundle, o).models.empty());
  EXPECT_EQ(readings, 0);
  o.joules_limit = 1e9;
  EXPECT_FALSE(profile_bundle(bundle, o).models.empty());
  EXPECT_GT(readings, 0);
}

TEST(DeviceProfileOptions, StopsAtItsTimeLimitNamingHowToAvoidIt) {
  nasoa::testing::TempDir dir;
  const std::string bundle = dir / "bundle";
  make_bundle(bundle);
  ProfileOptions o = tiny_options();
  o.time_limit_seconds = 1e-6;  // passed before the first configuration is measured
  EXPECT_TRUE(nasoa::testing::throws_error([&] { profile_bundle(bundle, o); }, ErrorCode::kInvalidArgument,
                                           "measure it ahead of time"));
  o.time_limit_seconds = 600;
  EXPECT_FALSE(profile_bundle(bundle, o).models.empty());
}

TEST(DeviceProfileOptions, ACallCutShortKeepsTheModelsItMeasuredForTheNext) {
  nasoa::testing::TempDir dir;
  const std::string bundle = dir / "bundle";
  make_bundle(bundle);
  ProfileOptions o = tiny_options();
  o.partial_path = dir / "profile.partial.json";
  // Stopped as the second model starts (a time limit, a kill).
  EXPECT_THROW(profile_bundle(bundle, o,
                              [](const ProfileProgress& p) {
                                if (p.index == 1 && !p.done) throw std::runtime_error("stopped");
                              }),
               std::runtime_error);
  const DeviceProfile partial = load_device_profile(o.partial_path);
  ASSERT_EQ(partial.models.size(), 1u);
  EXPECT_EQ(partial.models[0].model.name, kModels[0]);

  // Other options: what was kept does not apply and is measured again.
  ProfileOptions other = o;
  other.batch_sizes = {2};
  DeviceProfile p = profile_bundle(bundle, other);
  ASSERT_EQ(p.models.size(), 2u);
  EXPECT_EQ(p.models[0].steps.size(), std::size_t(p.models[0].num_stages + 1)) << "one batch size, not two";
  EXPECT_FALSE(std::filesystem::exists(o.partial_path)) << "a whole profile removes what was kept";

  // The same options continue from the first model's measurement.
  EXPECT_THROW(profile_bundle(bundle, o,
                              [](const ProfileProgress& p) {
                                if (p.index == 1 && !p.done) throw std::runtime_error("stopped");
                              }),
               std::runtime_error);
  const DeviceProfile kept = load_device_profile(o.partial_path);
  ProfileOptions saving = o;
  saving.save_path = dir / "profile.json";
  p = profile_bundle(bundle, saving);
  ASSERT_EQ(p.models.size(), 2u);
  EXPECT_TRUE(p.models[0] == kept.models[0]) << "the first model was measured again";
  EXPECT_EQ(p.models[1].model.name, kModels[1]);
  EXPECT_FALSE(std::filesystem::exists(o.partial_path));
  // Saved whole where asked, before what was kept went.
  const DeviceProfile saved = load_device_profile(saving.save_path);
  ASSERT_EQ(saved.models.size(), 2u);
  EXPECT_TRUE(saved.models[1] == p.models[1]);

  // A damaged file is measured over, not an error.
  zoo::write_file_atomic(o.partial_path, "{");
  EXPECT_EQ(profile_bundle(bundle, o).models.size(), 2u);
}

TEST(DeviceProfileOptions, ProfilesOnlyTheModelsAsked) {
  nasoa::testing::TempDir dir;
  const std::string bundle = dir / "bundle";
  make_bundle(bundle);
  ProfileOptions o = tiny_options();
  o.batch_sizes = {2};
  o.repetitions = 1;
  o.warmup = 0;
  o.models = {kModels[1]};
  const DeviceProfile p = profile_bundle(bundle, o);
  ASSERT_EQ(p.models.size(), 1u);
  EXPECT_EQ(p.models[0].model.name, kModels[1]);
  EXPECT_EQ(p.bundle_models.size(), 2u);  // the manifest's models, all of them
}

}  // namespace
}  // namespace nasoa::runtime
