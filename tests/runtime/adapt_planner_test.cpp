// The schedule generator: no plan over any budget by the profile's own
// estimate, the predictor's preference followed, deterministic ties, and an
// impossible budget answered with the budget that would do. Planning time is
// printed, not asserted.
#include "runtime/adapt/planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <tuple>

#include "nasoa/error.h"
#include "tests/runtime/adapt_support.h"
#include "tests/support/expect_error.h"

namespace nasoa::runtime {
namespace {

using testing::make_profile;
using testing::SyntheticWorld;

// A predictor whose answer a test decides.
class StubPredictor : public AccuracyPredictor {
 public:
  explicit StubPredictor(std::function<Prediction(const FeatureVector&)> f) : f_(std::move(f)) {}
  std::vector<Prediction> predict(const std::vector<FeatureVector>& rows) const override {
    ++calls;
    std::vector<Prediction> out;
    for (const FeatureVector& x : rows) out.push_back(f_(x));
    return out;
  }
  mutable int calls = 0;

 private:
  std::function<Prediction(const FeatureVector&)> f_;
};

const std::vector<ModelFeatures>& models() {
  static const std::vector<ModelFeatures> m = SyntheticWorld(1).models();
  return m;
}

// Which of models() a feature row describes (they differ in parameters).
std::size_t model_of(const FeatureVector& x) {
  for (std::size_t i = 0; i < models().size(); ++i)
    if (std::abs(x[kLogParameters] - std::log(double(models()[i].parameters))) < 1e-9) return i;
  ADD_FAILURE() << "a feature row of no known model";
  return 0;
}

const TaskMeta kTask = testing::make_meta(10, 100);
constexpr std::int64_t kTrainImages = 800;

PlannerOptions options_with(std::int64_t validation_images = 200, double spent = 1.0) {
  PlannerOptions o;
  o.overheads.validation_images = validation_images;
  o.overheads.spent_seconds = spent;
  o.overheads.spent_joules = 10 * spent;
  return o;
}

// The plan's cost as planner.h states it, computed here from the profile and
// the options alone (not through the planner's code):
//   seconds = spent + startup + run + finishing + checkpoints * checkpoint,
//             run = epochs * (train_epoch + eval_epoch) * time_scale; for P parameters,
//             finishing = 0.5 + 4P / 50e6 + 0.25 s (saving, slack) and a
//             checkpoint 0.25 + 16P / 50e6 s, written at the first epoch
//             end, every checkpoint interval and at the last: at most
//             min(epochs, 2 + floor(run / interval)), 1 for one epoch
//   joules  = spent_joules + watts * (seconds - spent), watts the cell's
//             measurement, else estimate_watts; unmetered: estimate_watts,
//             else the most the model drew in any cell; none: unknown
//   memory  = resident + the cell's rss increase + 2 float copies of the
//             weights + unprofiled; without resident_bytes (or an increase)
//             the cell's peak + unprofiled; unknown without either
struct Cost {
  double seconds = 0;
  std::optional<double> joules;
  std::optional<std::int64_t> memory;
};
Cost cost_of(const std::string& model, int batch, int frozen, int epochs, const DeviceProfile& profile,
             const PlannerOptions& o, std::int64_t train_images, const std::vector<ModelFeatures>& zoo = models()) {
  const ModelProfile& m = profile.model(model);
  const PlanOverheads& over = o.overheads;
  // Evaluation at the plan's batch: a batch of b takes per_batch + b *
  // per_image, with t(1) and t(64) per image the profile's figures, and
  // every batch counts, a short last one included.
  const double per_image = (64 * m.inference_seconds_per_image_batch64 - m.inference_seconds_per_image_batch1) / 63;
  const double per_batch = m.inference_seconds_per_image_batch1 - per_image;
  const std::int64_t validation_batches = (over.validation_images + batch - 1) / batch;
  const double epoch = over.time_scale * (predict_epoch_seconds(profile, model, train_images, batch, frozen) +
                                          double(validation_batches) * per_batch +
                                          double(over.validation_images) * per_image);
  Cost c;
  const auto features = std::find_if(zoo.begin(), zoo.end(), [&](const ModelFeatures& f) { return f.name == model; });
  const double weights = features == zoo.end() ? 0.0 : double(features->parameters);
  const double run = epochs * epoch;
  const int checkpoints =
      epochs == 1 ? 1 : int(std::min<double>(epochs, 2 + std::floor(run / over.checkpoint_interval_seconds)));
  c.seconds = over.spent_seconds + over.startup_seconds + run + (0.5 + 4 * weights / 50e6 + 0.25) +
              checkpoints * (0.25 + 16 * weights / 50e6);
  const StepTiming* cell = nullptr;
  double most_watts = 0;
  for (const StepTiming& s : m.steps) {
    if (s.batch_size == batch && s.frozen_stages == frozen) cell = &s;
    if (s.watts) most_watts = std::max(most_watts, *s.watts);
  }
  std::optional<double> watts;
  if (o.unmetered) {
    if (o.estimate_watts > 0) watts = o.estimate_watts;
    else if (most_watts > 0) watts = most_watts;
  } else if (cell && cell->watts) {
    watts = *cell->watts;
  } else if (o.estimate_watts > 0) {
    watts = o.estimate_watts;
  }
  if (watts) c.joules = over.spent_joules + *watts * (c.seconds - over.spent_seconds);
  std::optional<std::int64_t> parameters;
  for (const ModelFeatures& f : zoo)
    if (f.name == model) parameters = f.parameters;
  if (!parameters) ADD_FAILURE() << "no features of model " << model;
  // One image over joins the epoch's last batch, which holds batch + 1.
  const bool one_over = batch > 1 && train_images > batch && train_images % batch == 1;
  const auto at_largest = [&](std::int64_t bytes) {
    return one_over ? std::int64_t(std::ceil(double(bytes) * double(batch + 1) / double(batch))) : bytes;
  };
  if (cell) {
    if (over.resident_bytes > 0 && cell->rss_increase_bytes)
      c.memory = over.resident_bytes + at_largest(*cell->rss_increase_bytes) + 2 * 4 * parameters.value_or(0) +
                 over.unprofiled_bytes;
    else if (cell->peak_rss_bytes)
      c.memory = at_largest(*cell->peak_rss_bytes) + over.unprofiled_bytes;
  }
  return c;
}
Cost cost_of(const PlannedRun& p, const DeviceProfile& profile, const PlannerOptions& o, std::int64_t train_images) {
  return cost_of(p.regime.model, p.regime.batch_size, p.regime.frozen_stages, p.regime.epochs, profile, o,
                 train_images);
}

// Whether a cost fits a budget by planner.h's rule (every limit less the
// safety margin; unknown joules or memory fit no budget limiting them), with
// `slack` relative room: +1e-9 to check a plan's cost (rounding in the
// planner's favour), -1e-9 to say a cost surely fits.
bool fits(const Cost& c, const PlannerBudget& b, double margin, double slack) {
  if (!(c.seconds <= b.seconds * (1 - margin) * (1 + slack))) return false;
  if (b.joules && !(c.joules && *c.joules <= *b.joules * (1 - margin) * (1 + slack))) return false;
  // Memory is whole bytes on both sides: no slack.
  if (b.memory_bytes && !(c.memory && double(*c.memory) <= double(*b.memory_bytes) * (1 - margin))) return false;
  return true;
}

// Parses "at least X s" out of a nothing-fits message.
double needed_seconds(const std::string& message) {
  std::smatch m;
  if (!std::regex_search(message, m, std::regex("at least ([0-9.]+) s"))) {
    ADD_FAILURE() << "no needed budget in: " << message;
    return 0;
  }
  return std::stod(m[1]);
}

TEST(PlannerTest, NoPlanExceedsAnyBudgetByTheProfilesEstimate) {
  // A predictor whose scores vary with every feature a plan chooses, so that
  // the plans picked are spread over the configurations.
  const StubPredictor bumpy([](const FeatureVector& x) {
    const double a = 3 * x[kLogParameters] + 5 * x[kLogLearningRate] + 0.37 * x[kEpochs] + 2 * x[kFrozenFraction] +
                     x[kLogBatch];
    return Prediction{0.5 + 0.2 * std::sin(a), 0.02 + 0.03 * (1 + std::cos(1.7 * a))};
  });
  const DeviceProfile measured = make_profile(models());
  std::mt19937_64 rng(99);
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * double(rng() >> 11) * 0x1.0p-53; };
  auto chance = [&](double p) { return uniform(0, 1) < p; };
  constexpr double kMiB = 1024.0 * 1024.0;
  int planned = 0, refused = 0, unmetered_joules = 0, unknown_joules = 0, resident_memory = 0, peak_memory = 0;
  for (int trial = 0; trial < 400; ++trial) {
    // The profile as devices have it: cells without a power reading (a
    // model without any in some), without the rss increase or without any
    // memory figure.
    DeviceProfile profile = measured;
    const int power = int(rng() % 3);  // 0: all measured, 1: some cells not, 2: also models 3-5 not at all
    for (std::size_t mi = 0; mi < profile.models.size(); ++mi)
      for (StepTiming& s : profile.models[mi].steps) {
        if ((power >= 1 && chance(0.3)) || (power == 2 && mi >= 3)) s.watts.reset();
        const double memory = uniform(0, 1);
        if (memory < 0.1) {
          s.rss_increase_bytes.reset();
          s.peak_rss_bytes.reset();
        } else if (memory < 0.25) {
          s.rss_increase_bytes.reset();
        }
      }
    PlannerBudget budget;
    budget.seconds = std::exp(uniform(std::log(1.0), std::log(400.0)));
    if (chance(0.5)) budget.joules = budget.seconds * uniform(4, 60);
    if (chance(0.4)) budget.memory_bytes = std::int64_t(uniform(150, 4000) * kMiB);
    // A budget of energy alone: no time limit.
    if (budget.joules && chance(0.2)) budget.seconds = std::numeric_limits<double>::infinity();
    PlannerOptions o = options_with(std::int64_t(uniform(0, 500)), uniform(0, 3));
    o.overheads.safety_margin = uniform(0, 0.3);
    // As the SDK plans: what the process holds now, and whether a meter reads.
    if (chance(0.7)) o.overheads.resident_bytes = std::int64_t(uniform(50, 1500) * kMiB);
    if (chance(0.5)) o.overheads.unprofiled_bytes = std::int64_t(uniform(0, 100) * kMiB);
    o.unmetered = chance(0.5);
    if (chance(0.5)) o.estimate_watts = uniform(5, 40);
    if (chance(0.5)) o.risk_aversion = uniform(0, 1.5);
    // A device faster or slower than its profile (device_speed.h).
    if (chance(0.3)) o.overheads.time_scale = std::exp(uniform(std::log(0.25), std::log(4.0)));
    const auto train_images = std::int64_t(uniform(20, 3000));
    const double margin = o.overheads.safety_margin;
    const std::string trial_text = "trial " + std::to_string(trial);
    Schedule s;
    try {
      s = generate_schedule(kTask, train_images, budget, profile, models(), bumpy, o);
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      ASSERT_NE(std::string(e.what()).find("no plan fits"), std::string::npos) << e.what();
      // Refused only where no configuration fits for one epoch.
      for (const ModelFeatures& m : models())
        for (int b : profile.batch_sizes)
          for (int f = 0; f < profile.model(m.name).num_stages; ++f)
            ASSERT_FALSE(fits(cost_of(m.name, b, f, 1, profile, o, train_images), budget, margin, -1e-9))
                << trial_text << ": refused, but " << m.name << " at batch " << b << " with " << f
                << " frozen fits for 1 epoch: " << e.what();
      ++refused;
      continue;
    }
    ++planned;
    std::vector<const PlannedRun*> plans{&s.best};
    for (const PlannedRun& a : s.alternatives) plans.push_back(&a);
    ASSERT_LE(s.alternatives.size(), 5u);
    const int epoch_cap = *std::max_element(o.grid.epochs.begin(), o.grid.epochs.end());
    for (std::size_t i = 0; i < plans.size(); ++i) {
      const PlannedRun& p = *plans[i];
      const Cost c = cost_of(p, profile, o, train_images);
      const std::string where = trial_text + " plan " + std::to_string(i) + ": " + to_json(p);
      // What the plan says it costs is what planner.h says it costs.
      ASSERT_NEAR(p.seconds, c.seconds, 1e-9 * c.seconds) << where;
      ASSERT_EQ(p.joules.has_value(), c.joules.has_value()) << where;
      if (c.joules) {
        ASSERT_NEAR(*p.joules, *c.joules, 1e-9 * *c.joules) << where;
      }
      ASSERT_EQ(p.memory_bytes, c.memory) << where;
      // And it is within every budget less the margin.
      ASSERT_LE(c.seconds, budget.seconds * (1 - margin) * (1 + 1e-9)) << where;
      if (budget.joules) {
        ASSERT_TRUE(c.joules) << "unknown joules planned under a joule budget: " << where;
        ASSERT_LE(*c.joules, *budget.joules * (1 - margin) * (1 + 1e-9)) << where;
      }
      if (budget.memory_bytes) {
        ASSERT_TRUE(c.memory) << "unknown memory planned under a memory cap: " << where;
        ASSERT_LE(double(*c.memory), double(*budget.memory_bytes) * (1 - margin)) << where;
      }
      // max_fitting_epochs is the most that fit: one more epoch does not.
      ASSERT_LE(p.regime.epochs, p.max_fitting_epochs) << where;
      ASSERT_LE(p.max_fitting_epochs, epoch_cap) << where;
      const Regime& r = p.regime;
      ASSERT_TRUE(fits(cost_of(r.model, r.batch_size, r.frozen_stages, p.max_fitting_epochs, profile, o, train_images),
                       budget, margin, 1e-9))
          << where;
      if (p.max_fitting_epochs < epoch_cap) {
        ASSERT_FALSE(fits(cost_of(r.model, r.batch_size, r.frozen_stages, p.max_fitting_epochs + 1, profile, o,
                                  train_images),
                          budget, margin, -1e-9))
            << "an epoch more fits: " << where;
      }
      ASSERT_LT(p.regime.frozen_stages, profile.model(p.regime.model).num_stages) << where;
      if (i > 0) {
        ASSERT_LE(p.score, plans[i - 1]->score) << where;
      }
      if (budget.joules && o.unmetered) ++unmetered_joules;
      if (!p.joules) ++unknown_joules;
      if (budget.memory_bytes && o.overheads.resident_bytes > 0) {
        const StepTiming* cell = nullptr;
        for (const StepTiming& t : profile.model(r.model).steps)
          if (t.batch_size == r.batch_size && t.frozen_stages == r.frozen_stages) cell = &t;
        ++(cell && cell->rss_increase_bytes ? resident_memory : peak_memory);
      }
    }
  }
  std::cout << "[ property ] " << planned << " budgets planned, " << refused << " refused as impossible; plans under"
            << " a joule budget unmetered " << unmetered_joules << ", of unknown joules " << unknown_joules
            << ", under a memory cap with resident memory " << resident_memory << " (by the peak " << peak_memory
            << ")\n";
  // The property was checked where it can break, not only where it cannot.
  EXPECT_GT(planned, 100);
  EXPECT_GT(refused, 20);
  EXPECT_GT(unmetered_joules, 20);
  EXPECT_GT(unknown_joules, 5);
  EXPECT_GT(resident_memory, 20);
  EXPECT_GT(peak_memory, 2);
}

TEST(PlannerTest, PicksThePlanThePredictorScoresHighest) {
  const DeviceProfile profile = make_profile(models());
  PlannerBudget budget;
  budget.seconds = 300;
  for (std::size_t favourite : {std::size_t(3), std::size_t(1)}) {
    const StubPredictor stub([&](const FeatureVector& x) {
      const double lr_bonus = std::abs(x[kLogLearningRate] - std::log(0.03)) < 1e-9 ? 0.05 : 0.0;
      const double frozen_bonus = x[kFrozenFraction] == 0.2 ? 0.02 : 0.0;
      return Prediction{(model_of(x) == favourite ? 0.7 : 0.5) + lr_bonus + frozen_bonus, 0.02};
    });
    const Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, models(), stub, options_with());
    EXPECT_EQ(stub.calls, 1) << "one batch call for all plans";
    EXPECT_EQ(s.best.regime.model, models()[favourite].name);
    EXPECT_EQ(s.best.regime.learning_rate, 0.03);
    EXPECT_EQ(s.best.regime.frozen_stages, 1);
    EXPECT_DOUBLE_EQ(s.best.predicted_accuracy, 0.77);
    EXPECT_GT(s.plans_fitting, 1000u);
  }
}

