// The performance predictor: accuracy on a synthetic ground truth, honest
// uncertainty, exact save/load, damaged files refused, online updates, and a
// state directory that survives a kill. Timings are printed, not asserted: the
// machine running the tests may be shared.
#include "runtime/adapt/predictor.h"

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "bench/bench_support.h"  // spearman(), as the benchmarks compute it
#include "nasoa/error.h"
#include "tests/runtime/adapt_support.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"
#include "tests/support/thread_cpu_time.h"
#include "runtime/adapt/json_fields.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"

namespace nasoa::runtime {
namespace {

using nasoa::testing::thread_cpu_seconds;
using testing::SyntheticWorld;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<FeatureVector> features_of(const std::vector<ExperienceRecord>& records) {
  std::vector<FeatureVector> rows;
  for (const ExperienceRecord& r : records) rows.push_back(make_features(r));
  return rows;
}

// Fitted once on 5,000 synthetic records; most tests reuse it.
class PredictorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SyntheticWorld world(7);
    train_ = new std::vector<ExperienceRecord>(world.records(5000, "train-"));
    test_ = new std::vector<ExperienceRecord>(world.records(10000, "test-"));
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_seconds();
    predictor_ = new Predictor(Predictor::fit(*train_, {}));
    fit_seconds_ = seconds_since(t0);
    fit_cpu_seconds_ = thread_cpu_seconds() - c0;
  }
  static void TearDownTestSuite() {
    delete predictor_;
    delete train_;
    delete test_;
  }
  static std::vector<ExperienceRecord>* train_;
  static std::vector<ExperienceRecord>* test_;
  static Predictor* predictor_;
  static double fit_seconds_, fit_cpu_seconds_;
};
std::vector<ExperienceRecord>* PredictorTest::train_ = nullptr;
std::vector<ExperienceRecord>* PredictorTest::test_ = nullptr;
Predictor* PredictorTest::predictor_ = nullptr;
double PredictorTest::fit_seconds_ = 0;
double PredictorTest::fit_cpu_seconds_ = 0;

TEST_F(PredictorTest, LearnsASyntheticFunctionOfTheFeatures) {
  const std::vector<FeatureVector> rows = features_of(*test_);
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = thread_cpu_seconds();
  const std::vector<Prediction> predictions = predictor_->predict(rows);
  const double predict_cpu_seconds = thread_cpu_seconds() - c0;
  const double predict_seconds = seconds_since(t0);
  std::cout << "[ timing ] fit on " << train_->size() << " records: " << fit_seconds_ * 1e3 << " ms wall, "
            << fit_cpu_seconds_ * 1e3 << " ms CPU; predict " << rows.size() << " plans: " << predict_seconds * 1e3
            << " ms wall, " << predict_cpu_seconds * 1e3 << " ms CPU\n";
  RecordProperty("fit_cpu_ms_5000", std::to_string(fit_cpu_seconds_ * 1e3));
  RecordProperty("predict_cpu_ms_10000", std::to_string(predict_cpu_seconds * 1e3));

  ASSERT_EQ(predictions.size(), rows.size());
  double train_mean = 0;
  for (const ExperienceRecord& r : *train_) train_mean += r.best_accuracy / double(train_->size());
  double mae = 0, mae_mean = 0;
  std::vector<double> truth, predicted;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double t = SyntheticWorld::truth((*test_)[i]);
    EXPECT_GE(predictions[i].mean, 0);
    EXPECT_LE(predictions[i].mean, 1);
    EXPECT_GE(predictions[i].std, predictor_->options().std_floor);
    mae += std::abs(predictions[i].mean - t) / double(rows.size());
    mae_mean += std::abs(train_mean - t) / double(rows.size());
    truth.push_back(t);
    predicted.push_back(predictions[i].mean);
  }
  const double rho = nasoa::bench::spearman(truth, predicted);
  std::cout << "[ quality ] held-out MAE " << mae << " (predicting the mean: " << mae_mean << "), Spearman " << rho
            << ", out-of-bag RMSE " << predictor_->oob_rmse() << "\n";
  EXPECT_LT(mae, 0.03);
  EXPECT_LT(mae, 0.3 * mae_mean);
  EXPECT_GT(rho, 0.9);
  // The out-of-bag error sees the noise (sd 0.02) as well as the model's error.
  EXPECT_GT(predictor_->oob_rmse(), 0.015);
  EXPECT_LT(predictor_->oob_rmse(), 0.06);
}

TEST_F(PredictorTest, IsLessCertainFarFromTheData) {
  int checked = 0;
  double near_sum = 0, far_sum = 0;
  for (std::size_t i = 0; i < 200; ++i) {
    ExperienceRecord r = (*test_)[i];
    const Prediction near = predictor_->predict(make_features(r));
    r.task = testing::make_meta(r.task.classes * 500, 3);
    r.regime.learning_rate *= 300;
    r.regime.epochs = 400;
    const Prediction far = predictor_->predict(make_features(r));
    EXPECT_GT(far.std, near.std) << "record " << i;
    near_sum += near.std, far_sum += far.std, ++checked;
  }
  std::cout << "[ uncertainty ] mean std near the data " << near_sum / checked << ", far from it "
            << far_sum / checked << "\n";
  EXPECT_GT(far_sum, 3 * near_sum);
}

TEST_F(PredictorTest, SavesAndLoadsToTheSamePredictions) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "predictor.json";
  Predictor p = *predictor_;
  p.set_fitted_on("unit test");
  p.save(path);
  const Predictor back = Predictor::load(path);
  EXPECT_EQ(back.fitted_on(), "unit test");
  EXPECT_EQ(back.options(), p.options());
  EXPECT_EQ(back.training_rows(), p.training_rows());
  ASSERT_TRUE(p.experience().has_value()) << "fitted on records, it carries their summary";
  EXPECT_EQ(*p.experience(), summarize_experience(*train_));
  EXPECT_EQ(back.experience(), p.experience());
  EXPECT_EQ(back.to_json(), p.to_json());
  const std::vector<FeatureVector> rows = features_of(std::vector<ExperienceRecord>(test_->begin(), test_->begin() + 2000));
  const std::vector<Prediction> a = p.predict(rows), b = back.predict(rows);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(a[i].mean, b[i].mean) << i;  // bit for bit
    ASSERT_EQ(a[i].std, b[i].std) << i;
  }
}

// A file whose model is `edit`ed, with a checksum that matches it again.
std::string edited_file(const std::string& good, const std::function<void(detail::Json&)>& edit) {
  detail::Json file = detail::Json::parse(good);
  edit(file["model"]);
  file["sha256"] = zoo::sha256_hex(file["model"].dump());
  return file.dump() + "\n";
}

