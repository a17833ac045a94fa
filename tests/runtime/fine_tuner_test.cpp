// Fine-tuning under limits: it learns, respects frozen stages and budgets,
// and a killed run resumes to exactly where an uninterrupted one would be.
#include "runtime/train/fine_tuner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "nasoa/error.h"
#include "runtime/data/batch_loader.h"
#include "runtime/train/optimizer.h"
#include "tests/runtime/fine_tune_support.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"
#include "tests/support/thread_cpu_time.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"

namespace nasoa::runtime {
namespace {

using testing::fashion_subset;
using testing::have_fashion_mnist;

class FineTunerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_fashion_mnist())
      GTEST_SKIP() << "package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
    IngestOptions options;
    options.side = 32;
    store_ = std::make_unique<ImageStore>(fashion_subset(200), options);
  }

  FineTuneJob job(int epochs) { return testing::small_job(*store_, epochs); }
  // A fixed layout, the one that is not the default: a layout trial picks
  // by timing, so two runs may settle on different layouts, whose
  // arithmetic differs in the last bits; runs compared bit for bit need one.
  FineTuneJob fixed_layout_job(int epochs) {
    FineTuneJob j = job(epochs);
    j.layout = MemoryLayout::kChannelsLast;
    return j;
  }

  // A two-epoch run killed during the first epoch's third step, with a
  // checkpoint after every step (it holds the first two), to `checkpoint`
  // in the test's folder; the job, for its checkpoint path.
  FineTuneJob killed_in_the_first_epoch(const std::string& checkpoint) {
    FineTuneJob killed = fixed_layout_job(2);
    killed.checkpoint_path = dir_ / checkpoint;
    killed.checkpoint_interval_seconds = 0;
    killed.on_progress = [](const TrainProgress& p) {
      if (p.epoch == 1 && p.step == 3 && p.validation_accuracy < 0) throw std::runtime_error("simulated kill");
    };
    EXPECT_THROW(fine_tune(killed, Limits(600, 0)), std::runtime_error);
    return killed;
  }

  // A job of the run `fingerprint` that checkpoints to `path` only at epoch
  // ends, its heartbeat in between.
  FineTuneJob epoch_checkpoint_job(int epochs, const std::string& fingerprint, const std::string& path) {
    FineTuneJob j = job(epochs);
    j.fingerprint = fingerprint;
    j.checkpoint_path = path;
    j.checkpoint_interval_seconds = 1000;
    return j;
  }

  // Runs `j` until its first progress report of epoch `epoch` (1-based),
  // where a simulated kill ends it, and returns the checkpoint it left.
  TrainingState checkpoint_of_kill_in_epoch(FineTuneJob& j, int epoch) {
    struct Killed {};
    j.on_progress = [epoch](const TrainProgress& p) {
      if (p.epoch == epoch) throw Killed{};
    };
    EXPECT_THROW(fine_tune(j, Limits(600, 0)), Killed);
    return load_checkpoint(j.checkpoint_path);
  }

  std::unique_ptr<ImageStore> store_;
  nasoa::testing::TempDir dir_;
};

TEST_F(FineTunerTest, LearnsARealTaskFromScratch) {
  FineTuneJob j = job(5);
  const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
  EXPECT_EQ(out.stop_reason, "completed");
  ASSERT_EQ(out.history.size(), 5u);
  EXPECT_GT(out.validation_accuracy, 0.6) << "chance is 1/3";
  EXPECT_LT(out.history.back().train_loss, out.history.front().train_loss);
  EXPECT_GE(out.validation_accuracy, out.history.back().validation_accuracy);  // the best is handed back
  EXPECT_EQ(out.device, "cpu");
}

TEST_F(FineTunerTest, EachEvaluationIsReportedOnceAndMarkedAsSuch) {
  FineTuneJob j = job(3);
  std::vector<TrainProgress> evaluations;
  std::int64_t step_reports = 0;
  j.on_progress = [&](const TrainProgress& p) {
    if (p.evaluated) evaluations.push_back(p);
    else ++step_reports;
  };
  const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
  ASSERT_EQ(evaluations.size(), out.history.size());
  for (std::size_t i = 0; i < evaluations.size(); ++i) {
    EXPECT_EQ(evaluations[i].epoch, out.history[i].epoch);
    EXPECT_EQ(evaluations[i].step, evaluations[i].steps_per_epoch);
    EXPECT_DOUBLE_EQ(evaluations[i].validation_accuracy, out.history[i].validation_accuracy);
  }
  EXPECT_EQ(step_reports, out.steps) << "a step reported as an evaluation, or not at all";
}

TEST_F(FineTunerTest, ARunOfOneStepTrains) {
  // One epoch of one batch: with the rate taken at the step's end, the
  // cosine's only step ran at 0 and the weights came back unchanged.
  FineTuneJob j = job(1);
  j.regime.batch_size = 1024;
  j.regime.warmup_epochs = 0;
  const torch::Tensor before = j.network->named_parameters()["head.weight"].clone();
  const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
  EXPECT_EQ(out.steps, 1);
  EXPECT_FALSE(torch::equal(before, j.network->named_parameters()["head.weight"]));
}

TEST_F(FineTunerTest, DivergenceBeforeAnyEvaluationIsAnErrorNamingTheLearningRate) {
  FineTuneJob j = job(2);
  j.regime.learning_rate = 1e30;
  std::string what;
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { fine_tune(j, Limits(600, 0)); }, ErrorCode::kInvalidArgument,
                                                {"training diverged: the loss became", "lower the learning rate"}))
      << "a diverged run was handed back";
  // Told apart from other refusals, for callers that record it as the plan's outcome.
  try {
    fine_tune(j, Limits(600, 0));
  } catch (const Error& e) {
    what = e.what();
    EXPECT_TRUE(diverged_before_evaluation(e)) << e.what();
  }
  EXPECT_FALSE(what.empty()) << "the second run did not diverge";
  EXPECT_FALSE(diverged_before_evaluation(Error(ErrorCode::kInvalidArgument, "time budget too small")));
}

TEST_F(FineTunerTest, WeightsThatBlewUpAreNeverEvaluatedOrKept) {
  // One step per epoch: the step that blows the weights up has a finite
  // loss, and the next thing to run is the epoch's evaluation.
  for (const double lr : {1e30, 1e10, 1e5}) {
    FineTuneJob j = job(3);
    j.regime.batch_size = 1000;
    j.regime.learning_rate = lr;
    try {
      const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
      // Only a run whose weights stayed numbers may come back.
      EXPECT_EQ(out.stop_reason.rfind("diverged", 0) == 0, out.history.size() < 3u) << out.stop_reason;
      for (const torch::Tensor& p : j.network->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>()) << lr;
      for (const torch::Tensor& b : j.network->buffers()) {
        if (b.is_floating_point()) {
          EXPECT_TRUE(torch::isfinite(b).all().item<bool>()) << lr;
        }
      }
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("training diverged"), std::string::npos) << e.what();
    }
  }
}