TEST(PlannerTest, RiskAversionPrefersTheSurerPlan) {
  const DeviceProfile profile = make_profile(models());
  PlannerBudget budget;
  budget.seconds = 120;
  const StubPredictor stub([](const FeatureVector& x) {
    switch (model_of(x)) {
      case 0: return Prediction{0.80, 0.20};
      case 1: return Prediction{0.78, 0.01};
      default: return Prediction{0.50, 0.05};
    }
  });
  PlannerOptions o = options_with();
  EXPECT_EQ(generate_schedule(kTask, kTrainImages, budget, profile, models(), stub, o).best.regime.model, "m0");
  o.risk_aversion = 1;
  const Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, models(), stub, o);
  EXPECT_EQ(s.best.regime.model, "m1");
  EXPECT_DOUBLE_EQ(s.best.score, 0.77);
}

TEST(PlannerTest, FillsTheBudgetWhenMoreTrainingHelpsAndSaysWhatBoundsIt) {
  const DeviceProfile profile = make_profile(models());
  const StubPredictor more_is_better([](const FeatureVector& x) {
    return Prediction{0.3 + 0.01 * x[kEpochs] + (model_of(x) == 2 ? 0.1 : 0.0), 0.02};
  });
  PlannerBudget budget;
  budget.seconds = 20;
  const PlannerOptions o = options_with();
  Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, o);
  EXPECT_EQ(s.best.regime.model, "m2");
  EXPECT_EQ(s.best.regime.epochs, s.best.max_fitting_epochs);
  EXPECT_GT(s.best.regime.epochs, 1);
  EXPECT_NE(s.best.why.find("bound by time"), std::string::npos) << s.best.why;
  PlannedRun one_more = s.best;
  ++one_more.regime.epochs;
  EXPECT_GT(cost_of(one_more, profile, o, kTrainImages).seconds, s.usable_seconds) << "an epoch more would fit";

  // Every configuration draws at least 10 W: 400 J after the margin and the
  // spent joules buy at most 40 s, while time would allow about 180 s.
  budget.seconds = 200;
  budget.joules = (o.overheads.spent_joules + 400) / (1 - o.overheads.safety_margin);
  s = generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, o);
  EXPECT_NE(s.best.why.find("bound by energy"), std::string::npos) << s.best.why;
  EXPECT_LT(s.best.seconds, 60);

  budget = PlannerBudget{};
  budget.seconds = 1e5;
  s = generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, o);
  const int cap = *std::max_element(o.grid.epochs.begin(), o.grid.epochs.end());
  EXPECT_EQ(s.best.regime.epochs, cap);
  EXPECT_NE(s.best.why.find("the grid's epoch cap (" + std::to_string(cap) + ")"), std::string::npos) << s.best.why;
  // A caller that cut the grid says why it stops there.
  PlannerOptions cut = o;
  cut.grid.epoch_cap_reason = "the longest run of the predictor's experience";
  s = generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, cut);
  EXPECT_EQ(s.best.why, "the longest run of the predictor's experience (" + std::to_string(cap) + " epochs)");

  const StubPredictor fewer_is_better([](const FeatureVector& x) {
    return Prediction{0.9 - 0.01 * std::abs(x[kEpochs] - 3), 0.02};
  });
  s = generate_schedule(kTask, kTrainImages, budget, profile, models(), fewer_is_better, o);
  EXPECT_EQ(s.best.regime.epochs, 3);
  EXPECT_NE(s.best.why.find("predicted best at 3"), std::string::npos) << s.best.why;
}