TEST_F(PredictorTest, TheExperienceSummaryIsOptionalAndCheckedWhereGiven) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "predictor.json";
  // Fitted on bare rows, it has none, and saves and loads without one.
  std::vector<TrainingRow> rows;
  for (std::size_t i = 0; i < 300; ++i) rows.push_back({make_features((*train_)[i]), (*train_)[i].best_accuracy, 1});
  PredictorOptions small;
  small.members = 2;
  small.trees = 5;
  const Predictor bare = Predictor::fit(rows, small);
  EXPECT_FALSE(bare.experience().has_value());
  bare.save(path);
  EXPECT_FALSE(Predictor::load(path).experience().has_value());
  EXPECT_EQ(zoo::read_file(path).find("\"experience\""), std::string::npos);

  const std::string good = predictor_->to_json();
  const std::vector<std::pair<std::function<void(detail::Json&)>, std::string>> bad = {
      {[](detail::Json& m) { m["experience"]["batch_sizes"] = {32, 16}; }, "model.experience.batch_sizes[1]"},
      {[](detail::Json& m) { m["experience"]["shared_fields"] = {"optimizer", "learning_rate"}; },
       "model.experience.shared_fields[1]"},
      {[](detail::Json& m) { m["experience"]["evaluated"] = 6000; }, "model.experience.evaluated"},
      {[](detail::Json& m) { m["experience"].erase("shared_regime"); }, "model.experience.shared_regime"},
      {[](detail::Json& m) { m["experience"] = nullptr; }, "model.experience"},
      {[](detail::Json& m) { m["experience"]["longest_epochs"] = -1; }, "model.experience.longest_epochs"},
      {[](detail::Json& m) { m["experience"]["longest_epochs"] = "many"; }, "model.experience.longest_epochs"},
      {[](detail::Json& m) { m["experience"]["longest_epochs"] = nullptr; }, "model.experience.longest_epochs"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_model"] = nullptr; },
       "model.experience.longest_epochs_by_model"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_model"] = {8, 16}; },
       "model.experience.longest_epochs_by_model"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_model"]["m0"] = 0; },
       "model.experience.longest_epochs_by_model.m0"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_model"]["m0"] = "long"; },
       "model.experience.longest_epochs_by_model.m0"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_model"][""] = 1; },
       "model.experience.longest_epochs_by_model"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_frozen"] = nullptr; },
       "model.experience.longest_epochs_by_frozen"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_frozen"]["m0"] = {1, 2}; },
       "model.experience.longest_epochs_by_frozen.m0"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_frozen"]["m0"]["01"] = 1; },
       "model.experience.longest_epochs_by_frozen.m0.01"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_frozen"]["m0"]["-1"] = 1; },
       "model.experience.longest_epochs_by_frozen.m0.-1"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_frozen"]["m0"]["0"] = 0; },
       "model.experience.longest_epochs_by_frozen.m0.0"},
      // Fields that each read well but contradict one another.
      {[](detail::Json& m) { m["experience"]["batch_sizes"] = detail::Json::array(); }, "model.experience.batch_sizes"},
      {[](detail::Json& m) { m["experience"]["evaluated"] = 0; }, "model.experience.batch_sizes"},
      {[](detail::Json& m) { m["experience"]["longest_epochs"] = 0; }, "model.experience.longest_epochs"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_model"] = {{"m0", 1}}; },
       "model.experience.longest_epochs_by_model"},
      {[](detail::Json& m) { m["experience"].erase("longest_epochs"); }, "model.experience.longest_epochs_by_model"},
      {[](detail::Json& m) { m["experience"].erase("longest_epochs_by_model"); },
       "model.experience.longest_epochs_by_frozen"},
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_frozen"]["no-such-model"] = {{"0", 1}}; },
       "model.experience.longest_epochs_by_frozen"},  // a model longest_epochs_by_model lacks
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_frozen"]["m0"] = {{"0", 1}}; },
       "model.experience.longest_epochs_by_frozen.m0"},  // its longest is not the model's
      {[](detail::Json& m) { m["experience"]["longest_epochs_by_frozen"].erase("m0"); },
       "model.experience.longest_epochs_by_frozen"},  // fewer models than longest_epochs_by_model
      {[](detail::Json& m) { m["experience"]["evaluated"] = m["experience"]["longest_epochs_by_model"].size(); },
       "model.experience.longest_epochs_by_frozen"},  // more (model, count) pairs than evaluated records
      {[](detail::Json& m) {
         detail::Json& counts =
             m["experience"]["longest_epochs_by_frozen"][m["experience"]["shared_regime"]["model"].get<std::string>()];
         const std::string first = std::to_string(m["experience"]["shared_regime"]["frozen_stages"].get<int>());
         counts["99"] = counts[first];
         counts.erase(first);
       },
       "model.experience.longest_epochs_by_frozen"},  // not the frozen count of shared_regime
      {[](detail::Json& m) {
         const int longest = m["experience"]["longest_epochs"].get<int>();
         m["experience"]["longest_epochs_by_model"] = {{"no-such-model", longest}};
       },
       "model.experience.longest_epochs_by_model"},  // not the model of shared_regime
      {[](detail::Json& m) {
         m["experience"]["evaluated"] = 1;
         m["experience"]["batch_sizes"] = {m["experience"]["batch_sizes"][0]};
         m["experience"]["longest_epochs_by_model"]["no-such-model"] = 1;
       },
       "model.experience.longest_epochs_by_model"},  // more models than evaluated records
      {[](detail::Json& m) {
         m["experience"]["evaluated"] = 1;
         m["experience"]["batch_sizes"] = {16, 32};
       },
       "model.experience.batch_sizes"},
      {[](detail::Json& m) { m["experience"]["shared_fields"] = {"optimizer", "optimizer"}; },
       "model.experience.shared_fields[1]"},
      {[](detail::Json& m) { m["experience"]["shared_fields"] = {"momentum", "optimizer"}; },
       "model.experience.shared_fields[1]"},
      {[](detail::Json& m) {
         m["experience"]["evaluated"] = 0;
         m["experience"]["batch_sizes"] = detail::Json::array();
       },
       "model.experience.shared_fields"},
      {[](detail::Json& m) {
         m["experience"]["evaluated"] = 0;
         m["experience"]["batch_sizes"] = detail::Json::array();
         m["experience"]["shared_fields"] = detail::Json::array();
       },
       "model.experience.shared_regime"},
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    zoo::write_file_atomic(path, edited_file(good, bad[i].first));
    EXPECT_TRUE(nasoa::testing::throws_error([&] { Predictor::load(path); }, ErrorCode::kCorrupt,
                                             "field '" + bad[i].second + "'"))
        << "edit " << i;
  }
  // And one with nothing evaluated that agrees with itself reads back.
  zoo::write_file_atomic(path, edited_file(good, [](detail::Json& m) {
                           m["experience"] = {{"records", 3}, {"evaluated", 0}, {"batch_sizes", detail::Json::array()},
                                              {"shared_fields", detail::Json::array()}};
                         }));
  const Predictor none_evaluated = Predictor::load(path);
  ASSERT_TRUE(none_evaluated.experience().has_value());
  EXPECT_EQ(none_evaluated.experience()->record_count, 3u);
  EXPECT_EQ(none_evaluated.experience()->evaluated_count, 0u);
  // A summary saved before the longest run was kept reads as 0: planning
  // keeps to the epochs it planned then.
  zoo::write_file_atomic(path, edited_file(good, [](detail::Json& m) {
                           m["experience"].erase("longest_epochs");
                           m["experience"].erase("longest_epochs_by_model");
                           m["experience"].erase("longest_epochs_by_frozen");
                         }));
  const Predictor older = Predictor::load(path);
  ASSERT_TRUE(older.experience().has_value());
  EXPECT_EQ(older.experience()->longest_epochs, 0);
  EXPECT_TRUE(older.experience()->longest_epochs_by_model.empty());
  // Saved again (a device state keeps a copy of its bundle's predictor), it
  // reads back as it was: the figures it never had are not made up.
  older.save(path);
  EXPECT_EQ(*Predictor::load(path).experience(), *older.experience());
  // One saved before the per-model figures were kept has none: every model
  // plans as far as the longest run.
  zoo::write_file_atomic(path, edited_file(good, [](detail::Json& m) {
                           m["experience"].erase("longest_epochs_by_model");
                           m["experience"].erase("longest_epochs_by_frozen");
                         }));
  const Predictor no_models = Predictor::load(path);
  EXPECT_EQ(no_models.experience()->longest_epochs, predictor_->experience()->longest_epochs);
  EXPECT_TRUE(no_models.experience()->longest_epochs_by_model.empty());
  no_models.save(path);
  EXPECT_EQ(*Predictor::load(path).experience(), *no_models.experience());
  // One saved before the per-count figures were kept has the per-model
  // ones only: each frozen count plans as far as its model.
  zoo::write_file_atomic(path, edited_file(good, [](detail::Json& m) { m["experience"].erase("longest_epochs_by_frozen"); }));
  const Predictor no_counts = Predictor::load(path);
  EXPECT_EQ(no_counts.experience()->longest_epochs_by_model, predictor_->experience()->longest_epochs_by_model);
  EXPECT_TRUE(no_counts.experience()->longest_epochs_by_frozen.empty());
  no_counts.save(path);
  EXPECT_EQ(*Predictor::load(path).experience(), *no_counts.experience());
  const Predictor reread = Predictor::from_json(good, "good");
  EXPECT_EQ(reread.experience()->longest_epochs, predictor_->experience()->longest_epochs);
  EXPECT_EQ(reread.experience()->longest_epochs_by_model, predictor_->experience()->longest_epochs_by_model);
  EXPECT_EQ(reread.experience()->longest_epochs_by_frozen, predictor_->experience()->longest_epochs_by_frozen);
  EXPECT_FALSE(predictor_->experience()->longest_epochs_by_frozen.empty());
  EXPECT_GT(predictor_->experience()->longest_epochs, 0);
  ASSERT_FALSE(predictor_->experience()->longest_epochs_by_model.empty());
  int longest_of_any = 0;
  for (const auto& [model, epochs] : predictor_->experience()->longest_epochs_by_model)
    longest_of_any = std::max(longest_of_any, epochs);
  EXPECT_EQ(longest_of_any, predictor_->experience()->longest_epochs);
}