TEST_F(FineTunerTest, DivergenceAfterAnEvaluationHandsBackTheWeightsKeptFromItsEvaluations) {
  FineTuneJob j = job(3);
  zoo::Network net = j.network;
  j.on_progress = [net](const TrainProgress& p) {
    if (p.epoch == 2 && p.step == 1) {  // the weights blow up in the second epoch
      torch::NoGradGuard no_grad;
      net->parameters().front().fill_(std::numeric_limits<float>::quiet_NaN());
    }
  };
  const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
  EXPECT_TRUE(out.stopped_early);
  EXPECT_EQ(out.stop_reason.rfind("diverged: the loss became NaN at epoch 2, step 2", 0), 0u) << out.stop_reason;
  ASSERT_EQ(out.history.size(), 1u);
  EXPECT_EQ(out.best_epoch, 1);
  EXPECT_DOUBLE_EQ(out.validation_accuracy, out.history.front().validation_accuracy);
  for (const torch::Tensor& p : net->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST_F(FineTunerTest, EachWeightsChoiceHandsBackTheEpochItNamesAndItsWeights) {
  // The same run under each rule: training is deterministic in a fixed
  // layout, so the runs differ only in what they hand back. The last
  // epoch's start turns the head's weights around, so that the last epoch is
  // not the best and the rules part.
  std::vector<std::vector<double>> histories;
  for (const WeightsChoice choice :
       {WeightsChoice::kBestValidated, WeightsChoice::kLatestWithinNoise, WeightsChoice::kLast}) {
    FineTuneJob j = job(4);
    j.layout = MemoryLayout::kChannelsFirst;  // the layout the weights come back in, evaluated below
    j.weights_choice = choice;
    zoo::Network net = j.network;
    j.on_progress = [net](const TrainProgress& p) {
      if (p.epoch == 4 && p.step == 1 && !p.evaluated) {
        torch::NoGradGuard no_grad;
        for (torch::Tensor& w : net->parameters()) w.mul_(-1);
      }
    };
    const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
    ASSERT_EQ(out.stop_reason, "completed");
    ASSERT_EQ(out.history.size(), 4u);
    EXPECT_EQ(out.weights_choice, choice);
    std::vector<double> accuracies;
    for (const EpochRecord& e : out.history) accuracies.push_back(e.validation_accuracy);
    histories.push_back(accuracies);
    const double highest = *std::max_element(accuracies.begin(), accuracies.end());
    int expected = 0;
    if (choice == WeightsChoice::kBestValidated) {
      expected = int(std::find(accuracies.begin(), accuracies.end(), highest) - accuracies.begin()) + 1;
    } else if (choice == WeightsChoice::kLast) {
      expected = 4;
    } else {
      const double bound = highest - accuracy_standard_error(highest, j.split.validation.size()) - 1e-12;
      for (int e = 4; e >= 1 && expected == 0; --e)
        if (accuracies[std::size_t(e - 1)] >= bound) expected = e;
    }
    EXPECT_EQ(out.best_epoch, expected) << to_string(choice);
    EXPECT_DOUBLE_EQ(out.validation_accuracy, accuracies[std::size_t(expected - 1)]) << to_string(choice);
    // The weights handed back are that epoch's: they score what it scored.
    EXPECT_DOUBLE_EQ(evaluate(*net, *store_, j.split.validation, j.mean, j.std, j.regime.batch_size,
                              torch::Device(torch::kCPU), 1),
                     out.validation_accuracy)
        << to_string(choice);
  }
  EXPECT_EQ(histories[0], histories[1]);
  EXPECT_EQ(histories[0], histories[2]);
  EXPECT_LT(histories[0][3], *std::max_element(histories[0].begin(), histories[0].end()))
      << "the turned-around head did not make the last epoch worse, so the rules did not part";
}

TEST_F(FineTunerTest, AResumedRunKeepsTheRuleItStartedWith) {
  // Started handing back the last epoch, killed in its third, resumed by a
  // job that asks for another rule: the run's weights stay the one rule's
  // choice over all its epochs.
  FineTuneJob started = epoch_checkpoint_job(3, "rule", dir_ / "rule.checkpoint");
  started.weights_choice = WeightsChoice::kLast;
  const TrainingState state = checkpoint_of_kill_in_epoch(started, 3);
  EXPECT_EQ(state.weights_choice, WeightsChoice::kLast);
  FineTuneJob resumed = epoch_checkpoint_job(3, "rule", dir_ / "rule.checkpoint");
  resumed.weights_choice = WeightsChoice::kBestValidated;
  const FineTuneOutcome out = fine_tune(resumed, Limits(600, state.spent_seconds), state);
  ASSERT_EQ(out.stop_reason, "completed");
  EXPECT_EQ(out.weights_choice, WeightsChoice::kLast);
  EXPECT_EQ(out.best_epoch, 3);
  EXPECT_DOUBLE_EQ(out.validation_accuracy, out.history.back().validation_accuracy);
}

TEST_F(FineTunerTest, AMemoryCapBelowWhatTheProcessAlreadyUsesIsAnErrorUpFront) {
  FineTuneJob j = job(1);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { fine_tune(j, Limits(600, 0, 0, {}, /*memory_bytes=*/1 << 20)); },
                                           ErrorCode::kInvalidArgument, "memory budget too small: 1 MiB"))
      << "trained under a 1 MiB memory cap";
}

TEST_F(FineTunerTest, FrozenStagesDoNotChange) {
  FineTuneJob j = job(1);
  j.regime.frozen_stages = 2;
  // Copies: module_state() hands back the live tensors where it can.
  zoo::NamedTensors before = zoo::module_state(*j.network);
  for (auto& [name, tensor] : before) tensor = tensor.clone();
  fine_tune(j, Limits(600, 0));
  const auto after = zoo::module_state(*j.network);
  ASSERT_EQ(before.size(), after.size());
  int frozen_tensors = 0, trained_changed = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    const bool frozen = before[i].first.rfind("stem.", 0) == 0 || before[i].first.rfind("stage1.", 0) == 0;
    const bool same = torch::equal(before[i].second, after[i].second);
    if (frozen) {
      ++frozen_tensors;
      EXPECT_TRUE(same) << before[i].first;
    } else if (!same) {
      ++trained_changed;
    }
  }
  EXPECT_GT(frozen_tensors, 0);
  EXPECT_GT(trained_changed, 0) << "the stages after the frozen ones trained";
  j.regime.frozen_stages = 99;
  EXPECT_THROW(fine_tune(j, Limits(600, 0)), Error);
}

// 50 W of the calling thread's CPU time, in 5 J jumps as a sampling
// monitor's total moves. The training thread reads the meter, so it counts
// what training computed: not wall time, so a step the scheduler holds back
// on a loaded machine costs nothing; and not a fixed charge per step, so a
// faster machine does not look like a hungrier one.
std::function<double()> cpu_50_watts() {
  using nasoa::testing::thread_cpu_seconds;
  const double start = thread_cpu_seconds();
  return [start] { return 50.0 * 0.1 * std::floor((thread_cpu_seconds() - start) / 0.1); };
}

TEST_F(FineTunerTest, SpendsMostOfAnEnergyBudgetAndNoMore) {
  for (const double predicted_watts : {0.0, 50.0}) {
    FineTuneJob j = job(1000);
    j.fit_schedule = false;  // the guard alone stops it
    j.predicted_watts = predicted_watts;
    const std::function<double()> meter = cpu_50_watts();  // read on this thread, which trains
    const FineTuneOutcome out = fine_tune(j, Limits(600, 0, 150, meter));
    const double used = meter();
    EXPECT_EQ(out.stop_reason, "energy budget") << predicted_watts;
    EXPECT_LE(used, 150 + 5) << "over the budget, predicted " << predicted_watts << " W";
    // Judged step by step, the meter's jumps stopped runs after a tenth of it.
    EXPECT_GE(used, 75) << "stopped far short of the budget, predicted " << predicted_watts << " W";
  }
}

TEST_F(FineTunerTest, AnEnergyBudgetEndsTheScheduleWhereTheJoulesLeftRunOut) {
  FineTuneJob j = job(1000);
  const std::function<double()> meter = cpu_50_watts();
  const FineTuneOutcome out = fine_tune(j, Limits(600, 0, 150, meter));
  EXPECT_LE(meter(), 150 + 5) << "over the budget";
  EXPECT_LT(out.scheduled_epochs, 1000);
  EXPECT_NE(out.schedule_note.find(" J left covered "), std::string::npos) << out.schedule_note;
  // It ends as fitted, or a last epoch that proved dearer is cut part-way.
  EXPECT_GE(int(out.history.size()), out.scheduled_epochs - 1);
  EXPECT_TRUE(out.stop_reason == "completed" || out.stop_reason == "energy budget") << out.stop_reason;
}

TEST_F(FineTunerTest, AStuckMeterStopsARunWithAnEnergyBudgetAndSaysWhy) {
  // A counter that never moves: the budget is counted in what it reads, so
  // it cannot be kept, whatever power is assumed; the run stops rather than
  // train unchecked.
  for (const double predicted_watts : {0.0, 5.0}) {
    FineTuneJob j = job(1000);
    j.predicted_watts = predicted_watts;
    const FineTuneOutcome out = fine_tune(j, Limits(600, 0, 100, [] { return 0.0; }));
    EXPECT_TRUE(out.stopped_early);
    EXPECT_EQ(out.stop_reason.rfind("energy budget: the meter read no energy", 0), 0u) << out.stop_reason;
  }
}

