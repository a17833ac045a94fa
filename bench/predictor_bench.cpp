// predictor_bench: how well the performance predictor generalises to a task
// it has not seen, and whether the LogME probe feature helps.
//
//   predictor_bench --log EXPERIENCE.log [--out FILE.md]
//
// Leave one task out: for every task of the experience log, the predictor is
// fitted on the other tasks' records and predicts the held-out task's runs.
// Reported per task and overall: mean absolute error of the predicted best
// validation accuracy, Spearman rank correlation between predicted and
// achieved accuracy over the task's runs (what the planner needs: the best
// plan ranked first), the regret of the plan ranked first (best achieved
// minus achieved by the top-predicted run), and the same with the probe
// feature removed; then, without the probe, the regret of the run ranked
// first by mean - k * std for the planner's risk aversions k. Fit and
// predict times are medians over the folds.
// Prints the table (and writes it as Markdown to --out); not a test.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>

#include "bench/bench_support.h"
#include "runtime/adapt/experience_log.h"
#include "runtime/adapt/predictor.h"

namespace {

namespace rt = nasoa::runtime;
using Clock = std::chrono::steady_clock;

struct Fold {
  std::string task;
  std::size_t runs = 0;
  double mae = 0, spearman = 0, regret = 0, fit_seconds = 0;
  // Regret of the run ranked first by mean - k * std, for each k of kRiskAversions.
  std::vector<double> regret_at_risk;
  // MAE on the task's other runs once the predictor is calibrated to the run
  // it ranks first, as a device learns from its first task of this kind.
  double mae_calibrated = 0;
};

// The planner's risk aversions compared (PlannerOptions::risk_aversion).
const std::vector<double> kRiskAversions{0.5, 1.0};

Fold evaluate(const std::string& task, const std::vector<rt::ExperienceRecord>& train,
              const std::vector<rt::ExperienceRecord>& test, bool probe, const rt::PredictorOptions& options) {
  auto rows = rt::training_rows(train, {}, 1.0);
  if (!probe)
    for (rt::TrainingRow& r : rows) r.x[rt::kProbeScore] = std::numeric_limits<double>::quiet_NaN();
  const auto t0 = Clock::now();
  rt::Predictor predictor = rt::Predictor::fit(rows, options);
  Fold f;
  f.task = task;
  f.fit_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<rt::FeatureVector> x;
  std::vector<double> y;
  std::vector<const rt::ExperienceRecord*> evaluated;  // the records behind x and y
  for (const rt::ExperienceRecord& r : test) {
    if (r.best_accuracy < 0) continue;
    rt::FeatureVector v = rt::make_features(r);
    if (!probe) v[rt::kProbeScore] = std::numeric_limits<double>::quiet_NaN();
    x.push_back(v);
    y.push_back(r.best_accuracy);
    evaluated.push_back(&r);
  }
  const std::vector<rt::Prediction> p = predictor.predict(x);
  std::vector<double> mean;
  for (const rt::Prediction& q : p) mean.push_back(q.mean);
  f.runs = y.size();
  for (std::size_t i = 0; i < y.size(); ++i) f.mae += std::abs(mean[i] - y[i]) / double(y.size());
  f.spearman = nasoa::bench::spearman(mean, y);
  const double best = *std::max_element(y.begin(), y.end());
  const std::size_t top = std::size_t(std::max_element(mean.begin(), mean.end()) - mean.begin());
  f.regret = best - y[top];
  for (double k : kRiskAversions) {
    std::size_t pick = 0;
    for (std::size_t i = 1; i < p.size(); ++i)
      if (p[i].mean - k * p[i].std > p[pick].mean - k * p[pick].std) pick = i;
    f.regret_at_risk.push_back(best - y[pick]);
  }
  // The device ran the top plan and learnt its outcome.
  rt::ExperienceRecord ran = *evaluated[top];
  if (!probe) ran.probe_score.reset();
  predictor.calibrate({ran});
  const std::vector<rt::Prediction> q = predictor.predict(x);
  for (std::size_t i = 0; i < y.size(); ++i)
    if (i != top) f.mae_calibrated += std::abs(q[i].mean - y[i]) / double(y.size() - 1);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"predictor_bench: leave-one-task-out quality of the performance predictor, with and without the probe"};
  std::string log, out;
  app.add_option("--log", log, "Experience log (nasoa-gather's)")->required();
  app.add_option("--out", out, "Also write the table as Markdown here");
  rt::PredictorOptions options;
  app.add_option("--members", options.members, "Bootstrap members of the ensemble")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--seed", options.seed, "Seed of the fits")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const rt::ExperienceLogContents contents = rt::read_experience_log(log);
  std::map<std::string, std::vector<rt::ExperienceRecord>> by_task;
  for (const rt::ExperienceRecord& r : contents.records) by_task[r.task_id].push_back(r);
  if (by_task.size() < 2) {
    std::cerr << "predictor_bench: " << log << " holds fewer than two tasks\n";
    return 1;
  }
  std::ostringstream t;
  t << "Experience: " << contents.records.size() << " runs on " << by_task.size()
    << " source tasks; leave one task out (fit on the others, predict the held-out task's runs).\n\n"
    << "| held-out task | runs | MAE | Spearman | regret of top plan | MAE (no probe) | Spearman (no probe) | regret (no probe) |\n"
    << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  double sums[6] = {0, 0, 0, 0, 0, 0};
  std::vector<double> fits;
  std::vector<Fold> plain;  // without the probe, as planning runs by default
  char line[512];
  for (const auto& [task, test] : by_task) {
    std::vector<rt::ExperienceRecord> train;
    for (const auto& [other, records] : by_task)
      if (other != task) train.insert(train.end(), records.begin(), records.end());
    const Fold with = evaluate(task, train, test, true, options),
               without = evaluate(task, train, test, false, options);
    fits.push_back(with.fit_seconds);
    plain.push_back(without);
    std::snprintf(line, sizeof line, "| %s | %zu | %.3f | %.3f | %.1f pp | %.3f | %.3f | %.1f pp |\n", task.c_str(),
                  with.runs, with.mae, with.spearman, 100 * with.regret, without.mae, without.spearman,
                  100 * without.regret);
    t << line;
    const double v[6] = {with.mae, with.spearman, with.regret, without.mae, without.spearman, without.regret};
    for (int i = 0; i < 6; ++i) sums[i] += v[i] / double(by_task.size());
  }
  std::sort(fits.begin(), fits.end());
  std::snprintf(line, sizeof line, "| **mean** | | %.3f | %.3f | %.1f pp | %.3f | %.3f | %.1f pp |\n", sums[0], sums[1],
                100 * sums[2], sums[3], sums[4], 100 * sums[5]);
  t << line << "\nMedian fit time on a fold: " << fits[fits.size() / 2] << " s.\n";