TEST_F(PredictorTest, RefusesADamagedFileNamingIt) {
  nasoa::testing::TempDir dir;
  const std::string path = dir / "predictor.json";
  predictor_->save(path);
  const std::string good = zoo::read_file(path);
  const std::size_t model_at = good.find("\"model\":");
  ASSERT_NE(model_at, std::string::npos);
  std::vector<std::string> damaged;
  for (int k = 1; k <= 40; ++k) {
    std::string d = good;
    const std::size_t at = model_at + 9 + (good.size() - model_at - 11) * std::size_t(k) / 41;
    d[at] = char(d[at] ^ 0x01);
    damaged.push_back(d);
  }
  // Damage that still parses to the same values: the bytes are what is checked.
  std::string spaced = good;
  spaced.insert(model_at + 8, " ");
  damaged.push_back(spaced);
  damaged.push_back(good.substr(0, good.size() / 2));
  damaged.push_back(good.substr(0, good.size() - 3));
  damaged.push_back("");
  // A number no double holds (the parser throws another kind of error).
  std::string huge = good;
  const std::size_t oob = huge.find("\"oob_rmse\":");
  ASSERT_NE(oob, std::string::npos);
  huge.insert(oob + 11, "1e905,\"was\":");
  damaged.push_back(huge);
  // A second "model" key, which the parser keeps and the checksum's byte
  // range does not cover.
  damaged.push_back(good.substr(0, good.rfind('}')) + ",\"model\":{}}\n");
  for (std::size_t i = 0; i < damaged.size(); ++i) {
    zoo::write_file_atomic(path, damaged[i]);
    EXPECT_TRUE(nasoa::testing::throws_error([&] { Predictor::load(path); }, ErrorCode::kCorrupt, path))
        << "damaged file " << i << " of " << damaged.size();
  }
  std::string newer = good;
  newer.replace(newer.find("\"format_version\":1"), 18, "\"format_version\":2");
  zoo::write_file_atomic(path, newer);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { Predictor::load(path); }, ErrorCode::kUnsupportedVersion, ""))
      << "a newer format was loaded";
}

TEST(PredictorFitTest, IsDeterministicForASeed) {
  SyntheticWorld world(3);
  const std::vector<ExperienceRecord> records = world.records(400, "r");
  PredictorOptions options;
  options.members = 3;
  options.trees = 20;
  EXPECT_EQ(Predictor::fit(records, {}, options).to_json(), Predictor::fit(records, {}, options).to_json());
  PredictorOptions other = options;
  other.seed = 2;
  EXPECT_NE(Predictor::fit(records, {}, options).to_json(), Predictor::fit(records, {}, other).to_json());
}

TEST(PredictorFitTest, UsesAnOptionalFeatureWhereItIsPresent) {
  // Half the records carry a probe score that explains what the other
  // features cannot; the rest have none (NaN).
  SyntheticWorld world(11);
  std::vector<ExperienceRecord> records = world.records(3000, "r");
  std::mt19937_64 rng(5);
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i % 2) continue;
    const double probe = double(rng() % 1000) / 1000.0;
    records[i].probe_score = probe;
    records[i].best_accuracy = std::clamp(records[i].best_accuracy + 0.3 * (probe - 0.5), 0.0, 1.0);
  }
  const Predictor p = Predictor::fit(records, {});
  ExperienceRecord r = world.random_record("q");
  r.probe_score.reset();
  const Prediction none = p.predict(make_features(r));
  r.probe_score = 0.05;
  const Prediction low = p.predict(make_features(r));
  r.probe_score = 0.95;
  const Prediction high = p.predict(make_features(r));
  EXPECT_TRUE(std::isfinite(none.mean) && std::isfinite(none.std));
  EXPECT_GT(high.mean - low.mean, 0.15) << "low " << low.mean << " high " << high.mean;
}

TEST(PredictorFitTest, WhenEveryRecordIsProbedAPlanWithoutAProbeIsPredictedAsTheAverage) {
  // The shipped experience has a probe score on every record, but a device
  // plans without one by default: that plan must be predicted for what any
  // score may be, not as if the score were above every split's threshold.
  SyntheticWorld world(12);
  std::vector<ExperienceRecord> records = world.records(3000, "r");
  std::mt19937_64 rng(6);
  for (ExperienceRecord& r : records) {
    const double probe = double(rng() % 1000) / 1000.0;
    r.probe_score = probe;
    r.best_accuracy = std::clamp(r.best_accuracy + 0.4 * (probe - 0.5), 0.0, 1.0);
  }
  PredictorOptions options;
  options.members = 4;
  const Predictor p = Predictor::fit(records, {}, options);
  double none_sum = 0, probed_sum = 0, worst = 0;
  for (int q = 0; q < 40; ++q) {
    ExperienceRecord r = world.random_record("q" + std::to_string(q));
    double over_scores = 0;
    for (int k = 0; k < 10; ++k) {
      r.probe_score = (k + 0.5) / 10;
      over_scores += p.predict(make_features(r)).mean / 10;
    }
    r.probe_score.reset();
    const double none = p.predict(make_features(r)).mean;
    none_sum += none, probed_sum += over_scores;
    worst = std::max(worst, std::abs(none - over_scores));
  }
  EXPECT_NEAR(none_sum / 40, probed_sum / 40, 0.03) << "a plan without a probe is predicted off the average";
  EXPECT_LT(worst, 0.12);
  EXPECT_EQ(p.training_rows(), records.size()) << "the rows taught twice are not counted twice";
}

TEST(PredictorFitTest, ItsUncertaintyOnANewTaskCoversHowFarNewTasksLieFromTheExperience) {
  // Each task shifts all its runs by an amount no feature explains, as real
  // tasks do: a new task's runs lie that far from what the experience says,
  // and the spread of members fitted on the same tasks cannot show it.
  SyntheticWorld world(13);
  // Each task's shift is N(0, 0.1^2), drawn by the tests' own Box-Muller
  // (SyntheticWorld::normal()) on a stream of its own:
  // std::normal_distribution's sequence differs between standard libraries.
  SyntheticWorld shifts(8);
  auto task_records = [&](const std::string& id, int n) {
    const TaskMeta meta = world.random_task();
    const double s = 0.1 * shifts.normal();
    std::vector<ExperienceRecord> out;
    for (int i = 0; i < n; ++i) {
      const ModelFeatures& m = world.models()[std::size_t(i) % world.models().size()];
      out.push_back(world.record(meta, m, world.random_regime(m), id + "-" + std::to_string(i), s));
      out.back().task_id = id;
    }
    return out;
  };
  std::vector<ExperienceRecord> shipped;
  for (int t = 0; t < 10; ++t) {
    const std::vector<ExperienceRecord> r = task_records("task" + std::to_string(t), 150);
    shipped.insert(shipped.end(), r.begin(), r.end());
  }
  PredictorOptions options;
  options.members = 6;
  const Predictor p = Predictor::fit(shipped, {}, options);
  EXPECT_GT(p.task_rmse(), p.oob_rmse()) << "a new task is no better known than a run of a known one";

  double se = 0, variance = 0;
  int n = 0;
  for (int t = 0; t < 8; ++t)
    for (const ExperienceRecord& r : task_records("new" + std::to_string(t), 40)) {
      const Prediction q = p.predict(make_features(r));
      se += (q.mean - r.best_accuracy) * (q.mean - r.best_accuracy), variance += q.std * q.std, ++n;
    }
  const double error = std::sqrt(se / n), claimed = std::sqrt(variance / n);
  std::cout << "[ new tasks ] error " << error << ", claimed std " << claimed << ", task_rmse " << p.task_rmse()
            << ", oob_rmse " << p.oob_rmse() << "\n";
  EXPECT_GT(claimed, 0.6 * error) << "claims to be surer than it is on new tasks";
  // Fitted on fewer tasks, and with fewer members, the folds' models are a
  // little worse than the whole ensemble: an estimate on the safe side.
  EXPECT_LT(p.task_rmse(), 2.0 * error) << "claims to be far less sure than it is";
  EXPECT_LT(claimed, 3.0 * error) << "claims to be far less sure than it is";

  // With every row of one task, no task can be held out: the term is the
  // spread of the accuracies fitted on, not 0 (the confidence of one task's
  // runs claimed for every other).
  const std::vector<ExperienceRecord> only = task_records("only", 200);
  double sum = 0, sum_sq = 0, rows = 0;
  for (const TrainingRow& r : training_rows(only, {}, options.device_weight)) sum += r.y, sum_sq += r.y * r.y, ++rows;
  const double spread = std::sqrt(sum_sq / rows - (sum / rows) * (sum / rows));
  ASSERT_GT(spread, 0.01);
  EXPECT_NEAR(Predictor::fit(only, {}, options).task_rmse(), spread, 1e-9);
}