TEST_F(FineTunerTest, AnEnergyBudgetTooSmallForAStepIsAnErrorUpFront) {
  FineTuneJob j = job(5);
  j.predicted_watts = 50;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { fine_tune(j, Limits(600, 0, 2, cpu_50_watts())); },
                                           ErrorCode::kInvalidArgument, "energy budget too small"));
}

// A checkpoint that cannot be written (here: its folder is missing; on a
// device, a full disk) must not cost the run: training goes on without
// checkpoints and the outcome says why.
TEST_F(FineTunerTest, ACheckpointThatCannotBeWrittenIsANoteNotAFailedRun) {
  FineTuneJob j = job(2);
  j.checkpoint_path = dir_ / "missing/run.checkpoint";
  j.checkpoint_interval_seconds = 0.001;
  const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
  EXPECT_EQ(out.stop_reason, "completed");
  EXPECT_EQ(out.history.size(), 2u);
  EXPECT_GE(out.validation_accuracy, 0.0);
  EXPECT_NE(out.checkpoint_note.find("checkpoints stopped"), std::string::npos) << out.checkpoint_note;
  EXPECT_NE(out.checkpoint_note.find(j.checkpoint_path), std::string::npos) << out.checkpoint_note;
}

// Between checkpoints a heartbeat records the budget used, so that a kill
// does not take the time since the last checkpoint off the budget's count.
TEST_F(FineTunerTest, AHeartbeatBesideTheCheckpointCountsTheTimeSinceIt) {
  FineTuneJob j = epoch_checkpoint_job(3, "heartbeat-run", dir_ / "beat.checkpoint");
  struct Killed {};
  double elapsed_at_kill = 0;
  j.on_progress = [&](const TrainProgress& p) {
    if (p.epoch < 2) return;
    if (p.step == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // then a heartbeat is due
    if (p.step == 2) {
      elapsed_at_kill = p.elapsed_seconds;
      throw Killed{};
    }
  };
  EXPECT_THROW(fine_tune(j, Limits(600, 0)), Killed);
  const TrainingState state = load_checkpoint(j.checkpoint_path);
  const std::optional<CheckpointClock> clock = load_checkpoint_clock(j.checkpoint_path, j.fingerprint);
  ASSERT_TRUE(clock);
  EXPECT_GT(clock->spent_seconds, state.spent_seconds + 1.4) << "the sleep after the epoch-end checkpoint";
  EXPECT_LE(clock->spent_seconds, elapsed_at_kill);
  EXPECT_FALSE(load_checkpoint_clock(j.checkpoint_path, "another-run")) << "another run's clock must not count";
  // What a resume counts: the later of the checkpoint and this run's clock.
  EXPECT_DOUBLE_EQ(spent_before_resume(j.checkpoint_path, state, {"another-run", j.fingerprint}).spent_seconds,
                   clock->spent_seconds);
  EXPECT_DOUBLE_EQ(spent_before_resume(j.checkpoint_path, state, {"another-run"}).spent_seconds,
                   state.spent_seconds);

  // A fresh run of the same job starts its clock from nothing.
  FineTuneJob fresh = epoch_checkpoint_job(1, j.fingerprint, j.checkpoint_path);
  fine_tune(fresh, Limits(600, 0));
  const std::optional<CheckpointClock> after = load_checkpoint_clock(j.checkpoint_path, j.fingerprint);
  EXPECT_TRUE(!after || after->spent_seconds < clock->spent_seconds);
}

// A resumed run's time before its first step (ingestion, loading) is on the
// clock at once: a resume killed early, again and again, must not keep its
// time off the budget's count. A fresh run removes an earlier run's
// checkpoint at once, so that a resume after its kill does not continue the
// earlier run.
TEST_F(FineTunerTest, AResumeRecordsItsTimeAtOnceAndAFreshRunDropsTheOldCheckpoint) {
  FineTuneJob first = epoch_checkpoint_job(2, "resumed-run", dir_ / "early.checkpoint");
  const TrainingState state = checkpoint_of_kill_in_epoch(first, 2);
  struct Killed {};

  FineTuneJob resumed = epoch_checkpoint_job(2, first.fingerprint, first.checkpoint_path);
  std::optional<CheckpointClock> clock_at_first_step;
  resumed.on_progress = [&](const TrainProgress&) {
    clock_at_first_step = load_checkpoint_clock(resumed.checkpoint_path, resumed.fingerprint);
    throw Killed{};
  };
  // 50 s spent before training: the killed run's and this call's ingestion.
  EXPECT_THROW(fine_tune(resumed, Limits(600, state.spent_seconds + 50), state), Killed);
  ASSERT_TRUE(clock_at_first_step) << "no clock before the resumed run's first step";
  EXPECT_GE(clock_at_first_step->spent_seconds, state.spent_seconds + 50);

  FineTuneJob fresh = epoch_checkpoint_job(2, first.fingerprint, first.checkpoint_path);
  bool old_checkpoint_there = true;
  fresh.on_progress = [&](const TrainProgress&) {
    old_checkpoint_there = std::filesystem::exists(fresh.checkpoint_path);
    throw Killed{};
  };
  EXPECT_THROW(fine_tune(fresh, Limits(600, 0)), Killed);
  EXPECT_FALSE(old_checkpoint_there) << "a resume now would continue the earlier run";
  EXPECT_FALSE(load_checkpoint_clock(fresh.checkpoint_path, fresh.fingerprint));
}

// Epochs of a small task take a fraction of a second: a checkpoint at each
// end would cost a share of the training and wear a device's flash. After
// the first epoch end's, one is written only when the interval has passed.
TEST_F(FineTunerTest, EpochEndsCheckpointOnlyWhenTheIntervalHasPassed) {
  FineTuneJob sparse = epoch_checkpoint_job(4, "sparse-run", dir_ / "sparse.checkpoint");
  const TrainingState first_only = checkpoint_of_kill_in_epoch(sparse, 3);
  EXPECT_EQ(first_only.epoch, 1) << "epoch 2's end checkpointed within the interval";
  EXPECT_EQ(first_only.step, 0);

  FineTuneJob dense = epoch_checkpoint_job(4, "dense-run", dir_ / "dense.checkpoint");
  dense.checkpoint_interval_seconds = 1e-9;
  const TrainingState latest = checkpoint_of_kill_in_epoch(dense, 3);
  EXPECT_EQ(latest.epoch, 2) << "the interval had passed, but epoch 2's end did not checkpoint";
  EXPECT_GE(latest.history.size(), 2u);

  // The run's last epoch checkpoints within the interval too: a kill while
  // the model is saved must not send the resume back to epoch 1.
  FineTuneJob whole = epoch_checkpoint_job(3, "whole-run", dir_ / "whole.checkpoint");
  EXPECT_EQ(fine_tune(whole, Limits(600, 0)).stop_reason, "completed");
  EXPECT_EQ(load_checkpoint(whole.checkpoint_path).epoch, 3);
}

TEST_F(FineTunerTest, AResumeWithoutAProfileGuardsItsFirstStepWithTheTimesMeasuredBeforeTheKill) {
  FineTuneJob first = epoch_checkpoint_job(3, "measured-run", dir_ / "measured.checkpoint");
  TrainingState state = checkpoint_of_kill_in_epoch(first, 2);
  EXPECT_GT(state.step_seconds, 0.0) << "the checkpoint keeps no measured step time";
  EXPECT_GT(state.evaluation_seconds, 0.0) << "the checkpoint keeps no measured pass time";

  // The run resumed from `state` (written as its checkpoint) with 60 s left:
  // its outcome and the steps it took.
  const auto resumed_with_60_s = [&](const TrainingState& written, int* steps) {
    save_checkpoint(first.checkpoint_path, written);
    FineTuneJob resumed = epoch_checkpoint_job(3, first.fingerprint, first.checkpoint_path);
    resumed.on_progress = [steps](const TrainProgress&) { ++*steps; };
    return fine_tune(resumed, Limits(written.spent_seconds + 60, written.spent_seconds),
                     load_checkpoint(first.checkpoint_path));
  };

  // As if the killed run's steps took 100 s each: a resume with 60 s left
  // must not start one (without the measurement it would, unguarded).
  state.step_seconds = 100;
  int steps_taken = 0;
  const FineTuneOutcome stopped = resumed_with_60_s(state, &steps_taken);
  EXPECT_EQ(steps_taken, 0);
  EXPECT_TRUE(stopped.stopped_early);
  EXPECT_EQ(stopped.stop_reason, "time budget");

  // A checkpoint of an earlier version, without the measurement: the
  // resumed run takes its first step, as before.
  state.step_seconds = 0, state.evaluation_seconds = 0;
  int older_steps = 0;
  const FineTuneOutcome went_on = resumed_with_60_s(state, &older_steps);
  EXPECT_GT(older_steps, 0);
  EXPECT_EQ(went_on.stop_reason, "completed");
}

TEST_F(FineTunerTest, StopsWithinTheTimeBudgetAndHandsBackAModel) {
  FineTuneJob j = job(1000);
  testing::expect_stops_within_the_time_budget(j);
}

TEST_F(FineTunerTest, TheProgressCallbacksTimeCountsAgainstTheBudget) {
  // The callback runs on the training thread and takes 2.5 s of a 4 s
  // budget. A guard that counted only the step's own time would take a
  // second step after the first call (1.4 s left, a step takes
  // milliseconds), and its callback would end near 5.1 s.
  FineTuneJob j = job(1000);
  int calls = 0;
  j.on_progress = [&](const TrainProgress&) {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  };
  const auto start = std::chrono::steady_clock::now();
  const FineTuneOutcome out = fine_tune(j, Limits(4.0, 0));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(out.stop_reason, "time budget");
  EXPECT_EQ(out.steps, 1);
  EXPECT_EQ(calls, 1);
  EXPECT_LT(took, 4.0);
}

// Epochs slower than their steps, for runs whose time must outlast their
// regime: the job's progress callback sleeps `seconds` at every evaluation,
// and the budget counts it. The sleep is four times what the epoch's own
// work took when measured just before, so the budget is set in epochs of
// this machine's current speed rather than in fixed seconds (a fixed 4 s
// held only 3 epochs on a loaded CI machine). If the steps then run k times
// slower than measured, an epoch takes (4 + k) / 5 of `epoch`: up to k = 11
// the fit after epoch 4 still comes within 12 epochs' budget, and no
// speed-up makes 40 epochs fit in 12 (or 16). The cost is that the tests
// take longer on a slower machine, in proportion.
struct SlowEpochs {
  double seconds = 0;  // slept per epoch
  double epoch = 0;    // an epoch's time with the sleep, as measured

  FineTuneJob apply(FineTuneJob j, std::function<void(const TrainProgress&)> also = {}) const {
    const auto sleep = std::chrono::duration<double>(seconds);
    j.on_progress = [sleep, also](const TrainProgress& p) {
      if (p.evaluated) std::this_thread::sleep_for(sleep);
      if (also) also(p);
    };
    return j;
  }
};

// Measures an epoch of `j` on the budget's own clock (three epochs; the
// longer of the last two gaps between epoch ends, so not the first epoch's
// set-up; 0.05 s at least, so the sleep is 0.2 s at least), with its
// checkpoint writes if it has any (to a path of its own).
SlowEpochs slow_epochs_for(FineTuneJob j) {
  j.regime.epochs = 3;
  if (!j.checkpoint_path.empty()) j.checkpoint_path += ".measured";
  std::vector<double> ends;
  j.on_progress = [&ends](const TrainProgress& p) {
    if (p.evaluated) ends.push_back(p.elapsed_seconds);
  };
  fine_tune(j, Limits(600, 0));
  EXPECT_EQ(ends.size(), 3u);
  double work = 0.05;
  for (std::size_t i = 1; i < ends.size(); ++i) work = std::max(work, ends[i] - ends[i - 1]);
  SlowEpochs slow;
  slow.seconds = 4 * work;
  slow.epoch = slow.seconds + work;
  return slow;
}

TEST_F(FineTunerTest, EpochsSlowerThanTheBudgetAllowsEndTheScheduleInTimeInsteadOfBeingCut) {
  // 40 slow epochs do not fit in the time of 12. Fitted, the schedule ends
  // when the time does and the run completes; followed as given, the
  // budget cuts it with its rate still high.
  const SlowEpochs slow = slow_epochs_for(job(40));
  const double budget = 12 * slow.epoch;
  const auto start = std::chrono::steady_clock::now();
  FineTuneJob fitted = slow.apply(job(40));
  const FineTuneOutcome out = fine_tune(fitted, Limits(budget, 0));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LE(took, budget * 1.05 + 2.0);
  // The first fit comes after epoch 4, three gaps after the first epoch end.
  EXPECT_GE(out.scheduled_epochs, 5) << "fitted before three epoch gaps were measured";
  EXPECT_LT(out.scheduled_epochs, 40);
  // It ends as fitted, or a last epoch slower than the median of those
  // before it is cut part-way (the fit leaves less than an epoch spare).
  EXPECT_TRUE((out.stop_reason == "completed" && int(out.history.size()) == out.scheduled_epochs) ||
              (out.stop_reason == "time budget" && int(out.history.size()) >= out.scheduled_epochs - 1))
      << out.stop_reason << " after " << out.history.size() << " of " << out.scheduled_epochs << " epochs";
  EXPECT_EQ(out.schedule_note.rfind("the learning-rate schedule ends after epoch " +
                                        std::to_string(out.scheduled_epochs) + " of the regime's 40: after epoch ",
                                    0),
            0u)
      << out.schedule_note;

  FineTuneJob as_given = slow.apply(job(40));
  as_given.fit_schedule = false;
  const FineTuneOutcome cut = fine_tune(as_given, Limits(budget, 0));
  EXPECT_EQ(cut.stop_reason, "time budget");
  EXPECT_EQ(cut.scheduled_epochs, 40);
  EXPECT_EQ(cut.schedule_note, "");
  EXPECT_LT(cut.history.size(), 40u);
}

TEST_F(FineTunerTest, AFittedScheduleIsCheckpointedAndAResumedRunFollowsIt) {
  // Killed at the first step after the fit (checkpoints after every step,
  // measured with the epochs). 40 slow epochs do not fit in the time of 16;
  // the fit after epoch 4 comes well within it.
  struct Killed {};
  FineTuneJob killed = job(40);
  killed.checkpoint_path = dir_ / "fit.checkpoint";
  killed.checkpoint_interval_seconds = 0;
  const SlowEpochs slow = slow_epochs_for(killed);
  const double budget = 16 * slow.epoch;
  killed = slow.apply(killed, [](const TrainProgress& p) {
    if (!p.evaluated && p.epochs < 40) throw Killed{};
  });
  EXPECT_THROW(fine_tune(killed, Limits(budget, 0)), Killed);
  const TrainingState state = load_checkpoint(killed.checkpoint_path);
  ASSERT_GT(state.schedule.end_epoch, 0) << "the checkpoint lost the fit";
  ASSERT_LT(state.schedule.end_epoch, 40);

  // The resumed run goes on along the fitted rates and says so.
  FineTuneJob resumed = job(40);
  resumed.checkpoint_path = killed.checkpoint_path;
  std::vector<int> ends;
  struct Stop {};
  resumed.on_progress = [&](const TrainProgress& p) {
    ends.push_back(p.epochs);
    throw Stop{};  // after its first step
  };
  EXPECT_THROW(fine_tune(resumed, Limits(budget, state.spent_seconds), state), Stop);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends.front(), state.schedule.end_epoch);

  FineTuneJob to_the_end = job(40);
  to_the_end.checkpoint_path = killed.checkpoint_path;
  to_the_end.fit_schedule = false;  // no refit: only the checkpoint's
  const FineTuneOutcome out = fine_tune(to_the_end, Limits(600, 0), load_checkpoint(killed.checkpoint_path));
  EXPECT_EQ(out.scheduled_epochs, state.schedule.end_epoch);
  EXPECT_EQ(int(out.history.size()), state.schedule.end_epoch);
  EXPECT_NE(out.schedule_note.find("as fitted before the run was resumed"), std::string::npos) << out.schedule_note;

  // Nor is one whose map does not reach the regime's schedule end where it ends.
  TrainingState astray = load_checkpoint(killed.checkpoint_path);
  astray.schedule.rate *= 0.5;
  FineTuneJob same = job(40);
  same.checkpoint_path = killed.checkpoint_path;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { fine_tune(same, Limits(600, 0), astray); }, ErrorCode::kCorrupt,
                                           "of the regime's schedule after epoch"));

  // A schedule that would end past the regime's epochs is no checkpoint of this run.
  TrainingState past = load_checkpoint(killed.checkpoint_path);
  past.schedule.end_epoch = 41;
  FineTuneJob longer = job(40);
  longer.checkpoint_path = killed.checkpoint_path;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { fine_tune(longer, Limits(600, 0), past); }, ErrorCode::kCorrupt,
                                           "the checkpoint's schedule ends after epoch 41, past the regime's 40"));
}