  // What the planner's risk aversion k (score = mean - k * std) does to the
  // run ranked first, without the probe.
  t << "\nRegret of the run ranked first by mean - k * std (no probe):\n\n| held-out task | k = 0 |";
  for (double k : kRiskAversions) t << " k = " << k << " |";
  t << "\n|---|---:|";
  for (std::size_t i = 0; i < kRiskAversions.size(); ++i) t << "---:|";
  t << "\n";
  std::vector<double> mean_at_risk(kRiskAversions.size() + 1, 0.0);
  for (const Fold& f : plain) {
    std::snprintf(line, sizeof line, "| %s | %.1f pp |", f.task.c_str(), 100 * f.regret);
    t << line;
    mean_at_risk[0] += f.regret / double(plain.size());
    for (std::size_t i = 0; i < kRiskAversions.size(); ++i) {
      std::snprintf(line, sizeof line, " %.1f pp |", 100 * f.regret_at_risk[i]);
      t << line;
      mean_at_risk[i + 1] += f.regret_at_risk[i] / double(plain.size());
    }
    t << "\n";
  }
  t << "| **mean** |";
  for (double m : mean_at_risk) {
    std::snprintf(line, sizeof line, " %.1f pp |", 100 * m);
    t << line;
  }
  t << "\n";

  // Calibration (Predictor::calibrate, what a device does with its outcomes):
  // after the run ranked first, what the predictor says of the task's others.
  t << "\nError on the held-out task's other runs, before and after calibrating to the run ranked first (no probe; "
       "the ranking is unchanged by construction):\n\n| held-out task | MAE before | MAE after |\n|---|---:|---:|\n";
  double before = 0, after = 0;
  for (const Fold& f : plain) {
    std::snprintf(line, sizeof line, "| %s | %.3f | %.3f |\n", f.task.c_str(), f.mae, f.mae_calibrated);
    t << line;
    before += f.mae / double(plain.size());
    after += f.mae_calibrated / double(plain.size());
  }
  std::snprintf(line, sizeof line, "| **mean** | %.3f | %.3f |\n", before, after);
  t << line;
  std::cout << t.str();
  if (!out.empty()) std::ofstream(out) << t.str();
  return 0;
}