// A device's task on which fine-tunes do worse than the shipped experience
// says (by 0.2): 3 outcomes recorded on it (`device`), 12 more of its plans
// to predict (`probes`), and 12 plans of another task, far from it in
// meta-features, that learning from it must leave alone (`others`).
struct DeviceTask {
  std::vector<ExperienceRecord> device, probes, others;
};
DeviceTask device_task(SyntheticWorld& world) {
  const TaskMeta task = testing::make_meta(37, 60, 1.0, 0.3), other = testing::make_meta(4, 900, 0.0, 0.1);
  DeviceTask t;
  for (int i = 0; i < 12; ++i) {
    const ModelFeatures& m = world.models()[std::size_t(i) % world.models().size()];
    if (i < 3) t.device.push_back(world.record(task, m, world.random_regime(m), "d" + std::to_string(i), -0.2));
    t.probes.push_back(world.record(task, m, world.random_regime(m), "p" + std::to_string(i), -0.2));
    t.others.push_back(world.record(other, m, world.random_regime(m), "o" + std::to_string(i)));
  }
  return t;
}

// What learning from a device's outcomes (0.2 below the world's truth for
// the task of `probes`) must do: move that task's plans toward them (their
// error below 60 % of what it was), keep their spread and their ranking, and
// leave the plans of a task unlike it (`far_*`) as they were.
void expect_moved_toward_outcomes(const std::vector<ExperienceRecord>& probes, const std::vector<Prediction>& before,
                                  const std::vector<Prediction>& after, const std::vector<Prediction>& far_before,
                                  const std::vector<Prediction>& far_after, const std::string& how) {
  double error_before = 0, error_after = 0;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const double target = std::clamp(SyntheticWorld::truth(probes[i]) - 0.2, 0.0, 1.0);
    error_before += std::abs(before[i].mean - target) / double(probes.size());
    error_after += std::abs(after[i].mean - target) / double(probes.size());
    EXPECT_LT(after[i].mean, before[i].mean) << how << " " << i;
    EXPECT_EQ(after[i].std, before[i].std) << how;
    EXPECT_NEAR(far_after[i].mean, far_before[i].mean, 1e-3) << how << ": a task unlike the device's stays as it was";
    // The ranking of the task's plans is exactly what it was.
    for (std::size_t j = 0; j < probes.size(); ++j)
      if (before[i].mean < before[j].mean) {
        EXPECT_LT(after[i].mean, after[j].mean) << how << " " << i << " " << j;
      }
  }
  std::cout << "[ " << how << " ] MAE on the device's task before " << error_before << ", after " << error_after
            << "\n";
  EXPECT_LT(error_after, 0.6 * error_before) << how;
}

TEST(PredictorFitTest, CalibrationShiftsATasksPlansTogetherAndLeavesOtherTasksAlone) {
  SyntheticWorld world(22);
  const std::vector<ExperienceRecord> shipped = world.records(1500, "s");
  PredictorOptions options;
  options.members = 4;
  options.trees = 60;
  Predictor p = Predictor::fit(shipped, {}, options);
  const auto [device, probes, others] = device_task(world);
  const std::vector<Prediction> before = p.predict(features_of(probes)), far_before = p.predict(features_of(others));
  p.calibrate(device);
  EXPECT_EQ(p.calibration_records(), 3u);
  const std::vector<Prediction> after = p.predict(features_of(probes)), far_after = p.predict(features_of(others));
  expect_moved_toward_outcomes(probes, before, after, far_before, far_after, "calibrate");
  // An empty list removes the calibration.
  p.calibrate({});
  EXPECT_EQ(p.calibration_records(), 0u);
  EXPECT_EQ(p.predict(features_of(probes))[0].mean, before[0].mean);
}

// Predictor::update() (a refit on shipped and device records) is called only
// by bench/adaption_bench.cpp, to compare refitting with calibrating; the
// online learning production does is PredictorState::record()'s (see
// RecordingDeviceOutcomesMovesItsPredictionsTowardThem).
TEST(PredictorFitTest, UpdateMovesPredictionsTowardDeviceOutcomes) {
  SyntheticWorld world(21);
  const std::vector<ExperienceRecord> shipped = world.records(1500, "s");
  // This device sees one kind of task, and fine-tunes do better on it than
  // the shipped experience says (by 0.15).
  const TaskMeta task = testing::make_meta(37, 60, 1.0, 0.3);
  std::vector<ExperienceRecord> device, probes;
  for (int i = 0; i < 60; ++i) {
    const ModelFeatures& m = world.models()[std::size_t(i) % world.models().size()];
    device.push_back(world.record(task, m, world.random_regime(m), "d" + std::to_string(i), 0.15));
    probes.push_back(world.record(task, m, world.random_regime(m), "p" + std::to_string(i), 0.15));
  }
  PredictorOptions options;
  options.members = 4;
  options.trees = 60;
  Predictor p = Predictor::fit(shipped, {}, options);
  const std::vector<Prediction> before = p.predict(features_of(probes));
  p.update(shipped, device);
  const std::vector<Prediction> after = p.predict(features_of(probes));
  EXPECT_EQ(p.training_rows(), shipped.size() + device.size());
  double error_before = 0, error_after = 0, shift = 0;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const double target = std::clamp(SyntheticWorld::truth(probes[i]) + 0.15, 0.0, 1.0);
    error_before += std::abs(before[i].mean - target) / double(probes.size());
    error_after += std::abs(after[i].mean - target) / double(probes.size());
    shift += (after[i].mean - before[i].mean) / double(probes.size());
  }
  std::cout << "[ update ] MAE on the device's task before " << error_before << ", after " << error_after
            << "; mean shift " << shift << "\n";
  EXPECT_GT(shift, 0.05);
  EXPECT_LT(error_after, 0.6 * error_before);
  // Tasks unlike the device's keep their shipped predictions, near enough.
  const std::vector<ExperienceRecord> elsewhere = world.records(300, "e");
  const Predictor shipped_only = Predictor::fit(shipped, {}, options);
  const std::vector<Prediction> a = shipped_only.predict(features_of(elsewhere)), b = p.predict(features_of(elsewhere));
  double drift = 0;
  for (std::size_t i = 0; i < a.size(); ++i) drift += std::abs(a[i].mean - b[i].mean) / double(a.size());
  EXPECT_LT(drift, 0.03);
}