TEST_F(FineTunerTest, RefusesABudgetThatCannotCoverAStep) {
  FineTuneJob j = job(1);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { fine_tune(j, Limits(1.0, 0.9)); }, ErrorCode::kInvalidArgument,
                                           "time budget too small"));
}

TEST_F(FineTunerTest, AKilledRunResumesToTheSameWeights) {
  FineTuneJob uninterrupted = fixed_layout_job(2);
  const FineTuneOutcome whole = fine_tune(uninterrupted, Limits(600, 0));

  // The same run, killed at the start of its second epoch (after the
  // end-of-epoch checkpoint), then resumed from the checkpoint.
  FineTuneJob killed = fixed_layout_job(2);
  killed.checkpoint_path = dir_ / "run.checkpoint";
  TrainingState state = checkpoint_of_kill_in_epoch(killed, 2);
  EXPECT_EQ(state.epoch, 1);
  EXPECT_EQ(state.history.size(), 1u);

  EXPECT_EQ(state.layout, MemoryLayout::kChannelsLast);
  FineTuneJob resumed = fixed_layout_job(2);
  resumed.checkpoint_path = killed.checkpoint_path;
  const FineTuneOutcome out = fine_tune(resumed, Limits(600, state.spent_seconds), state);
  EXPECT_EQ(out.history.size(), 2u);
  EXPECT_EQ(out.steps, whole.steps) << "the resumed run counts the steps taken before the kill";
  const auto a = zoo::module_state(*uninterrupted.network), b = zoo::module_state(*resumed.network);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;

  // Resumed with no time left for a step (killed near its deadline): the
  // weights evaluated before the kill are the result, not a refusal.
  // (`state` is the checkpoint as the kill left it; the file now holds the
  // resumed run's.)
  FineTuneJob late = fixed_layout_job(2);
  late.checkpoint_path = dir_ / "late.checkpoint";
  const FineTuneOutcome spent = fine_tune(late, Limits(5, 4.9), state);
  EXPECT_TRUE(spent.stopped_early);
  EXPECT_EQ(spent.stop_reason, "time budget");
  EXPECT_EQ(spent.history.size(), 1u) << "no epoch trained after the resume";
  EXPECT_DOUBLE_EQ(spent.validation_accuracy, state.best_accuracy);

  FineTuneJob other = job(2);
  other.fingerprint = "another task";
  EXPECT_THROW(fine_tune(other, Limits(600, 0), load_checkpoint(killed.checkpoint_path)), Error);
}