TEST(PlannerTest, ATimeScaleCostsEveryEpochAtTheDevicesOwnSpeed) {
  const DeviceProfile profile = make_profile(models());
  const StubPredictor more_is_better([](const FeatureVector& x) {
    return Prediction{0.3 + 0.001 * x[kEpochs] + (model_of(x) == 2 ? 0.1 : 0.0), 0.02};
  });
  PlannerBudget budget;
  budget.seconds = 60;
  PlannerOptions o = options_with();
  o.grid.batch_sizes = {32};
  o.grid.frozen_stages = {0};
  const Schedule trusted = generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, o);
  o.overheads.time_scale = 2;
  const Schedule slower = generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, o);
  ASSERT_EQ(trusted.best.regime.model, "m2");
  ASSERT_EQ(slower.best.regime.model, "m2");
  // Each epoch costs twice the profile's, so about half the epochs fit, and
  // the one more that did not is over the budget at the device's speed.
  EXPECT_NEAR(slower.best.training_seconds / slower.best.regime.epochs,
              2 * trusted.best.training_seconds / trusted.best.regime.epochs, 1e-9);
  EXPECT_LE(slower.best.regime.epochs, trusted.best.regime.epochs / 2 + 1);
  EXPECT_GE(slower.best.regime.epochs, trusted.best.regime.epochs / 2 - 1);
  PlannedRun one_more = slower.best;
  ++one_more.regime.epochs;
  EXPECT_GT(cost_of(one_more, profile, o, kTrainImages).seconds, slower.usable_seconds);
  EXPECT_LE(cost_of(slower.best, profile, o, kTrainImages).seconds, slower.usable_seconds * (1 + 1e-9));
  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::infinity(), std::nan("")}) {
    o.overheads.time_scale = bad;
    EXPECT_TRUE(nasoa::testing::throws_error(
        [&] { generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, o); },
        ErrorCode::kInvalidArgument, "time_scale"))
        << bad;
  }
}