TEST(PredictorFitTest, RefusesBadInput) {
  EXPECT_THROW(Predictor::fit(std::vector<TrainingRow>{}, {}), Error);
  TrainingRow row;
  row.x.fill(0);
  row.y = std::nan("");
  EXPECT_THROW(Predictor::fit({row}, {}), Error);
  row.y = 0.5;
  PredictorOptions bad;
  bad.max_bins = 1000;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { Predictor::fit({row}, bad); }, ErrorCode::kInvalidArgument,
                                           "max_bins"))
      << "accepted max_bins 1000";
  // One row is enough for a (constant) predictor.
  const Prediction p = Predictor::fit({row}, {}).predict(row.x);
  EXPECT_DOUBLE_EQ(p.mean, 0.5);
}

// ---- the state directory ----------------------------------------------------

PredictorOptions small_options() {
  PredictorOptions o;
  o.members = 3;
  o.trees = 30;
  return o;
}

TEST(PredictorStateTest, AFreshStateStartsFromABundlesPredictorMarkedAsFittedOnItsExperience) {
  nasoa::testing::TempDir dir;
  SyntheticWorld world(6);
  const ShippedExperience shipped{world.records(200, "s"), "digest-of-the-shipped-file", {}};
  // As nasoa-gather ships it: fitted on the records, marked with the file's digest.
  Predictor bundled = Predictor::fit(shipped.records(), {}, small_options());
  bundled.set_fitted_on(PredictorState::shipped_fingerprint(shipped.digest(), small_options()));
  std::filesystem::create_directories(dir / "state");
  std::filesystem::create_directories(dir / "other");
  bundled.save(dir / "state/predictor.json");
  const PredictorState s = PredictorState::open(dir / "state", shipped, small_options());
  EXPECT_FALSE(s.refitted_on_open()) << "fitted again inside the first plan's budget";
  EXPECT_EQ(s.predictor()->to_json(), bundled.to_json());

  // Marked for other experience, it is fitted again.
  bundled.set_fitted_on(PredictorState::shipped_fingerprint("another file", small_options()));
  bundled.save(dir / "other/predictor.json");
  EXPECT_TRUE(PredictorState::open(dir / "other", shipped, small_options()).refitted_on_open());
}

TEST(PredictorStateTest, WithTheBundlesPredictorTheShippedRecordsAreNotRead) {
  nasoa::testing::TempDir dir;
  SyntheticWorld world(8);
  const std::vector<ExperienceRecord> records = world.records(120, "s");
  int reads = 0;
  const auto reader = [&] {
    ++reads;
    return records;
  };
  Predictor bundled = Predictor::fit(records, {}, small_options());
  bundled.set_fitted_on(PredictorState::shipped_fingerprint("file-digest", small_options()));
  const ShippedExperience shipped(reader, "file-digest", bundled);
  for (int open = 0; open < 2; ++open) {  // a fresh state, then one that holds the predictor
    PredictorState s = PredictorState::open(dir / "state", shipped, small_options());
    EXPECT_FALSE(s.refitted_on_open());
    EXPECT_EQ(s.fitted_experience(), summarize_experience(records));
    ASSERT_TRUE(s.record(world.random_record("device-" + std::to_string(open))));  // calibrates, no refit
  }
  EXPECT_EQ(reads, 0) << "planning read the shipped records although the bundle's predictor summarises them";
  EXPECT_FALSE(shipped.records_read());

  // Without a predictor that describes them, the records are read, once for
  // all copies.
  const ShippedExperience plain(reader, "file-digest", std::nullopt);
  const ShippedExperience copy = plain;
  EXPECT_EQ(PredictorState::open(dir / "plain", plain, small_options()).fitted_experience().record_count, 120u);
  EXPECT_EQ(PredictorState::open(dir / "plain", copy, small_options()).fitted_experience().record_count, 120u);
  EXPECT_EQ(reads, 1);
  EXPECT_TRUE(copy.records_read());

  // A predictor fitted on other records says nothing of these.
  Predictor other = Predictor::fit(world.records(50, "o"), {}, small_options());
  other.set_fitted_on(PredictorState::shipped_fingerprint("another-digest", small_options()));
  EXPECT_EQ(ShippedExperience(reader, "file-digest", other).summary().record_count, 120u);
  EXPECT_EQ(reads, 2);
}

TEST(PredictorStateTest, AStateFittedOnAnOlderBundleTakesTheNewBundlesPredictor) {
  nasoa::testing::TempDir dir;
  SyntheticWorld world(7);
  const ShippedExperience old_bundle{world.records(150, "old"), "digest-of-the-old-file", {}};
  ASSERT_TRUE(PredictorState::open(dir / "state", old_bundle, small_options()).refitted_on_open());

  // The bundle is updated: new experience, and the predictor fitted on it.
  const std::vector<ExperienceRecord> new_records = world.records(200, "new");
  Predictor bundled = Predictor::fit(new_records, {}, small_options());
  bundled.set_fitted_on(PredictorState::shipped_fingerprint("digest-of-the-new-file", small_options()));
  const ShippedExperience new_bundle{new_records, "digest-of-the-new-file", bundled};
  {
    const PredictorState s = PredictorState::open(dir / "state", new_bundle, small_options());
    EXPECT_FALSE(s.refitted_on_open()) << "fitted again although the bundle ships the predictor it wants";
    EXPECT_EQ(s.predictor()->to_json(), bundled.to_json());
  }
  EXPECT_EQ(Predictor::load(dir / "state/predictor.json").to_json(), bundled.to_json()) << "not kept for next time";

  // A shipped predictor fitted with other options is not taken.
  PredictorOptions other = small_options();
  other.trees = 10;
  const PredictorState refitted = PredictorState::open(dir / "state", new_bundle, other);
  EXPECT_TRUE(refitted.refitted_on_open());
  EXPECT_NE(refitted.predictor()->to_json(), bundled.to_json());
}

TEST(PredictorStateTest, TheBundlesPredictorWinsOverAKeptCopyWithTheSameFingerprint) {
  // A bundle refitted on the same experience (a fitting fix) carries the
  // fingerprint of the copy a state kept of the old one: the bundle's wins,
  // and the copy is replaced, or the old one would be kept for good.
  nasoa::testing::TempDir dir;
  SyntheticWorld world(9);
  const std::vector<ExperienceRecord> records = world.records(150, "s");
  const std::string fingerprint = PredictorState::shipped_fingerprint("the-file", small_options());
  Predictor bundled = Predictor::fit(records, {}, small_options());
  bundled.set_fitted_on(fingerprint);
  Predictor kept = Predictor::fit(world.records(80, "old"), {}, small_options());
  kept.set_fitted_on(fingerprint);
  ASSERT_NE(kept.to_json(), bundled.to_json());
  std::filesystem::create_directories(dir / "state");
  kept.save(dir / "state/predictor.json");
  const PredictorState s = PredictorState::open(dir / "state", ShippedExperience{records, "the-file", bundled},
                                                small_options());
  EXPECT_FALSE(s.refitted_on_open());
  EXPECT_EQ(s.predictor()->to_json(), bundled.to_json()) << "planned with the copy of an older fit";
  EXPECT_EQ(Predictor::load(dir / "state/predictor.json").to_json(), bundled.to_json()) << "the old copy kept";
}