TEST_F(FineTunerTest, TrainsInEitherLayoutAndHandsBackTheDefault) {
  for (const MemoryLayout layout : {MemoryLayout::kChannelsFirst, MemoryLayout::kChannelsLast}) {
    FineTuneJob j = job(3);
    j.layout = layout;
    const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
    EXPECT_EQ(out.layout, layout);
    EXPECT_GT(out.validation_accuracy, 0.6) << to_string(layout) << "; chance is 1/3";
    // The network's own tensors (module_state() would make copies contiguous).
    for (const auto& item : j.network->named_parameters())
      EXPECT_TRUE(item.value().is_contiguous())
          << to_string(layout) << ": " << item.key() << " handed back in another layout";
    for (const auto& item : j.network->named_buffers())
      EXPECT_TRUE(item.value().is_contiguous())
          << to_string(layout) << ": " << item.key() << " handed back in another layout";
  }
}

TEST_F(FineTunerTest, AResumedRunKeepsTheLayoutItsTrialChose) {
  static_assert(LayoutTrial::kSteps <= 30, "the kill below must come after the trial");
  FineTuneJob killed = job(3);  // no layout: the first steps try both
  killed.checkpoint_path = dir_ / "trial.checkpoint";
  killed.checkpoint_interval_seconds = 0;  // the last checkpoint is at epoch 2's end
  const TrainingState state = checkpoint_of_kill_in_epoch(killed, 3);
  ASSERT_TRUE(state.layout.has_value()) << "the trial ends within the first two epochs' 30 steps";

  FineTuneJob resumed = job(3);
  resumed.checkpoint_path = killed.checkpoint_path;
  const FineTuneOutcome out = fine_tune(resumed, Limits(600, state.spent_seconds), state);
  EXPECT_EQ(out.layout, *state.layout);
  EXPECT_EQ(out.history.size(), 3u);
}

TEST_F(FineTunerTest, DamagedCheckpointsAreRefused) {
  FineTuneJob j = job(1);
  j.checkpoint_path = dir_ / "c.checkpoint";
  fine_tune(j, Limits(600, 0));
  std::string bytes = zoo::read_file(j.checkpoint_path);
  bytes[bytes.size() / 2] = char(bytes[bytes.size() / 2] ^ 1);
  zoo::write_file_atomic(j.checkpoint_path, bytes);
  EXPECT_THROW(load_checkpoint(j.checkpoint_path), Error);
  EXPECT_THROW(load_checkpoint(dir_ / "none"), Error);
}

TEST_F(FineTunerTest, ACheckpointIsNeverWrittenWithANumberJsonCannotHold) {
  FineTuneJob j = job(1);
  j.checkpoint_path = dir_ / "c.checkpoint";
  fine_tune(j, Limits(600, 0));
  TrainingState state = load_checkpoint(j.checkpoint_path);
  ASSERT_FALSE(state.history.empty());
  // A diverged epoch's loss is kept, as NaN.
  state.history[0].train_loss = std::nan("");
  save_checkpoint(j.checkpoint_path, state);
  EXPECT_TRUE(std::isnan(load_checkpoint(j.checkpoint_path).history[0].train_loss));
  // Infinite joules (an absurd power estimate) would be written as null and
  // never load: refused, and the checkpoint before stays.
  const std::string before = zoo::read_file(j.checkpoint_path);
  state.joules = HUGE_VAL;
  try {
    save_checkpoint(j.checkpoint_path, state);
    ADD_FAILURE() << "infinite joules were written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("joules"), std::string::npos) << e.what();
  }
  EXPECT_EQ(zoo::read_file(j.checkpoint_path), before);
  EXPECT_NO_THROW(load_checkpoint(j.checkpoint_path));
}

TEST_F(FineTunerTest, AnEpochResumedMidwayReportsTheLossAndAccuracyOfAllItsBatches) {
  FineTuneJob uninterrupted = fixed_layout_job(2);
  const FineTuneOutcome whole = fine_tune(uninterrupted, Limits(600, 0));

  const FineTuneJob killed = killed_in_the_first_epoch("mid.checkpoint");
  const TrainingState state = load_checkpoint(killed.checkpoint_path);
  ASSERT_EQ(state.epoch, 0);
  ASSERT_EQ(state.step, 2);
  EXPECT_GT(state.epoch_seen, 0);

  // Resumed with no time left, before anything was evaluated: the weights
  // the kill left are the result, not a refusal that strands the checkpoint.
  FineTuneJob late = fixed_layout_job(2);
  late.checkpoint_path = dir_ / "late-mid.checkpoint";
  const FineTuneOutcome spent = fine_tune(late, Limits(5, 4.9), state);
  EXPECT_TRUE(spent.stopped_early);
  EXPECT_EQ(spent.stop_reason, "time budget");
  EXPECT_TRUE(spent.history.empty());

  FineTuneJob resumed = fixed_layout_job(2);
  resumed.checkpoint_path = killed.checkpoint_path;
  const FineTuneOutcome out = fine_tune(resumed, Limits(600, state.spent_seconds), state);
  ASSERT_EQ(out.history.size(), 2u);
  EXPECT_DOUBLE_EQ(out.history[0].train_loss, whole.history[0].train_loss);
  EXPECT_DOUBLE_EQ(out.history[0].train_accuracy, whole.history[0].train_accuracy);
}