TEST(PlannerTest, AModelsOwnEpochCapKeepsItsPlansShortAndSaysWhy) {
  const DeviceProfile profile = make_profile(models());
  // m2 is the best model at any length, and longer is better for all.
  const StubPredictor more_is_better([](const FeatureVector& x) {
    return Prediction{0.3 + 0.0001 * x[kEpochs] + (model_of(x) == 2 ? 0.1 : 0.0), 0.02};
  });
  PlannerBudget budget;
  budget.seconds = 1e5;  // time for every epoch count of the grid
  PlannerOptions o = options_with();
  const int grid_cap = *std::max_element(o.grid.epochs.begin(), o.grid.epochs.end());
  ASSERT_GT(grid_cap, 32);
  o.grid.epoch_caps_by_model["m2"] = {32, "m2's longest run"};
  o.alternatives = 1000;  // every (configuration, learning rate)
  const Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, o);
  EXPECT_EQ(s.best.regime.model, "m2") << "0.1 ahead at 32 epochs beats the others at " << grid_cap;
  EXPECT_EQ(s.best.regime.epochs, 32);
  EXPECT_EQ(s.best.max_fitting_epochs, 32) << "filling the budget stops at the model's cap";
  EXPECT_EQ(s.best.why, "m2's longest run (32 epochs)");
  bool others_go_further = false;
  for (const PlannedRun& a : s.alternatives) {
    if (a.regime.model == "m2") EXPECT_LE(a.regime.epochs, 32) << a.why;
    else others_go_further = others_go_further || a.regime.epochs == grid_cap;
  }
  EXPECT_TRUE(others_go_further) << "a model not named keeps the grid's cap";
  // Off the grid's steps, without filling the budget, the cap itself is
  // planned: a grid stepping from 32 to 48 plans m2 for 40.
  PlannerOptions off_grid = options_with();
  off_grid.grid.fill_budget = false;
  ASSERT_EQ(std::count(off_grid.grid.epochs.begin(), off_grid.grid.epochs.end(), 40), 0);
  off_grid.grid.epoch_caps_by_model["m2"] = {40, "m2's longest run"};
  const Schedule at40 = generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, off_grid);
  EXPECT_EQ(at40.best.regime.model, "m2");
  EXPECT_EQ(at40.best.regime.epochs, 40);
  EXPECT_EQ(at40.best.why, "m2's longest run (40 epochs)");
  // Capped below the best plan's length only where the cap is lower.
  PlannerOptions loose = options_with();
  loose.grid.epoch_caps_by_model["m2"] = {grid_cap * 4, "m2's longest run"};
  EXPECT_EQ(generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, loose).best.regime.epochs,
            grid_cap);

  PlannerOptions bad = options_with();
  bad.grid.epoch_caps_by_model["m1"] = {0, "none"};
  EXPECT_TRUE(nasoa::testing::throws_error(
      [&] { generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, bad); },
      ErrorCode::kInvalidArgument, "epoch cap 0 of model 'm1'"));
}