TEST(PredictorStateTest, LearnsFromRecordsAndReopensWithoutRefitting) {
  nasoa::testing::TempDir dir;
  SyntheticWorld world(5);
  ShippedExperience shipped{world.records(300, "s"), "", {}};
  PredictorState s = PredictorState::open(dir / "state", shipped, small_options());
  ASSERT_NE(s.predictor(), nullptr);
  EXPECT_TRUE(s.refitted_on_open());
  EXPECT_TRUE(std::filesystem::exists(dir / "state/predictor.json"));
  EXPECT_TRUE(s.damage().empty());

  ExperienceRecord outcome = world.random_record("device-1");
  // Fixed plans to compare: the outcome's own (row 0), other plans of its
  // task (rows 1-12), and plans of other tasks.
  std::vector<FeatureVector> rows{make_features(outcome)};
  for (int i = 0; i < 12; ++i) {
    const ModelFeatures& m = world.models()[std::size_t(i) % world.models().size()];
    rows.push_back(make_features(world.record(outcome.task, m, world.random_regime(m), "same-" + std::to_string(i))));
  }
  for (const ExperienceRecord& r : world.records(12, "other-")) rows.push_back(make_features(r));
  const std::vector<Prediction> before = s.predictor()->predict(rows);
  ASSERT_LT(before[0].mean, 0.95) << "no room to move toward the outcome";
  const std::size_t evaluated_before = s.evaluated_records();
  const std::string fitted = zoo::read_file(dir / "state/predictor.json");

  outcome.best_accuracy = 1.0;
  EXPECT_TRUE(s.record(outcome));
  EXPECT_FALSE(s.record(outcome)) << "the same run id stored twice";
  ASSERT_EQ(s.device_records().size(), 1u);
  EXPECT_EQ(s.device_records()[0].source, ExperienceSource::kDevice);
  EXPECT_EQ(read_experience_log(dir / "state/experience.log").records.size(), 1u);
  EXPECT_EQ(s.predictor()->calibration_records(), 1u);
  EXPECT_EQ(s.evaluated_records(), evaluated_before + 1);
  EXPECT_EQ(zoo::read_file(dir / "state/predictor.json"), fitted)
      << "with shipped experience, record() calibrates and writes only the log";
  const std::vector<Prediction> learnt = s.predictor()->predict(rows);
  // Toward the outcome (1.0): its plan and every plan of its task move up,
  // by the same logit shift, and keep their spread.
  const auto logit_shift = [&](std::size_t i) {
    const auto logit = [](double p) { return std::log(p / (1 - p)); };
    return logit(learnt[i].mean) - logit(before[i].mean);
  };
  for (std::size_t i = 0; i <= 12; ++i) {
    EXPECT_GT(learnt[i].mean, before[i].mean) << "row " << i << " moved away from the outcome";
    EXPECT_NEAR(logit_shift(i), logit_shift(0), 1e-6) << "row " << i << " of the outcome's task";
    EXPECT_EQ(learnt[i].std, before[i].std) << i;
  }
  // Other tasks move the same way, no further than the outcome's own task
  // (their kernel weight is at most its), and keep their spread too.
  for (std::size_t i = 13; i < rows.size(); ++i) {
    EXPECT_GE(logit_shift(i), -1e-9) << "row " << i;
    EXPECT_LE(logit_shift(i), logit_shift(0) + 1e-6) << "row " << i;
    EXPECT_EQ(learnt[i].std, before[i].std) << i;
  }

  const std::string saved = s.predictor()->to_json();
  const std::string device_record = to_json(s.device_records()[0]);
  PredictorState again = PredictorState::open(dir / "state", shipped, small_options());
  EXPECT_FALSE(again.refitted_on_open());
  EXPECT_TRUE(again.damage().empty());
  ASSERT_NE(again.predictor(), nullptr);
  EXPECT_EQ(again.predictor()->to_json(), saved);
  // What it learnt is back: the device record, the calibration to it, and
  // exactly the predictions made before closing (to_json() above leaves the
  // calibration out, so it cannot tell).
  ASSERT_EQ(again.device_records().size(), 1u);
  EXPECT_EQ(to_json(again.device_records()[0]), device_record);
  EXPECT_EQ(again.predictor()->calibration_records(), 1u);
  EXPECT_EQ(again.evaluated_records(), s.evaluated_records());
  const std::vector<Prediction> reopened = again.predictor()->predict(rows);
  ASSERT_EQ(reopened.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(reopened[i].mean, learnt[i].mean) << "row " << i << " predicted otherwise after reopening";
    EXPECT_EQ(reopened[i].std, learnt[i].std) << i;
  }
  EXPECT_GT(reopened[0].mean, before[0].mean) << "reopened without what the device record taught";
  // Other shipped experience or options: refit.
  PredictorOptions other = small_options();
  other.seed = 9;
  EXPECT_TRUE(PredictorState::open(dir / "state", shipped, other).refitted_on_open());
}

// How production learns online: Adapter::record() calls
// PredictorState::record(), which (with shipped experience) calibrates the
// shipped fit to the device's outcomes; nothing outside the benchmarks calls
// Predictor::update(). The same device outcomes as in
// CalibrationShiftsATasksPlansTogetherAndLeavesOtherTasksAlone, here through
// the state.
// Once a record is stored, a predictor.json that cannot be rewritten must
// not report the record as failed: a retry would be told it was recorded
// before. The refitted predictor is used, and the next open refits.
TEST(PredictorStateTest, ARecordStoredIsKeptWhenThePredictorFileCannotBeWritten) {
  nasoa::testing::TempDir dir;
  SyntheticWorld world(5);
  PredictorState s = PredictorState::open(dir / "state", ShippedExperience{}, small_options());
  ASSERT_TRUE(s.record(world.random_record("device-1")));
  ASSERT_TRUE(std::filesystem::exists(dir / "state/predictor.json")) << "device-only state: refitted and saved";
  std::filesystem::remove(dir / "state/predictor.json");
  std::filesystem::create_directory(dir / "state/predictor.json");  // the write cannot replace a folder

  EXPECT_TRUE(s.record(world.random_record("device-2")));
  EXPECT_EQ(s.device_records().size(), 2u);
  EXPECT_EQ(read_experience_log(dir / "state/experience.log").records.size(), 2u);
  ASSERT_FALSE(s.damage().empty());
  EXPECT_NE(s.damage().back().find("predictor.json"), std::string::npos) << s.damage().back();
  ASSERT_NE(s.predictor(), nullptr);

  // Opened while the file still cannot be written (what record() and plan()
  // do first): the predictor is used unsaved and a record is still stored,
  // not lost to a failed open.
  PredictorState blocked = PredictorState::open(dir / "state", ShippedExperience{}, small_options());
  ASSERT_NE(blocked.predictor(), nullptr);
  ASSERT_FALSE(blocked.damage().empty());
  EXPECT_NE(blocked.damage().back().find("predictor.json"), std::string::npos) << blocked.damage().back();
  EXPECT_TRUE(blocked.record(world.random_record("device-3")));
  EXPECT_EQ(read_experience_log(dir / "state/experience.log").records.size(), 3u);

  std::filesystem::remove(dir / "state/predictor.json");
  PredictorState reopened = PredictorState::open(dir / "state", ShippedExperience{}, small_options());
  EXPECT_TRUE(reopened.refitted_on_open());
  EXPECT_EQ(reopened.device_records().size(), 3u);
  EXPECT_TRUE(std::filesystem::is_regular_file(dir / "state/predictor.json"));
}