TEST_F(FineTunerTest, AResumedRunReportsItsLastEvaluationNotItsBest) {
  FineTuneJob killed = epoch_checkpoint_job(3, "last-evaluation", dir_ / "last.checkpoint");
  TrainingState state = checkpoint_of_kill_in_epoch(killed, 2);
  ASSERT_EQ(state.history.size(), 1u);
  // Its best evaluation made to differ from its last (the only one).
  state.best_accuracy = 0.99;
  state.history.back().validation_accuracy = 0.25;
  FineTuneJob resumed = epoch_checkpoint_job(3, "last-evaluation", dir_ / "last.checkpoint");
  double first_reported = -2;
  resumed.on_progress = [&](const TrainProgress& p) {
    if (first_reported == -2) first_reported = p.validation_accuracy;
  };
  fine_tune(resumed, Limits(600, state.spent_seconds), state);
  EXPECT_DOUBLE_EQ(first_reported, 0.25) << "the resumed run's progress began from another evaluation";
}

TEST_F(FineTunerTest, ACheckpointAnEarlierVersionWroteResumesWithoutTheFieldsItLacked) {
  FineTuneJob uninterrupted = fixed_layout_job(2);
  const FineTuneOutcome whole = fine_tune(uninterrupted, Limits(600, 0));

  const FineTuneJob killed = killed_in_the_first_epoch("old.checkpoint");

  // Rewritten as a build before overhead_seconds and memory_layout wrote
  // it: "NASOACK1" | u64 JSON length | JSON | weights | SHA-256 of the rest.
  const std::string bytes = zoo::read_file(killed.checkpoint_path);
  constexpr std::size_t kMagic = 8, kLength = sizeof(std::uint64_t), kDigest = 32;
  std::uint64_t length = 0;
  std::memcpy(&length, bytes.data() + kMagic, kLength);
  nlohmann::json json = nlohmann::json::parse(bytes.substr(kMagic + kLength, length));
  ASSERT_TRUE(json.contains("overhead_seconds"));
  ASSERT_TRUE(json.contains("memory_layout")) << "a fixed layout is kept in the checkpoint";
  ASSERT_TRUE(json.contains("hand_back"));
  ASSERT_TRUE(json.contains("overhead_joules"));
  json.erase("overhead_joules");
  json.erase("overhead_seconds");
  json.erase("memory_layout");
  json.erase("hand_back");
  const std::string older_json = json.dump();
  const std::uint64_t older_length = older_json.size();
  std::string older = bytes.substr(0, kMagic);
  older.append(reinterpret_cast<const char*>(&older_length), kLength);
  older += older_json;
  older += bytes.substr(kMagic + kLength + length, bytes.size() - kDigest - (kMagic + kLength + length));
  older += zoo::sha256_bytes(older);
  zoo::write_file_atomic(killed.checkpoint_path, older);

  const TrainingState state = load_checkpoint(killed.checkpoint_path);
  EXPECT_EQ(state.overhead_seconds, 0);
  EXPECT_EQ(state.overhead_joules, 0);
  EXPECT_FALSE(state.layout.has_value());
  EXPECT_EQ(state.weights_choice, WeightsChoice::kBestValidated) << "the only rule up to 0.3.3";
  ASSERT_EQ(state.epoch, 0);
  ASSERT_EQ(state.step, 2);

  FineTuneJob resumed = fixed_layout_job(2);
  resumed.checkpoint_path = killed.checkpoint_path;
  resumed.weights_choice = WeightsChoice::kLast;  // the checkpoint's rule wins
  const FineTuneOutcome out = fine_tune(resumed, Limits(600, state.spent_seconds), state);
  EXPECT_EQ(out.weights_choice, WeightsChoice::kBestValidated);
  ASSERT_EQ(out.history.size(), 2u);
  for (std::size_t e = 0; e < 2; ++e) {
    EXPECT_DOUBLE_EQ(out.history[e].train_loss, whole.history[e].train_loss) << "epoch " << e + 1;
    EXPECT_DOUBLE_EQ(out.history[e].validation_accuracy, whole.history[e].validation_accuracy) << "epoch " << e + 1;
  }
}

TEST_F(FineTunerTest, AWholeCheckpointWithValuesNoRunHasIsRefusedByField) {
  // The checksum holds (save_checkpoint seals what it is given); only the
  // values are wrong. A negative time spent would move the deadline, an
  // accuracy of 5 would end up in the model's manifest.
  FineTuneJob j = job(1);
  j.checkpoint_path = dir_ / "c.checkpoint";
  fine_tune(j, Limits(600, 0));
  const TrainingState good = load_checkpoint(j.checkpoint_path);
  const std::pair<std::function<void(TrainingState&)>, std::string> edits[] = {
      {[](TrainingState& s) { s.spent_seconds = -100; }, "spent_seconds"},
      {[](TrainingState& s) { s.overhead_seconds = s.spent_seconds + 1; }, "overhead_seconds"},
      {[](TrainingState& s) { s.overhead_joules = s.joules + 1; }, "overhead_joules"},
      {[](TrainingState& s) { s.overhead_joules = -1; }, "overhead_joules"},
      {[](TrainingState& s) { s.best_accuracy = 5; }, "best_accuracy"},
      {[](TrainingState& s) { s.epoch = -5; }, "epoch"},
      {[](TrainingState& s) { s.step = -1; }, "step"},
      {[](TrainingState& s) { s.best_epoch = -3; }, "best_epoch"},
      {[](TrainingState& s) { s.history.at(0).validation_accuracy = 1.5; }, "history[0].validation_accuracy"},
      {[](TrainingState& s) { s.epoch_seen = -1; }, "epoch_so_far.seen"},
      {[](TrainingState& s) { s.epoch_correct = s.epoch_seen + 1; }, "epoch_so_far.correct"},
      {[](TrainingState& s) { s.epoch_loss_sum = -2; }, "epoch_so_far.loss_sum"},
      {[](TrainingState& s) { s.step_seconds = -1, s.evaluation_seconds = 1; }, "measured.step_seconds"},
      {[](TrainingState& s) { s.step_seconds = 1, s.evaluation_seconds = -1; }, "measured.evaluation_seconds"},
      {[](TrainingState& s) { s.best_epoch = int(std::numeric_limits<int>::max()); }, "best_epoch"},
      {[](TrainingState& s) { s.weights_choice = WeightsChoice(7); }, "hand_back"},
      {[](TrainingState& s) { s.schedule.end_epoch = 1, s.schedule.rate = -1; }, "schedule.rate"},
      {[](TrainingState& s) { s.schedule.end_epoch = 1, s.schedule.anchor_trained = -2; }, "schedule.anchor_trained"},
      {[](TrainingState& s) { s.schedule.end_epoch = 1, s.schedule.anchor_scheduled = -2; },
       "schedule.anchor_scheduled"},
      // A fit's anchors against each other and the epochs trained (1 here).
      {[](TrainingState& s) { s.schedule.end_epoch = 5, s.schedule.anchor_trained = 2; }, "schedule.anchor_trained"},
      {[](TrainingState& s) { s.schedule.end_epoch = 1, s.schedule.anchor_trained = 1; }, "schedule.anchor_trained"},
      {[](TrainingState& s) {
         s.schedule.end_epoch = 5, s.schedule.anchor_trained = 1, s.schedule.anchor_scheduled = 0.5;
       },
       "schedule.anchor_scheduled"},
  };
  for (const auto& [edit, field] : edits) {
    TrainingState s = good;
    edit(s);
    save_checkpoint(j.checkpoint_path, s);
    EXPECT_TRUE(nasoa::testing::throws_error([&] { load_checkpoint(j.checkpoint_path); }, ErrorCode::kCorrupt,
                                             "field " + field))
        << field << " out of range was loaded";
  }
}