TEST(PlannerTest, AFrozenCountsOwnEpochCapKeepsItsPlansShortAndSaysWhy) {
  const DeviceProfile profile = make_profile(models());
  // m2 with one stage frozen is the best plan at any length, and longer is
  // better for all.
  const StubPredictor more_is_better([](const FeatureVector& x) {
    const bool favourite = model_of(x) == 2 && x[kFrozenFraction] == 0.2;
    return Prediction{0.3 + 0.0001 * x[kEpochs] + (favourite ? 0.1 : 0.0), 0.02};
  });
  PlannerBudget budget;
  budget.seconds = 1e5;
  PlannerOptions o = options_with();
  const int grid_cap = *std::max_element(o.grid.epochs.begin(), o.grid.epochs.end());
  ASSERT_GT(grid_cap, 32);
  o.grid.epoch_caps_by_frozen["m2"][1] = {32, "m2's longest run with 1 frozen stage"};
  o.alternatives = 1000;
  const Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, o);
  EXPECT_EQ(s.best.regime.model, "m2");
  EXPECT_EQ(s.best.regime.frozen_stages, 1);
  EXPECT_EQ(s.best.regime.epochs, 32);
  EXPECT_EQ(s.best.why, "m2's longest run with 1 frozen stage (32 epochs)");
  bool m2_goes_further = false;
  for (const PlannedRun& a : s.alternatives) {
    if (a.regime.model != "m2") continue;
    if (a.regime.frozen_stages == 1) {
      EXPECT_LE(a.regime.epochs, 32) << a.why;
    } else if (a.regime.frozen_stages == 0) {
      m2_goes_further = m2_goes_further || a.regime.epochs == grid_cap;
    }
  }
  EXPECT_TRUE(m2_goes_further) << "another count of the same model keeps the grid's cap";
  // The lower of the model's cap and the count's binds.
  PlannerOptions both = o;
  both.grid.epoch_caps_by_model["m2"] = {16, "m2's longest run"};
  const Schedule at16 = generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, both);
  EXPECT_EQ(at16.best.regime.epochs, 16);
  EXPECT_EQ(at16.best.why, "m2's longest run (16 epochs)");

  PlannerOptions bad = options_with();
  bad.grid.epoch_caps_by_frozen["m1"][0] = {0, "none"};
  EXPECT_TRUE(nasoa::testing::throws_error(
      [&] { generate_schedule(kTask, kTrainImages, budget, profile, models(), more_is_better, bad); },
      ErrorCode::kInvalidArgument, "epoch cap 0 of model 'm1' with 0 frozen stages"));
}