TEST(PredictorStateTest, RecordingDeviceOutcomesMovesItsPredictionsTowardThem) {
  nasoa::testing::TempDir dir;
  SyntheticWorld world(22);
  const ShippedExperience shipped{world.records(1500, "s"), "", {}};
  PredictorOptions options;
  options.members = 4;
  options.trees = 60;
  PredictorState s = PredictorState::open(dir / "state", shipped, options);
  ASSERT_NE(s.predictor(), nullptr);
  const Predictor uncalibrated = *s.predictor();
  const std::string fitted = zoo::read_file(dir / "state/predictor.json");
  const auto [device, probes, others] = device_task(world);
  const std::vector<Prediction> before = s.predictor()->predict(features_of(probes)),
                                far_before = s.predictor()->predict(features_of(others));
  for (std::size_t i = 0; i < device.size(); ++i) {
    ASSERT_TRUE(s.record(device[i]));
    EXPECT_EQ(s.predictor()->calibration_records(), i + 1) << "record() did not learn from the outcome";
  }
  EXPECT_EQ(s.predictor()->training_rows(), uncalibrated.training_rows()) << "refitted instead of calibrating";
  EXPECT_EQ(zoo::read_file(dir / "state/predictor.json"), fitted);
  const std::vector<Prediction> after = s.predictor()->predict(features_of(probes)),
                                far_after = s.predictor()->predict(features_of(others));
  expect_moved_toward_outcomes(probes, before, after, far_before, far_after, "record");
  // Exactly the shipped fit calibrated to the records the state holds.
  Predictor reference = uncalibrated;
  reference.calibrate(s.device_records());
  const std::vector<Prediction> expected = reference.predict(features_of(probes));
  for (std::size_t i = 0; i < probes.size(); ++i) EXPECT_EQ(after[i].mean, expected[i].mean) << i;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// record() appends one line to experience.log (and, without shipped
// experience, then refits and rewrites predictor.json through a temporary).
// Killed at any byte of that append, or while writing the temporary, the
// state reopens with the complete records, and recording the outcome again
// stores it once.
TEST(PredictorStateTest, AKillAtAnyByteOfAnUpdateLeavesAStateThatReopensAndRecordsOnce) {
  nasoa::testing::TempDir dir;
  PredictorOptions tiny;
  tiny.members = 2;
  tiny.trees = 3;
  tiny.max_depth = 2;
  tiny.min_leaf_weight = 1;
  tiny.max_bins = 16;
  for (const bool with_shipped : {true, false}) {
    SCOPED_TRACE(with_shipped ? "calibrated to the device's records" : "fitted on the device's records");
    SyntheticWorld world(with_shipped ? 31 : 32);
    const ShippedExperience shipped =
        with_shipped ? ShippedExperience{world.records(20, "s"), "", {}} : ShippedExperience{};
    const std::string state = dir / (with_shipped ? "calibrated" : "fitted");
    const std::string log = state + "/experience.log", json = state + "/predictor.json";
    std::vector<ExperienceRecord> outcomes;
    for (int i = 0; i < 3; ++i) outcomes.push_back(world.random_record("device-" + std::to_string(i)));
    std::vector<FeatureVector> rows = features_of(outcomes);
    for (const ExperienceRecord& r : world.records(8, "probe-")) rows.push_back(make_features(r));

    // The directory as record() leaves it before and after the third outcome.
    std::string log_before, json_before, log_after, json_after;
    std::vector<Prediction> predicted_before, predicted_after;
    {
      PredictorState s = PredictorState::open(state, shipped, tiny);
      ASSERT_TRUE(s.record(outcomes[0]));
      ASSERT_TRUE(s.record(outcomes[1]));
      log_before = zoo::read_file(log);
      json_before = zoo::read_file(json);
      predicted_before = s.predictor()->predict(rows);
      ASSERT_TRUE(s.record(outcomes[2]));
      log_after = zoo::read_file(log);
      json_after = zoo::read_file(json);
      predicted_after = s.predictor()->predict(rows);
    }
    ASSERT_GT(log_after.size(), log_before.size());
    ASSERT_EQ(log_after.compare(0, log_before.size(), log_before), 0) << "record() did not append";
    const std::string line = log_after.substr(log_before.size());
    ASSERT_EQ(line.find('\n'), line.size() - 1) << "not one line: " << line;
    if (with_shipped) {
      ASSERT_EQ(json_after, json_before) << "with shipped experience record() writes only the log";
    } else {
      ASSERT_NE(json_after, json_before) << "without shipped experience record() refits";
    }
    bool learnt = false;  // so that predictions tell two records from three
    for (std::size_t k = 0; k < rows.size(); ++k)
      learnt = learnt || predicted_after[k].mean != predicted_before[k].mean ||
               predicted_after[k].std != predicted_before[k].std;
    ASSERT_TRUE(learnt) << "the third outcome changed no prediction";

    auto expect_state = [&](const PredictorState& s, std::size_t records, const std::string& at) {
      ASSERT_EQ(s.device_records().size(), records) << at;
      for (std::size_t j = 0; j < records; ++j) EXPECT_EQ(s.device_records()[j].run_id, outcomes[j].run_id) << at;
      ASSERT_NE(s.predictor(), nullptr) << at;
      if (with_shipped) {
        EXPECT_EQ(s.predictor()->calibration_records(), records) << at;
      } else {
        EXPECT_EQ(s.predictor()->training_rows(), records) << at;
      }
      const std::vector<Prediction> predicted = s.predictor()->predict(rows);
      const std::vector<Prediction>& expected = records == 3 ? predicted_after : predicted_before;
      for (std::size_t k = 0; k < rows.size(); ++k) {
        EXPECT_EQ(predicted[k].mean, expected[k].mean) << at << ", row " << k;
        EXPECT_EQ(predicted[k].std, expected[k].std) << at << ", row " << k;
      }
    };

    // Killed after writing `cut` bytes of the line; predictor.json is still
    // the one of two records.
    for (std::size_t cut = 0; cut <= line.size(); ++cut) {
      const std::string at = "killed after " + std::to_string(cut) + " of the line's " + std::to_string(line.size()) +
                             " bytes";
      const bool whole = cut == line.size();
      write_bytes(log, log_before + line.substr(0, cut));
      write_bytes(json, json_before);
      PredictorState s = PredictorState::open(state, shipped, tiny);
      ASSERT_NO_FATAL_FAILURE(expect_state(s, whole ? 3 : 2, at));
      EXPECT_EQ(s.damage().size(), cut == 0 || whole ? 0u : 1u) << at;
      // Without shipped experience predictor.json, fitted on two records,
      // is refitted exactly when the log holds three.
      EXPECT_EQ(s.refitted_on_open(), !with_shipped && whole) << at;

      EXPECT_EQ(s.record(outcomes[2]), !whole) << at << ": the outcome in flight is stored once";
      ASSERT_NO_FATAL_FAILURE(expect_state(s, 3, at + ", recorded again"));
      ASSERT_EQ(zoo::read_file(log), log_after) << at << ": the torn line cut, the outcome appended once";
      EXPECT_EQ(zoo::read_file(json), json_after) << at;
    }
    if (with_shipped) continue;

    // Killed while writing predictor.json's temporary, after the append: the
    // temporary is missing, empty, partial or whole (named as
    // write_file_atomic names it, by a process that is gone), and
    // predictor.json is the one of two records.
    const std::string temporary = json + ".tmp.2147483646.0";
    const std::size_t missing = std::string::npos;
    for (const std::size_t cut : {missing, std::size_t(0), std::size_t(1), json_after.size() / 2,
                                  json_after.size() - 1, json_after.size()}) {
      const std::string at = cut == missing ? std::string("no temporary")
                                            : "a temporary of " + std::to_string(cut) + " of " +
                                                  std::to_string(json_after.size()) + " bytes";
      write_bytes(log, log_after);
      write_bytes(json, json_before);
      std::filesystem::remove(temporary);
      if (cut != missing) write_bytes(temporary, json_after.substr(0, cut));
      PredictorState s = PredictorState::open(state, shipped, tiny);
      EXPECT_TRUE(s.refitted_on_open()) << at << ": a predictor of two records taken for one of three";
      EXPECT_TRUE(s.damage().empty()) << at;
      ASSERT_NO_FATAL_FAILURE(expect_state(s, 3, at));
      EXPECT_EQ(zoo::read_file(json), json_after) << at;
      EXPECT_FALSE(s.record(outcomes[2])) << at;
      EXPECT_EQ(zoo::read_file(log), log_after) << at;
      const ExperienceRecord fourth = world.random_record("device-3-" + std::to_string(cut));
      EXPECT_TRUE(s.record(fourth)) << at;
      EXPECT_EQ(read_experience_log(log).records.size(), 4u) << at;
    }
    std::filesystem::remove(temporary);
  }
}

TEST(PredictorStateTest, ItIsFittedOnTheShippedRecordsUnlessNoneWasEvaluated) {
  nasoa::testing::TempDir dir;
  SyntheticWorld world(6);
  std::vector<ExperienceRecord> records = world.records(40, "s");
  ExperienceRecord outcome = world.random_record("device-1");
  outcome.regime.batch_size = 48;  // a size no shipped record has
  {
    PredictorState s = PredictorState::open(dir / "with", ShippedExperience{records}, small_options());
    ASSERT_TRUE(s.record(outcome));
    EXPECT_EQ(s.fitted_experience(), summarize_experience(records));
    EXPECT_EQ(s.fitted_experience().record_count, 40u);
  }
  for (ExperienceRecord& r : records) r.best_accuracy = -1;  // shipped, never evaluated
  PredictorState s = PredictorState::open(dir / "without", ShippedExperience{records}, small_options());
  ASSERT_TRUE(s.record(outcome));
  EXPECT_EQ(s.fitted_experience().record_count, 1u);
  EXPECT_EQ(s.fitted_experience().batch_sizes, std::vector<int>{48});
}

TEST(PredictorStateTest, TwoHoldersOfOneStateRecordARunOnce) {
  // Two processes (here two states opened before either records) that both
  // record one outcome: the log must hold it once, and the second is told.
  nasoa::testing::TempDir dir;
  SyntheticWorld world(5);
  ShippedExperience shipped{world.records(300, "s"), "", {}};
  PredictorState first = PredictorState::open(dir / "state", shipped, small_options());
  PredictorState second = PredictorState::open(dir / "state", shipped, small_options());
  const ExperienceRecord outcome = world.random_record("device-shared");
  EXPECT_TRUE(first.record(outcome));
  EXPECT_FALSE(second.record(outcome)) << "recorded again by a holder that opened the state before it was written";
  EXPECT_EQ(read_experience_log(dir / "state/experience.log").records.size(), 1u);
  EXPECT_TRUE(second.record(world.random_record("device-other")));
  EXPECT_EQ(read_experience_log(dir / "state/experience.log").records.size(), 2u);
}

TEST(PredictorStateTest, SurvivesAKillAtEachOfItsCrashPoints) {
  nasoa::testing::TempDir dir;
  const std::string state = dir / "state";
  SyntheticWorld world(6);
  const ShippedExperience shipped{world.records(300, "s"), "bundle-digest", {}};
  std::vector<ExperienceRecord> outcomes;
  for (int i = 0; i < 3; ++i) outcomes.push_back(world.random_record("device-" + std::to_string(i)));
  {
    PredictorState s = PredictorState::open(state, shipped, small_options());
    ASSERT_TRUE(s.record(outcomes[0]));
  }
  const std::string log = state + "/experience.log", json = state + "/predictor.json";
  const std::string stale_predictor = zoo::read_file(json);

  // Killed after appending the second outcome (with shipped experience, the
  // log is all that record() writes); and killed again while appending the
  // third (a torn tail).
  append_experience(log, [&] {
    ExperienceRecord r = outcomes[1];
    r.source = ExperienceSource::kDevice;
    return r;
  }());
  const std::string third = encode_experience_line(outcomes[2]);
  {
    std::ofstream out(log, std::ios::binary | std::ios::app);
    out << third.substr(0, third.size() / 2);
  }
  PredictorState s = PredictorState::open(state, shipped, small_options());
  EXPECT_FALSE(s.refitted_on_open()) << "predictor.json is fitted on the shipped experience alone";
  EXPECT_EQ(zoo::read_file(json), stale_predictor);
  ASSERT_EQ(s.device_records().size(), 2u);
  ASSERT_EQ(s.damage().size(), 1u);
  EXPECT_NE(s.damage()[0].find("dropped"), std::string::npos) << s.damage()[0];
  // What it predicts is a fresh fit on the shipped experience, calibrated to
  // the device records the log kept.
  Predictor fresh = Predictor::fit(shipped.records(), {}, small_options());
  fresh.calibrate(s.device_records());
  EXPECT_EQ(s.predictor()->calibration_records(), 2u);
  const auto shipped_evaluated = std::count_if(shipped.records().begin(), shipped.records().end(),
                                               [](const ExperienceRecord& r) { return r.best_accuracy >= 0; });
  EXPECT_EQ(s.evaluated_records(), std::size_t(shipped_evaluated) + 2) << "shipped and device together";
  const FeatureVector x = make_features(outcomes[2]);
  EXPECT_EQ(s.predictor()->predict(x).mean, fresh.predict(x).mean);

  // The interrupted outcome is recorded again; the torn tail is cut first.
  EXPECT_TRUE(s.record(outcomes[2]));
  const ExperienceLogContents contents = read_experience_log(log);
  EXPECT_EQ(contents.records.size(), 3u);
  EXPECT_TRUE(contents.skipped.empty());
  EXPECT_FALSE(contents.torn_tail);

  // A damaged or missing predictor.json is refitted, and the damage named.
  std::string damaged = zoo::read_file(json);
  damaged[damaged.size() / 2] = char(damaged[damaged.size() / 2] ^ 0x01);
  zoo::write_file_atomic(json, damaged);
  PredictorState after_damage = PredictorState::open(state, shipped, small_options());
  EXPECT_TRUE(after_damage.refitted_on_open());
  ASSERT_EQ(after_damage.damage().size(), 1u);
  EXPECT_NE(after_damage.damage()[0].find("predictor.json"), std::string::npos) << after_damage.damage()[0];
  std::filesystem::remove(json);
  EXPECT_TRUE(PredictorState::open(state, shipped, small_options()).refitted_on_open());
  EXPECT_FALSE(PredictorState::open(state, shipped, small_options()).refitted_on_open());
}

// Without shipped experience every record() refits and rewrites
// predictor.json after appending to the log: a kill between the two leaves a
// predictor fitted on fewer records than the log holds, which open() must
// see and refit; and a kill during the append leaves a torn line to drop.
TEST(PredictorStateTest, SurvivesAKillBetweenAppendingAndRefittingWithoutShippedExperience) {
  nasoa::testing::TempDir dir;
  const std::string state = dir / "state";
  const std::string log = state + "/experience.log", json = state + "/predictor.json";
  SyntheticWorld world(9);
  const ExperienceRecord a = world.random_record("device-a"), b = world.random_record("device-b");
  std::string fitted_on_a;
  {
    PredictorState s = PredictorState::open(state, {}, small_options());
    ASSERT_TRUE(s.record(a));
    fitted_on_a = zoo::read_file(json);
    ASSERT_TRUE(s.record(b));
    ASSERT_NE(zoo::read_file(json), fitted_on_a) << "the second record did not refit";
  }
  // Killed after B's append, before its refit was renamed into place.
  zoo::write_file_atomic(json, fitted_on_a);
  {
    PredictorState s = PredictorState::open(state, {}, small_options());
    EXPECT_TRUE(s.refitted_on_open()) << "a predictor fitted on A alone was taken for one fitted on A and B";
    ASSERT_NE(s.predictor(), nullptr);
    EXPECT_EQ(s.predictor()->training_rows(), 2u);
    ASSERT_EQ(s.device_records().size(), 2u);
    const Predictor fresh = Predictor::fit({}, s.device_records(), small_options());
    const FeatureVector x = make_features(world.random_record("probe"));
    EXPECT_EQ(s.predictor()->predict(x).mean, fresh.predict(x).mean);
    EXPECT_NE(zoo::read_file(json), fitted_on_a) << "the refit was not saved";
  }
  // Killed halfway through B's append: B's line is torn, and predictor.json
  // is still the one fitted on A, which is what the log now holds.
  const std::string contents = zoo::read_file(log);
  ASSERT_EQ(contents.back(), '\n');
  const std::size_t b_starts = contents.rfind('\n', contents.size() - 2) + 1;
  zoo::write_file_atomic(log, contents.substr(0, b_starts + (contents.size() - b_starts) / 2));
  zoo::write_file_atomic(json, fitted_on_a);
  PredictorState s = PredictorState::open(state, {}, small_options());
  ASSERT_EQ(s.device_records().size(), 1u);
  EXPECT_EQ(s.device_records()[0].run_id, a.run_id);
  ASSERT_EQ(s.damage().size(), 1u) << "the torn line was not reported";
  EXPECT_FALSE(s.refitted_on_open()) << "predictor.json is fitted on what the log holds";
  ASSERT_NE(s.predictor(), nullptr);
  EXPECT_EQ(s.predictor()->training_rows(), 1u);
}

TEST(PredictorStateTest, HasNoPredictorWithoutExperience) {
  nasoa::testing::TempDir dir;
  PredictorState s = PredictorState::open(dir / "state", {}, small_options());
  EXPECT_EQ(s.predictor(), nullptr);
  EXPECT_EQ(s.evaluated_records(), 0u);
  SyntheticWorld world(8);
  EXPECT_TRUE(s.record(world.random_record("first")));
  ASSERT_NE(s.predictor(), nullptr);
  EXPECT_EQ(s.predictor()->training_rows(), 1u);
  EXPECT_EQ(s.evaluated_records(), 1u);
}

}  // namespace
}  // namespace nasoa::runtime