TEST_F(FineTunerTest, LoaderBatchesDoNotDependOnWorkersAndResumeMidEpoch) {
  std::vector<std::size_t> all(store_->size());
  std::iota(all.begin(), all.end(), 0);
  LoaderOptions options;
  options.batch_size = 16;
  options.random_resized_crop = options.horizontal_flip = true;
  options.seed = 5;
  auto epoch_batches = [&](int workers, std::int64_t first) {
    options.workers = workers;
    BatchLoader loader(*store_, all, options);
    loader.start_epoch(3, first);
    std::vector<torch::Tensor> out;
    while (auto b = loader.next()) out.push_back(b->images);
    return out;
  };
  const auto one = epoch_batches(1, 0), three = epoch_batches(3, 0), tail = epoch_batches(2, 5);
  ASSERT_EQ(one.size(), (store_->size() + 15) / 16);
  ASSERT_EQ(one.size(), three.size());
  for (std::size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(torch::equal(one[i], three[i])) << i;
  ASSERT_EQ(tail.size(), one.size() - 5);
  for (std::size_t i = 0; i < tail.size(); ++i) EXPECT_TRUE(torch::equal(tail[i], one[i + 5])) << i;
}

TEST_F(FineTunerTest, ATrainingLoaderNeverEndsAnEpochInABatchOfOne) {
  std::vector<std::size_t> some(33);
  std::iota(some.begin(), some.end(), 0);
  LoaderOptions options;
  options.batch_size = 16;
  options.shuffle = false;
  auto epoch = [&](bool no_batch_of_one) {
    options.no_batch_of_one = no_batch_of_one;
    BatchLoader loader(*store_, some, options);
    loader.start_epoch(0);
    std::vector<torch::Tensor> images;
    std::vector<std::int64_t> sizes;
    while (auto b = loader.next()) {
      images.push_back(b->images);
      sizes.push_back(b->images.size(0));
    }
    EXPECT_EQ(std::int64_t(sizes.size()), loader.batches_per_epoch());
    return std::pair{torch::cat(images), sizes};
  };
  const auto [plain, plain_sizes] = epoch(false);
  const auto [training, training_sizes] = epoch(true);
  EXPECT_EQ(plain_sizes, (std::vector<std::int64_t>{16, 16, 1}));
  EXPECT_EQ(training_sizes, (std::vector<std::int64_t>{16, 17}));
  EXPECT_TRUE(torch::equal(plain, training)) << "the image left over is not the last batch's";
  // What the planner counts on.
  EXPECT_EQ(batches_per_epoch(33, 16, true), 2);
  EXPECT_EQ(largest_batch(33, 16, true), 17);
  EXPECT_EQ(batches_per_epoch(33, 16, false), 3);
  EXPECT_EQ(largest_batch(33, 16, false), 16);
  EXPECT_EQ(batches_per_epoch(32, 16, true), 2);
  EXPECT_EQ(largest_batch(32, 16, true), 16);
  EXPECT_EQ(batches_per_epoch(3, 2, true), 1);
  EXPECT_EQ(largest_batch(3, 2, true), 3);
  EXPECT_EQ(batches_per_epoch(17, 16, true), 1);  // 16 + 1: one batch of all
  EXPECT_EQ(batches_per_epoch(5, 1, true), 5);    // a batch size of 1 has nothing to join
  EXPECT_EQ(largest_batch(5, 16, true), 5);
}

TEST_F(FineTunerTest, ANetworkWhoseLastMapsAre1x1TrainsOnASplitThatLeavesOneImageOver) {
  // At 32 px this network's last feature maps are 1x1: BatchNorm in
  // training cannot take a batch of one image there.
  const Encoding deep = Encoding::parse("0-_8_1-21-21-21");
  FineTuneJob j = job(1);
  j.network = zoo::Network(deep, 3);
  j.regime.batch_size = int(j.split.train.size()) - 1;  // one image over
  const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
  EXPECT_EQ(out.stop_reason, "completed");
  EXPECT_EQ(out.steps, 1);
  EXPECT_GE(out.validation_accuracy, 0.0);
  // A batch size of 1 cannot be helped: refused, saying what to change.
  j.network = zoo::Network(deep, 3);
  j.regime.batch_size = 1;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { fine_tune(j, Limits(600, 0)); }, ErrorCode::kInvalidArgument,
                                           "batch size 1 cannot train"));
}

TEST_F(FineTunerTest, AFailureAfterAnEvaluationEndsTheRunWithTheWeightsKeptFromItsEvaluations) {
  // A task streamed from disk (over its memory cap) whose files vanish
  // during the second epoch: the run keeps what it evaluated before.
  for (int c = 0; c < 2; ++c) {
    std::filesystem::create_directories(dir_ / ("task/" + std::to_string(c)));
    for (int i = 0; i < 12; ++i)
      cv::imwrite(dir_ / ("task/" + std::to_string(c) + "/" + std::to_string(i) + ".png"),
                  cv::Mat(32, 32, CV_8UC3, cv::Scalar::all(c ? 200 - 5 * i : 20 + 5 * i)));
  }
  IngestOptions streaming;
  streaming.side = 32;
  streaming.memory_cap_bytes = 1;
  const ImageStore store(list_folder(dir_ / "task"), streaming);
  FineTuneJob j = testing::small_job(store, 3);
  const std::string task = dir_ / "task";
  j.on_progress = [task](const TrainProgress& p) {
    if (p.epoch == 2) std::filesystem::remove_all(task);
  };
  const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
  EXPECT_TRUE(out.stopped_early);
  EXPECT_EQ(out.stop_reason.rfind("failed: ", 0), 0u) << out.stop_reason;
  EXPECT_NE(out.stop_reason.find("no longer decodes"), std::string::npos) << out.stop_reason;
  EXPECT_NE(out.stop_reason.find("the weights kept from its evaluations are handed back"), std::string::npos) << out.stop_reason;
  ASSERT_EQ(out.history.size(), 1u);
  EXPECT_EQ(out.best_epoch, 1);
  EXPECT_DOUBLE_EQ(out.validation_accuracy, out.history.front().validation_accuracy);

  // What the caller's callback throws stays the caller's, evaluated
  // weights or not.
  FineTuneJob cancelled = job(3);
  cancelled.on_progress = [](const TrainProgress& p) {
    if (p.epoch == 2) throw Error(ErrorCode::kNotFound, "the caller's own error");
  };
  EXPECT_TRUE(nasoa::testing::throws_error([&] { fine_tune(cancelled, Limits(600, 0)); }, ErrorCode::kNotFound,
                                           "the caller's own error"));
}

TEST_F(FineTunerTest, AFirstStepOfUnknownTimeIsReckonedFromATrialThatLeavesTrainingAsItWas) {
  // Without a profile or an earlier run, the first step's time is reckoned
  // from a trial on a few images: a budget that cannot hold it is refused
  // before the step, not overrun by it.
  FineTuneJob big = job(1);
  big.regime.batch_size = 4096;  // every training image in the first step
  int steps_taken = 0;
  big.on_progress = [&](const TrainProgress& p) { steps_taken = std::max(steps_taken, int(p.step)); };
  EXPECT_TRUE(nasoa::testing::throws_error([&] { fine_tune(big, Limits(1.0, 0.4)); }, ErrorCode::kInvalidArgument,
                                           "reckoned from a trial on 8 images"));
  EXPECT_EQ(steps_taken, 0) << "refused after the step it could not afford";

  // The trial changes nothing of the run: its weights are those of a run
  // that knew its step time (no trial).
  FineTuneJob tried = fixed_layout_job(1);
  tried.regime.batch_size = 64;
  FineTuneJob told = fixed_layout_job(1);
  told.regime.batch_size = 64;
  told.predicted_step_seconds = 0.05;
  fine_tune(tried, Limits(600, 0));
  fine_tune(told, Limits(600, 0));
  const zoo::NamedTensors a = zoo::module_state(*tried.network), b = zoo::module_state(*told.network);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
}

TEST_F(FineTunerTest, TrainingIsDeterministicAndLeavesTheCacheAlone) {
  // Deterministic in a fixed layout; a layout trial picks by timing, and the
  // two layouts' arithmetic differs in the last bits.
  const cv::Mat first = store_->image(0).clone();
  for (const MemoryLayout layout : {MemoryLayout::kChannelsFirst, MemoryLayout::kChannelsLast}) {
    FineTuneJob a = job(1), b = job(1);
    a.regime.random_resized_crop = b.regime.random_resized_crop = true;
    a.regime.horizontal_flip = b.regime.horizontal_flip = true;
    a.layout = b.layout = layout;
    fine_tune(a, Limits(600, 0));
    fine_tune(b, Limits(600, 0));
    const auto sa = zoo::module_state(*a.network), sb = zoo::module_state(*b.network);
    for (std::size_t i = 0; i < sa.size(); ++i)
      EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << to_string(layout) << ": " << sa[i].first;
  }
  // Augmentation works on copies: the cached pixels are what ingestion made.
  EXPECT_EQ(cv::norm(first, store_->image(0), cv::NORM_INF), 0);
}