TEST(PlannerTest, AGridWithEvidenceCapsEachModelAndFrozenCountAtItsOwnRuns) {
  // m0 ran 512 epochs with nothing frozen and 64 with one stage frozen; m1
  // ran 64 with nothing frozen; the other models none.
  std::vector<ExperienceRecord> records;
  for (const auto& [model, frozen, epochs] : std::vector<std::tuple<int, int, int>>{{0, 0, 512}, {0, 1, 64}, {1, 0, 64}}) {
    ExperienceRecord r = testing::make_record(0);
    r.model = models()[std::size_t(model)];
    r.regime.model = r.model.name;
    r.regime.frozen_stages = frozen;
    r.regime.epochs = epochs;
    records.push_back(r);
  }
  const ExperienceSummary experience = summarize_experience(records);
  PlanGrid grid;
  grid.frozen_stages = {0, 1};
  const PlanGrid out = grid_with_evidence(grid, experience, {models()[0], models()[1]});
  EXPECT_EQ(out.epochs.back(), 512);
  ASSERT_EQ(out.epoch_caps_by_model.size(), 1u);
  EXPECT_EQ(out.epoch_caps_by_model.at("m1").epochs, 64);
  ASSERT_TRUE(out.epoch_caps_by_frozen.count("m0"));
  EXPECT_EQ(out.epoch_caps_by_frozen.at("m0").at(1).epochs, 64);
  EXPECT_EQ(out.epoch_caps_by_frozen.at("m0").at(1).reason,
            "the longest run of m0 with 1 frozen stage in the predictor's experience");
  EXPECT_FALSE(out.epoch_caps_by_frozen.at("m0").count(0)) << "nothing frozen ran the model's longest";
  for (int f = 2; f < models()[0].num_stages; ++f)
    EXPECT_EQ(out.epoch_caps_by_frozen.at("m0").at(f).epochs, 32) << "every count the model has, run or not: " << f;
  EXPECT_EQ(out.epoch_caps_by_frozen.at("m1").at(1).epochs, 32);
  EXPECT_FALSE(out.epoch_caps_by_frozen.at("m1").count(0));
  // A model whose stage count the caller does not know plans the
  // profile's: every count it could have is capped.
  ModelFeatures unknown = models()[0];
  unknown.num_stages = 0;
  const PlanGrid blind = grid_with_evidence(PlanGrid{}, experience, {unknown});
  ASSERT_TRUE(blind.epoch_caps_by_frozen.count("m0"));
  EXPECT_EQ(blind.epoch_caps_by_frozen.at("m0").at(1).epochs, 64);
  EXPECT_EQ(blind.epoch_caps_by_frozen.at("m0").at(models()[0].num_stages - 1).epochs, 32);
}

TEST(PlannerTest, BreaksTiesTheSameWayWhateverTheGridOrder) {
  const DeviceProfile profile = make_profile(models());
  const StubPredictor flat([](const FeatureVector&) { return Prediction{0.6, 0.05}; });
  PlannerBudget budget;
  budget.seconds = 60;
  PlannerOptions o = options_with();
  const Schedule a = generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o);
  std::reverse(o.grid.learning_rates.begin(), o.grid.learning_rates.end());
  std::reverse(o.grid.epochs.begin(), o.grid.epochs.end());
  o.grid.batch_sizes = {64, 32, 16, 8};
  std::vector<ModelFeatures> reversed(models().rbegin(), models().rend());
  const Schedule b = generate_schedule(kTask, kTrainImages, budget, profile, reversed, flat, o);
  EXPECT_EQ(to_json(a.best), to_json(b.best));
  ASSERT_EQ(a.alternatives.size(), b.alternatives.size());
  for (std::size_t i = 0; i < a.alternatives.size(); ++i) EXPECT_EQ(to_json(a.alternatives[i]), to_json(b.alternatives[i]));
  // With nothing to choose between, the plan that trains longest wins: a
  // flat prediction does not say more training gains nothing.
  EXPECT_EQ(a.best.regime.epochs, a.best.max_fitting_epochs);
  EXPECT_GT(a.best.regime.epochs, 1);
  for (const PlannedRun& alt : a.alternatives) EXPECT_LE(alt.seconds, a.best.seconds);
}

TEST(PlannerTest, AnImpossibleBudgetNamesTheBudgetThatWouldDo) {
  const DeviceProfile profile = make_profile(models());
  const StubPredictor flat([](const FeatureVector&) { return Prediction{0.6, 0.05}; });
  const PlannerOptions o = options_with(200, 2.0);
  PlannerBudget budget;
  budget.seconds = 2.5;
  std::string message;
  EXPECT_TRUE(nasoa::testing::throws_error_with(
      [&] { generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o); },
      ErrorCode::kInvalidArgument, {"model 'm0'", "for 1 epoch"}, &message))
      << "planned inside an impossible budget";
  std::cout << "[ message ] " << message << "\n";
  const double needed = needed_seconds(message);
  ASSERT_GT(needed, 0) << "no needed budget to plan with";
  budget.seconds = needed;
  const Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o);
  EXPECT_EQ(s.best.regime.model, "m0");
  EXPECT_EQ(s.best.regime.epochs, 1);
  budget.seconds = needed * 0.99;
  EXPECT_THROW(generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o), Error);

  // A memory cap below every configuration says how much memory is needed.
  budget.seconds = 1000;
  budget.memory_bytes = 100 * 1024 * 1024;
  std::string capped;
  EXPECT_TRUE(nasoa::testing::throws_error_with(
      [&] { generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o); },
      ErrorCode::kInvalidArgument, {"a memory cap of at least", "MiB (given 100.0 MiB)", "; it fits a budget of at least"}, &capped))
      << "planned under an impossible memory cap";
  // Memory is what does not fit, so it comes first; the seconds fit.
  EXPECT_LT(capped.find("a memory cap of at least"), capped.find("; it fits a budget of at least")) << capped;
  // The cap it names, in whole MiB as a Budget takes it, plans.
  std::smatch cap;
  ASSERT_TRUE(std::regex_search(capped, cap, std::regex("memory cap of at least ([0-9]+) MiB"))) << capped;
  budget.memory_bytes = std::stoll(cap[1]) * 1024 * 1024;
  EXPECT_NO_THROW(generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o));
}