TEST(ScheduleTest, EveryStepTrainsAtTheRateOfItsMiddle) {
  Regime r;
  r.learning_rate = 0.1;
  r.warmup_epochs = 0;
  r.epochs = 1;
  // One step: half the peak, not 0 (the cosine's value at the run's end).
  EXPECT_NEAR(step_learning_rate(r, 0, 0, 1), 0.05, 1e-12);
  // Ten steps: the cosine at 0.05, 0.15, ..., 0.95 of the run, decreasing,
  // and symmetric about half the peak.
  r.epochs = 2;
  std::vector<double> rates;
  for (int epoch = 0; epoch < 2; ++epoch)
    for (int step = 0; step < 5; ++step) rates.push_back(step_learning_rate(r, epoch, step, 5));
  for (std::size_t i = 0; i < rates.size(); ++i) {
    EXPECT_NEAR(rates[i], 0.05 * (1 + std::cos(M_PI * (double(i) + 0.5) / 10)), 1e-12) << i;
    EXPECT_GT(rates[i], 0.0) << i;
    EXPECT_NEAR(rates[i] + rates[rates.size() - 1 - i], 0.1, 1e-12) << i;
  }
  // Warm-up of one epoch of 4 steps: 1/8, 3/8, 5/8 and 7/8 of the peak first.
  r.warmup_epochs = 1;
  for (int step = 0; step < 4; ++step) EXPECT_NEAR(step_learning_rate(r, 0, step, 4), 0.1 * (2 * step + 1) / 8, 1e-12);
  // The step schedule over 10 epochs of one step: 5 at the peak (taken at
  // the step's end, only 4 were), then a tenth of it until 3/4 of the run,
  // which is the middle of the eighth step, which therefore takes the
  // hundredth.
  r.schedule = ScheduleKind::kStep;
  r.epochs = 10;
  std::vector<double> expected = {0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001};
  for (int epoch = 0; epoch < 10; ++epoch) EXPECT_NEAR(step_learning_rate(r, epoch, 0, 1), expected[std::size_t(epoch)], 1e-12) << epoch;
}

// Each optimizer test takes two steps, so that momentum (zero before the
// first) and AdamW's bias correction (exact at the first) show in the result.
namespace optimizer_test {

// d/dw of sum(layer(ones)) is 1 for every weight and the bias.
void backward_ones(torch::nn::Linear& layer) { layer->forward(torch::ones({1, 2})).sum().backward(); }

// `state` with every tensor equal to `expected`'s of the same name, and no
// name missing on either side.
::testing::AssertionResult same_state(const zoo::NamedTensors& state, const zoo::NamedTensors& expected) {
  if (state.size() != expected.size())
    return ::testing::AssertionFailure() << state.size() << " tensors, expected " << expected.size();
  std::map<std::string, torch::Tensor> by_name(state.begin(), state.end());
  for (const auto& [name, tensor] : expected) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) return ::testing::AssertionFailure() << name << " missing";
    if (!torch::equal(it->second, tensor)) return ::testing::AssertionFailure() << name << " differs";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace optimizer_test

TEST(OptimizerTest, SgdFollowsTheUpdateRuleWithMomentumAndL2Decay) {
  torch::nn::Linear layer(2, 1);
  Regime r;
  r.model = "x";
  r.optimizer = OptimizerKind::kSgd;
  r.momentum = 0.5;
  r.weight_decay = 0.1;
  Optimizer opt(*layer, r);
  const torch::Tensor w0 = layer->weight.detach().clone();
  const torch::Tensor g = torch::ones({1, 2});
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    optimizer_test::backward_ones(layer);
    opt.step(0.1);
  }
  // buffer b1 = g + wd w0; w1 = w0 - lr b1; b2 = m b1 + g + wd w1; w2 = w1 - lr b2.
  const torch::Tensor b1 = g + 0.1 * w0;
  const torch::Tensor w1 = w0 - 0.1 * b1;
  const torch::Tensor b2 = 0.5 * b1 + g + 0.1 * w1;
  EXPECT_TRUE(torch::allclose(layer->weight, w1 - 0.1 * b2, 1e-6, 1e-7));
}

TEST(OptimizerTest, AdamWFollowsTheUpdateRuleWithBiasCorrectionAndDecoupledDecay) {
  torch::nn::Linear layer(2, 1);
  Regime r;
  r.model = "x";
  r.optimizer = OptimizerKind::kAdamW;
  r.momentum = 0.8;  // beta1
  r.weight_decay = 0.05;
  Optimizer opt(*layer, r);
  const torch::Tensor w0 = layer->weight.detach().clone().to(torch::kDouble);
  const double lr = 0.01, beta1 = 0.8, beta2 = 0.999, eps = 1e-8;
  // With a gradient of 1 each step: m_t = 1 - beta1^t, v_t = 1 - beta2^t,
  // so each step moves by lr * (m_t / (1 - beta1^t)) / (sqrt(v_t / (1 -
  // beta2^t)) + eps) = lr / (1 + eps), after decaying w by (1 - lr wd).
  torch::Tensor w = w0;
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    optimizer_test::backward_ones(layer);
    opt.step(lr);
    w = w * (1 - lr * 0.05) - lr / (1 + eps);
  }
  EXPECT_TRUE(torch::allclose(layer->weight.to(torch::kDouble), w, 1e-6, 1e-7));
  // The moments themselves, which a gradient of 1 makes closed-form.
  const zoo::NamedTensors state = opt.state();
  std::map<std::string, torch::Tensor> by_name(state.begin(), state.end());
  EXPECT_EQ(by_name.at("optimizer.steps").item<std::int64_t>(), 2);
  EXPECT_TRUE(torch::allclose(by_name.at("optimizer.weight.first"),
                              torch::full({1, 2}, 1 - beta1 * beta1), 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(by_name.at("optimizer.weight.second"),
                              torch::full({1, 2}, 1 - beta2 * beta2), 1e-6, 1e-9));
}

TEST(OptimizerTest, StateRoundTripsAndContinuesAsTheOriginalWould) {
  for (const OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdamW}) {
    SCOPED_TRACE(kind == OptimizerKind::kSgd ? "sgd" : "adamw");
    torch::manual_seed(3);
    torch::nn::Linear original(2, 1), resumed(2, 1);
    Regime r;
    r.model = "x";
    r.optimizer = kind;
    r.momentum = 0.5;
    r.weight_decay = 0.1;
    Optimizer opt(*original, r);
    for (int step = 0; step < 2; ++step) {
      opt.zero_grad();
      optimizer_test::backward_ones(original);
      opt.step(0.1);
    }
    // A resume: the same weights, a new optimiser given the saved state.
    {
      torch::NoGradGuard no_grad;
      resumed->weight.copy_(original->weight);
      resumed->bias.copy_(original->bias);
    }
    Optimizer other(*resumed, r);
    other.load_state(opt.state(), "state");
    EXPECT_TRUE(optimizer_test::same_state(other.state(), opt.state()));
    // The next step of each lands on the same weights: the buffers and the
    // step count (AdamW's bias correction) were taken, not only their names.
    for (auto [o, layer] : {std::pair{&opt, &original}, std::pair{&other, &resumed}}) {
      o->zero_grad();
      optimizer_test::backward_ones(*layer);
      o->step(0.1);
    }
    EXPECT_TRUE(torch::equal(resumed->weight, original->weight));
    EXPECT_TRUE(torch::equal(resumed->bias, original->bias));

    EXPECT_THROW(other.load_state({}, "empty"), Error);
    // A buffer of the wrong shape is refused, naming it.
    zoo::NamedTensors wrong = opt.state();
    for (auto& [name, tensor] : wrong)
      if (name == "optimizer.weight.first") tensor = torch::zeros({2, 1});
    EXPECT_TRUE(nasoa::testing::throws_error([&] { other.load_state(wrong, "wrong.checkpoint"); },
                                             ErrorCode::kCorrupt, "optimizer.weight.first"));
  }
}

}  // namespace
}  // namespace nasoa::runtime