TEST(PlannerTest, EveryPlanOutlastsTheBaseRegimesWarmUp) {
  // A cosine warm-up must end before the run does (validate()): a plan
  // shorter than it would be refused by the fine-tuner it is made for.
  const DeviceProfile profile = make_profile(models());
  const StubPredictor fewer_is_better([](const FeatureVector& x) { return Prediction{0.9 - 0.01 * x[kEpochs], 0.02}; });
  PlannerOptions o = options_with();
  o.base.warmup_epochs = 2.5;
  PlannerBudget budget;
  budget.seconds = 60;
  const Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, models(), fewer_is_better, o);
  EXPECT_EQ(s.best.regime.epochs, 3) << "the fewest epochs that outlast the warm-up";
  EXPECT_NO_THROW(validate(s.best.regime));
  for (const PlannedRun& p : s.alternatives) {
    EXPECT_GE(p.regime.epochs, 3);
    EXPECT_NO_THROW(validate(p.regime));
  }
  // The step schedule has no such bound.
  PlannerOptions step = o;
  step.base.schedule = ScheduleKind::kStep;
  EXPECT_EQ(generate_schedule(kTask, kTrainImages, budget, profile, models(), fewer_is_better, step).best.regime.epochs, 1);

  // A budget that fits fewer epochs than the warm-up names it.
  const PlannerOptions one = options_with(200, 2.0);
  budget.seconds = needed_seconds([&] {
    PlannerBudget tiny;
    tiny.seconds = 2.5;
    try {
      generate_schedule(kTask, kTrainImages, tiny, profile, models(), fewer_is_better, one);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }()) * 1.01;  // one epoch of the cheapest plan fits, three of none
  PlannerOptions long_warmup = one;
  long_warmup.base.warmup_epochs = 2.5;
  EXPECT_TRUE(nasoa::testing::throws_error_with(
      [&] { generate_schedule(kTask, kTrainImages, budget, profile, models(), fewer_is_better, long_warmup); },
      ErrorCode::kInvalidArgument, {"warmup_epochs = 2.5", "at least 3"}))
      << "planned runs shorter than the warm-up";

  // A budget too small for even one epoch names the budget the fewest
  // epochs a plan may have need, not one epoch's: that budget then plans.
  PlannerBudget tiny;
  tiny.seconds = 2.5;
  std::string message;
  EXPECT_TRUE(nasoa::testing::throws_error_with(
      [&] { generate_schedule(kTask, kTrainImages, tiny, profile, models(), fewer_is_better, long_warmup); },
      ErrorCode::kInvalidArgument, {"for 3 epochs"}, &message));
  tiny.seconds = needed_seconds(message);
  ASSERT_GT(tiny.seconds, 0) << message;
  EXPECT_EQ(generate_schedule(kTask, kTrainImages, tiny, profile, models(), fewer_is_better, long_warmup).best.regime.epochs,
            3);
}

TEST(PlannerTest, AJouleBudgetNeedsPowerFigures) {
  const DeviceProfile profile = make_profile(models(), /*watts=*/false);
  const StubPredictor flat([](const FeatureVector&) { return Prediction{0.6, 0.05}; });
  PlannerBudget budget;
  budget.seconds = 60;
  budget.joules = 500;
  PlannerOptions o = options_with();
  EXPECT_TRUE(nasoa::testing::throws_error(
      [&] { generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o); },
      ErrorCode::kInvalidArgument, "estimate_watts"))
      << "planned a joule budget without any power figure";
  o.estimate_watts = 15;
  const Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o);
  const Cost c = cost_of(s.best, profile, o, kTrainImages);
  ASSERT_TRUE(s.best.joules && c.joules);
  EXPECT_DOUBLE_EQ(*s.best.joules, *c.joules);
  EXPECT_LE(*c.joules, 500 * 0.9);
}

// The profile's peak is the profiling process's, which held other models
// and none of the task; given what this process holds now, a plan's memory
// is that plus what the configuration adds plus two copies of the weights.
TEST(PlannerTest, MemoryIsWhatTheProcessHoldsPlusWhatTheConfigurationAdds) {
  const DeviceProfile profile = make_profile(models());
  const StubPredictor flat([](const FeatureVector&) { return Prediction{0.6, 0.05}; });
  PlannerBudget budget;
  budget.seconds = 300;
  budget.memory_bytes = std::int64_t(4) << 30;
  PlannerOptions o = options_with();
  const Schedule by_peak = generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o);
  const Cost peak = cost_of(by_peak.best, profile, o, kTrainImages);
  ASSERT_TRUE(by_peak.best.memory_bytes && peak.memory);
  EXPECT_EQ(*by_peak.best.memory_bytes, *peak.memory) << "without resident_bytes, the profile's peak";

  o.overheads.resident_bytes = std::int64_t(700) << 20;
  const Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o);
  const Regime& r = s.best.regime;
  std::int64_t parameters = 0;
  for (const ModelFeatures& m : models())
    if (m.name == r.model) parameters = m.parameters;
  std::optional<std::int64_t> increase;
  for (const StepTiming& t : profile.model(r.model).steps)
    if (t.batch_size == r.batch_size && t.frozen_stages == r.frozen_stages) increase = t.rss_increase_bytes;
  ASSERT_TRUE(increase && s.best.memory_bytes);
  EXPECT_EQ(*s.best.memory_bytes, o.overheads.resident_bytes + *increase + 8 * parameters + o.overheads.unprofiled_bytes);

  // A cap it just fits, with the safety margin kept back.
  budget.memory_bytes = std::int64_t(std::ceil(double(*s.best.memory_bytes) / (1 - o.overheads.safety_margin))) + 1;
  const Schedule capped = generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o);
  ASSERT_TRUE(capped.best.memory_bytes);
  EXPECT_LE(*capped.best.memory_bytes, double(*budget.memory_bytes) * (1 - o.overheads.safety_margin));
}

// Where no meter measures, fine-tuning is charged at the estimate, whatever
// power the profile recorded elsewhere; so must the plan be.
TEST(PlannerTest, WithoutAMeterPlansAreCostedAtThePowerTheRunWillBeChargedAt) {
  const DeviceProfile profile = make_profile(models());  // cells of 11-25 W
  const StubPredictor flat([](const FeatureVector&) { return Prediction{0.6, 0.05}; });
  PlannerBudget budget;
  budget.seconds = 300;
  budget.joules = 100000;
  PlannerOptions o = options_with();
  o.unmetered = true;
  o.estimate_watts = 50;
  const Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o);
  ASSERT_TRUE(s.best.joules);
  EXPECT_NEAR(*s.best.joules, o.overheads.spent_joules + 50 * (s.best.seconds - o.overheads.spent_seconds), 1e-6);

  // No estimate either: the most the model drew when profiled, as the
  // fine-tuner's estimate meter then takes it.
  o.estimate_watts = 0;
  const Schedule m = generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, o);
  double most = 0;
  for (const StepTiming& t : profile.model(m.best.regime.model).steps) most = std::max(most, t.watts.value_or(0));
  ASSERT_TRUE(m.best.joules);
  EXPECT_NEAR(*m.best.joules, o.overheads.spent_joules + most * (m.best.seconds - o.overheads.spent_seconds), 1e-6);
}

TEST(PlannerTest, RefusesModelsTheProfileLacksAndBadInput) {
  const DeviceProfile profile = make_profile(models());
  const StubPredictor flat([](const FeatureVector&) { return Prediction{0.6, 0.05}; });
  PlannerBudget budget;
  budget.seconds = 60;
  std::vector<ModelFeatures> unknown = models();
  unknown.back().name = "not-profiled";
  EXPECT_TRUE(nasoa::testing::throws_error(
      [&] { generate_schedule(kTask, kTrainImages, budget, profile, unknown, flat, options_with()); },
      ErrorCode::kNotFound, "not-profiled"))
      << "planned a model the profile lacks";
  EXPECT_THROW(generate_schedule(kTask, 0, budget, profile, models(), flat, options_with()), Error);
  EXPECT_THROW(generate_schedule(kTask, kTrainImages, PlannerBudget{}, profile, models(), flat, options_with()), Error);
  PlannerOptions bad = options_with();
  bad.grid.learning_rates.clear();
  EXPECT_THROW(generate_schedule(kTask, kTrainImages, budget, profile, models(), flat, bad), Error);
}

TEST(PlannerTest, PlansTwelveModelsWithARealPredictorAndWritesJson) {
  SyntheticWorld world(4);
  std::vector<ModelFeatures> twelve;
  for (int copy = 0; copy < 2; ++copy)
    for (ModelFeatures m : world.models()) {
      m.name += copy ? "-wide" : "";
      m.parameters = m.parameters * (copy ? 3 : 1);
      twelve.push_back(m);
    }
  const DeviceProfile profile = make_profile(twelve, true, {8, 16, 32, 64, 128});
  const Predictor predictor = Predictor::fit(world.records(3000, "r"), {});
  PlannerBudget budget;
  budget.seconds = 400;
  const Schedule s = generate_schedule(kTask, kTrainImages, budget, profile, twelve, predictor, options_with());
  std::cout << "[ timing ] planned " << s.configurations << " configurations, " << s.plans_fitting
            << " fitting plans scored, in " << s.planning_seconds * 1e3 << " ms\n";
  RecordProperty("planning_ms", std::to_string(s.planning_seconds * 1e3));
  EXPECT_EQ(s.configurations, 12u * 4 * 5 * 5);
  EXPECT_GT(s.plans_fitting, 2000u);
  EXPECT_LE(s.best.seconds, budget.seconds);
  EXPECT_EQ(s.alternatives.size(), 5u);

  const nlohmann::json j = nlohmann::json::parse(to_json(s));
  EXPECT_EQ(j.at("best").at("model"), s.best.regime.model);
  EXPECT_EQ(j.at("best").at("regime").at("epochs"), s.best.regime.epochs);
  EXPECT_EQ(j.at("best").at("predicted_accuracy").get<double>(), s.best.predicted_accuracy);
  EXPECT_EQ(j.at("alternatives").size(), 5u);
  EXPECT_EQ(j.at("budget").at("seconds"), 400.0);
  EXPECT_TRUE(j.at("budget").at("joules").is_null());
  EXPECT_EQ(j.at("plans_fitting"), s.plans_fitting);
  EXPECT_FALSE(j.at("best").at("why").get<std::string>().empty());
}

}  // namespace
}  // namespace nasoa::runtime
