// adaption_bench: NASOA's one-shot plans against the other ways of choosing a
// model and a regime for a task under a time budget (the paper's adaption
// table, at our scale).
//
//   adaption_bench --zoo zoo/default --table ZOO-TABLE.log... --baselines BASELINE-TABLE.log...
//                  --profile PROFILE.json --tasks build/corpora/eval [--budgets 30,60,120,300]
//                  [--seeds 20] [--risk-aversion 0] [--members N --predictor-seed S]
//                  [--nasoa-runs LOG...] [--fixed-fill RUNS.jsonl] [--list-missing FILE]
//                  [--search-runs LOG... [--space-cap 20]] [--list-search-missing FILE] [--out FILE.md]
//
// The tables are experience logs (nasoa-gather's format) of real fine-tunes
// on the evaluation tasks, made on this machine: ZOO-TABLE every plan of the
// grid (zoo model x learning rate x frozen stages x epochs, batch 32) for every
// model of the bundle, BASELINES the hand-designed networks under a small
// grid of fixed regimes. Each record holds the validation accuracy after
// every epoch and its elapsed time, so a method's outcome under a budget is
// read off the table, including a run that the budget guard cuts short (the
// best validation accuracy among the epochs finished in time). Methods that
// try several plans pay for every run they start; the search methods are
// averaged over --seeds seeds. "Device time" is fine-tuning time: ingestion
// is the same for every method and is left out.
//
// Several tables of each kind (the same grid gathered with different seeds,
// nasoa-gather --seed) are averaged: each plan's per-epoch validation
// accuracy and elapsed time, best accuracy and total time become their means
// over the seeds, the plan's expected outcome. One fine-tune per plan on a
// small validation set moves by several points from seed to seed (or from a
// last-bit difference in the arithmetic), as much as the differences between
// the methods. So a method that chooses by the tables' accuracies (oracle,
// random search, BOHB, a baseline's best regime) chooses on one seed's table
// and is reported on the others' (each in turn, averaged): reported on the
// numbers it chose by, it would be credited with their noise.
//
// Methods (per task and budget):
//   oracle      the best plan of the zoo grid that fits the budget (exhaustive);
//   nasoa       generate_schedule() with the bundle's shipped predictor and the
//               device profile, one run, its planning time charged; it plans
//               over nasoa::Adapter's grid (every frozen count, epoch steps
//               to 512 and the epochs that fill the budget, each model no
//               further than its own runs: grid_with_evidence), and a plan
//               the tables lack is read off --nasoa-runs (real runs of it
//               with each table's seed; --list-missing names the ones to
//               gather);
//   fixed       the largest zoo model that fits, lr 0.01, nothing frozen, the
//               most epochs of the grid that fit (by the profile);
//   fixed, filling the budget
//               the same with the epochs that fill the budget, past the
//               grid's most: real runs (--fixed-fill, from
//               bench/fixed_fill_runs.py), one per table seed, averaged;
//   <baseline>  each hand-designed network with the fixed regime of its table
//               that is best on average over the evaluation tasks (hindsight:
//               optimistic for the baselines);
//   logme       the zoo model with the highest LogME score on the task's
//               frozen features (probed here, its time charged), then the
//               fixed regime above;
//   random      random plans of the grid, run one after another until the
//               budget is spent, the best kept;
//   bohb        Hyperband (eta 2 over the grid's epochs) with BOHB's
//               kernel-density sampler over (model, lr, frozen), until the
//               budget is spent, the best kept.
// Also: the device time BOHB and random search need to match NASOA's accuracy
// (as a multiple of NASOA's own device time; the plan a search hands back and
// NASOA's are read off the same held-out runs), over the tables' grid and,
// with --search-runs, BOHB past the grid's epochs (as many as NASOA may
// plan, to 512; its runs past the grid gathered as the searches first need them,
// --list-search-missing names them); the shipped predictor's quality
// on the evaluation tasks (none of them is in its experience); and a stream of
// adaptions where the shipped predictor is calibrated to every outcome (as
// nasoa::Adapter::record does), against one that is refitted on them and one
// that learns nothing. --members refits the shipped experience with another
// ensemble size (and --predictor-seed) instead of using the shipped
// predictor, to see how much the fitting seed matters.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "zoo/system/usable_cores.h"
#include "bench/bench_support.h"
#include "nasoa/error.h"
#include "runtime/adapt/experience_coverage.h"
#include "runtime/adapt/experience_log.h"
#include "runtime/adapt/planner.h"
#include "runtime/adapt/predictor.h"
#include "runtime/adapt/probe.h"
#include "runtime/data/image_store.h"
#include "runtime/data/split.h"
#include "runtime/data/task_source.h"
#include "runtime/profile/device_profile.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/bundle.h"
#include "zoo/text/printable.h"

namespace {

namespace fs = std::filesystem;
namespace rt = nasoa::runtime;
using Clock = std::chrono::steady_clock;
using Record = rt::ExperienceRecord;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- the tables ----------------------------------------------------------------

struct PlanKey {
  std::string model;
  double lr = 0;
  int frozen = 0, epochs = 0;
  bool operator<(const PlanKey& o) const {
    return std::tie(model, lr, frozen, epochs) < std::tie(o.model, o.lr, o.frozen, o.epochs);
  }
  bool operator==(const PlanKey& o) const {
    return std::tie(model, lr, frozen, epochs) == std::tie(o.model, o.lr, o.frozen, o.epochs);
  }
};

PlanKey key_of(const nasoa::Regime& r) { return {r.model, r.learning_rate, r.frozen_stages, r.epochs}; }

// "nasoa-7 lr 0.1 frozen 0 x64", for messages.
std::string plan_text(const PlanKey& k) {
  std::ostringstream o;
  o << k.model << " lr " << k.lr << " frozen " << k.frozen << " x" << k.epochs;
  return o.str();
}

// What a run reached when it was given `seconds` of device time: the whole
// run when it fits, else the best validation accuracy of the epochs finished
// in time (the budget guard hands back weights evaluated so far); a run cut
// before its first evaluation hands back an untrained head (accuracy 0).
struct Outcome {
  double accuracy = 0, seconds = 0;
};

// How a run is scored. kBest: the best validation accuracy among its epochs,
// what the predictor learns (and what the runtime handed back up to 0.3.3).
// It is picked on the very split it is reported on, so the maximum of many
// noisy evaluations flatters long runs (hundreds of epochs) against short
// ones. kFinal: the accuracy of the last epoch evaluated, which no choice
// among epochs touches, and close to what the runtime hands back since
// 0.3.4, the latest epoch within one standard error of the best (--score
// final: every record's best_accuracy is replaced by it when the logs are
// read).
enum class Score { kBest, kFinal };
Score g_score = Score::kBest;

Outcome run_within(const Record& r, double seconds) {
  if (r.total_seconds <= seconds) return {r.best_accuracy, r.total_seconds};
  double best = 0;
  for (const rt::EpochPoint& e : r.history) {
    if (e.elapsed_seconds > seconds || e.validation_accuracy < 0) continue;
    if (g_score == Score::kFinal)
      best = e.validation_accuracy;  // epochs are in order: the last one that ended in time
    else if (e.validation_accuracy > best)
      best = e.validation_accuracy;
  }
  return {best, std::max(0.0, seconds)};
}

// The accuracy of `r`'s last evaluated epoch (-1: none was).
double last_epoch_accuracy(const Record& r) {
  for (auto e = r.history.rbegin(); e != r.history.rend(); ++e)
    if (e->validation_accuracy >= 0) return e->validation_accuracy;
  return -1;
}

struct Task {
  std::string name;
  nasoa::TaskMeta meta;
  std::int64_t train_images = 0, validation_images = 0;
  std::map<PlanKey, const Record*> zoo, baselines;  // averaged over the tables
  std::vector<const Record*> zoo_runs;  // the table's order
  std::map<std::string, double> logme, logme_seconds;
  // The same per table (gathering seed), to choose on one and report on others.
  std::vector<std::map<PlanKey, const Record*>> zoo_seed, baselines_seed;
  std::vector<std::vector<const Record*>> zoo_runs_seed;
  // Runs of plans that lie outside the zoo grid, per table seed: NASOA's
  // (--nasoa-runs) and those BOHB past the grid's epochs asked for
  // (--search-runs). Only that search and NASOA's outcome read them.
  std::map<PlanKey, const Record*> extra;
  std::vector<std::map<PlanKey, const Record*>> extra_seed;
};

// A plan no table nor log of runs past the grid holds: NASOA chose it, or
// BOHB past the grid's epochs ran it or handed it back.
struct MissingRun {
  std::string task;
  PlanKey plan;
};

// The run of plan `k` in `table`, or in the runs beside it; null if neither has it.
const Record* find_run(const std::map<PlanKey, const Record*>& table, const std::map<PlanKey, const Record*>& extra,
                       const PlanKey& k) {
  auto it = table.find(k);
  if (it != table.end()) return it->second;
  it = extra.find(k);
  return it != extra.end() ? it->second : nullptr;
}

// Methods that choose by the table's accuracies (the oracle, random search,
// BOHB, the baselines' best regime) would report the very noise they chose
// by: the maximum of many noisy numbers is above what the chosen plan
// reaches. They choose on one gathering seed's table and are reported on the
// others' (each table in turn, averaged); methods that never look at the
// table (NASOA, fixed, LogME) are reported on all of them. With one table
// there is nothing to hold out, and it serves both.
constexpr std::size_t kAllTables = std::size_t(-1);

// What the plan `k` reaches given `seconds`, on the tables other than
// `chosen_on` (all of them for kAllTables), averaged.
double held_out(const Task& t, const PlanKey& k, double seconds, std::size_t chosen_on, bool baseline = false) {
  const auto& tables = baseline ? t.baselines_seed : t.zoo_seed;
  static const std::map<PlanKey, const Record*> kNone;
  double sum = 0;
  int n = 0;
  for (std::size_t i = 0; i < tables.size(); ++i)
    if (i != chosen_on || tables.size() == 1) {
      const Record* r = find_run(tables[i], baseline || t.extra_seed.empty() ? kNone : t.extra_seed[i], k);
      if (!r) throw MissingRun{t.name, k};
      sum += run_within(*r, seconds).accuracy, ++n;
    }
  return n ? sum / n : 0;
}

// `t` as one gathering seed's table shows it.
Task seed_view(const Task& t, std::size_t seed) {
  Task v = t;
  v.zoo = t.zoo_seed[seed];
  v.baselines = t.baselines_seed[seed];
  v.zoo_runs = t.zoo_runs_seed[seed];
  v.extra = t.extra_seed.empty() ? std::map<PlanKey, const Record*>{} : t.extra_seed[seed];
  return v;
}

// ---- the methods ---------------------------------------------------------------

// Ranks plans by model size, then epochs: with the planner's budget
// arithmetic this picks "the largest model that fits, with the most epochs".
class SizeFirst final : public rt::AccuracyPredictor {
 public:
  std::vector<rt::Prediction> predict(const std::vector<rt::FeatureVector>& rows) const override {
    std::vector<rt::Prediction> out;
    for (const rt::FeatureVector& x : rows) out.push_back({(x[rt::kLogParameters] * 1000 + x[rt::kEpochs]) / 1e6, 0.01});
    return out;
  }
};

struct Setup {
  const rt::DeviceProfile* profile = nullptr;
  std::vector<rt::ModelFeatures> models;
  rt::PlannerOptions planner;  // the table's grid and regime
  // NASOA's grid: nasoa::Adapter's, at the tables' batch size, kept to the
  // predictor's evidence as the Adapter keeps it (grid_with_evidence).
  rt::PlanGrid nasoa_grid;
  // The rungs of BOHB past the grid's epochs: the tables' epochs, and those of
  // the experience past them, as far as NASOA's grid goes.
  std::vector<int> space_epochs;
};

rt::Schedule plan(const Setup& s, const Task& t, double budget, const rt::AccuracyPredictor& predictor,
                  const rt::PlannerOptions& options, const std::vector<rt::ModelFeatures>& models) {
  rt::PlannerBudget b;
  b.seconds = budget;
  rt::PlannerOptions o = options;
  o.overheads.validation_images = t.validation_images;
  return rt::generate_schedule(t.meta, t.train_images, b, *s.profile, models, predictor, o);
}

struct Result {
  Outcome outcome;
  PlanKey chosen;
  double overhead_seconds = 0;  // planning or probing
};

Result nasoa_method(const Setup& s, const Task& t, double budget, const rt::AccuracyPredictor& predictor) {
  const auto t0 = Clock::now();
  rt::PlannerOptions o = s.planner;
  o.grid = s.nasoa_grid;
  const rt::Schedule schedule = plan(s, t, budget, predictor, o, s.models);
  const double planning = seconds_since(t0);
  const PlanKey k = key_of(schedule.best.regime);
  const Record* r = find_run(t.zoo, t.extra, k);
  if (!r) throw MissingRun{t.name, k};
  const Outcome ran = run_within(*r, budget - planning);
  return {{held_out(t, k, budget - planning, kAllTables), ran.seconds}, k, planning};
}

Result fixed_default(const Setup& s, const Task& t, double budget, const std::vector<rt::ModelFeatures>& models,
                     double spent = 0) {
  rt::PlannerOptions o = s.planner;
  o.grid.learning_rates = {0.01};
  o.grid.frozen_stages = {0};
  o.overheads.spent_seconds = spent;
  const rt::Schedule schedule = plan(s, t, budget, SizeFirst(), o, models);
  const PlanKey k = key_of(schedule.best.regime);
  const Outcome ran = run_within(*t.zoo.at(k), budget - spent);
  return {{held_out(t, k, budget - spent, kAllTables), ran.seconds}, k, spent};
}

Result logme_method(const Setup& s, const Task& t, double budget) {
  double probing = 0;
  std::string best;
  for (const auto& [model, score] : t.logme) {
    probing += t.logme_seconds.at(model);
    if (best.empty() || score > t.logme.at(best)) best = model;
  }
  std::vector<rt::ModelFeatures> one;
  for (const rt::ModelFeatures& m : s.models)
    if (m.name == best) one.push_back(m);
  return fixed_default(s, t, budget, one, probing);
}

// Seconds no run takes: a run read whole.
constexpr double kNoBudget = std::numeric_limits<double>::infinity();
// A target no accuracy reaches: search until the budget is spent.
constexpr double kNoTarget = 2;
// The multiple of a search that never matched.
constexpr double kNever = std::numeric_limits<double>::infinity();

// Runs plans one after another until `budget` device seconds are spent (the
// last run cut at the deadline), or until the plan it would hand back (the
// best it has seen) reaches `target` (kNoTarget: never) on the held-out
// tables, which `report` reads (plan, seconds it was given). A search cannot
// see held-out accuracy while a run goes on, so a run is counted whole.
class DeviceClock {
 public:
  using Report = std::function<double(const PlanKey&, double)>;
  DeviceClock(double budget, double target, Report report)
      : budget_(budget), target_(target), report_(std::move(report)) {}
  bool done() const { return spent_ >= budget_ || reported_ >= target_; }
  // A run that cannot finish before the budget ends: the search ends with it.
  void expire() { spent_ = std::max(spent_, budget_); }
  double left() const { return budget_ - spent_; }
  void run(const Record& r) {
    const double given = budget_ - spent_;
    const Outcome o = run_within(r, given);
    spent_ += o.seconds;
    if (o.accuracy > best_) {
      best_ = o.accuracy;
      kept_ = key_of(r.regime);
      kept_given_ = given;
      if (target_ < kNoTarget) reported_ = report_(*kept_, kept_given_);
    }
  }
  // The held-out accuracy of the plan handed back (0: none finished an epoch).
  double reported() const { return kept_ ? report_(*kept_, kept_given_) : 0; }
  double spent() const { return spent_; }

 private:
  double budget_, target_;
  Report report_;
  double spent_ = 0, best_ = 0, reported_ = 0, kept_given_ = 0;
  std::optional<PlanKey> kept_;
};

Outcome random_search(const Task& t, double budget, double target, std::uint64_t seed, DeviceClock::Report report) {
  std::mt19937_64 rng(seed);
  DeviceClock clock(budget, target, std::move(report));
  // Without replacement: once every plan has run, more time finds nothing new.
  std::vector<const Record*> order = t.zoo_runs;
  std::shuffle(order.begin(), order.end(), rng);
  for (const Record* r : order) {
    if (clock.done()) break;
    clock.run(*r);
  }
  return {clock.reported(), clock.spent()};
}

// BOHB (Falkner et al., 2018): Hyperband brackets with eta 2 on the given
// epochs (the tables' grid, or epochs past the grid (as many as NASOA may plan), whose longer runs
// are read off --search-runs); configurations (model, lr, frozen) drawn at
// random with probability 1/3, else from a kernel-density model: the
// observations at the largest epoch count with enough of them are split
// into the best 15 % (at
// least dims + 1) and the rest; each is modelled by a product of
// Aitchison-Aitken kernels (bandwidth 0.3: a draw keeps a good point's value
// with probability 0.7; BOHB widens bandwidths only of continuous
// parameters); 64 samples from the good density, the one with the largest
// good/bad ratio is run. A plan (configuration and epochs) this search has
// already run is not paid for again: its result is known.
class Bohb {
 public:
  // With `whole_runs`, a run that cannot finish in the time left ends the
  // search with no credit for its first epochs, whether or not a log holds
  // it (a long run no log holds is not gathered, so it could not be
  // credited); without, it is cut at the deadline like any method's run.
  Bohb(const Task& t, const std::vector<int>& epochs, std::uint64_t seed, bool whole_runs = false)
      : task_(t), epochs_(epochs), rng_(seed), whole_runs_(whole_runs) {
    std::set<std::string> models;
    std::set<double> lrs;
    std::set<int> frozen;
    for (const auto& [k, r] : t.zoo) models.insert(k.model), lrs.insert(k.lr), frozen.insert(k.frozen);
    dims_ = {models.size(), lrs.size(), frozen.size()};
    model_names_.assign(models.begin(), models.end());
    lrs_.assign(lrs.begin(), lrs.end());
    frozen_.assign(frozen.begin(), frozen.end());
  }

  Outcome run(double budget, double target, DeviceClock::Report report) {
    DeviceClock clock(budget, target, std::move(report));
    const int s_max = int(epochs_.size()) - 1;
    // Until the budget is spent or every plan of the space has run: a round
    // that draws only known plans may be followed by one that does not (a
    // third of the draws are uniform), so it does not end the search.
    const std::size_t space = dims_[0] * dims_[1] * dims_[2] * epochs_.size();
    while (!clock.done() && known_.size() < space) {
      for (int s = s_max; s >= 0 && !clock.done(); --s) {
        // Bracket s: n configurations at the (s_max - s)-th epoch count, halved
        // while the epochs double.
        int n = int(std::ceil(double(s_max + 1) / (s + 1) * std::pow(2.0, s)));
        std::vector<Config> configs;
        for (int i = 0; i < n; ++i) configs.push_back(sample());
        for (int rung = s_max - s; rung <= s_max && !configs.empty() && !clock.done(); ++rung) {
          std::vector<std::pair<double, Config>> scored;
          for (const Config& c : configs) {
            if (clock.done()) break;
            if (const auto known = known_.find({c, rung}); known != known_.end()) {
              scored.push_back({known->second, c});
              continue;
            }
            const PlanKey k = key(c, epochs_[std::size_t(rung)]);
            const auto on_grid = task_.zoo.find(k);
            // Past the tables' grid a run is gathered when a search first
            // asks for it (--search-runs), unless it could not finish in the
            // time left even at twice its table speed.
            const double least = on_grid != task_.zoo.end() ? on_grid->second->total_seconds : fastest_seconds(c, k.epochs);
            if (whole_runs_ && least > clock.left()) {
              clock.expire();
              break;
            }
            const Record* found = find_run(task_.zoo, task_.extra, k);
            if (!found) throw MissingRun{task_.name, k};
            const Record& r = *found;
            if (whole_runs_ && r.total_seconds > clock.left()) {
              clock.expire();
              break;
            }
            const double before = clock.spent();
            clock.run(r);
            if (clock.spent() - before >= r.total_seconds - 1e-12) {  // finished: an observation
              observations_[rung].push_back({c, r.best_accuracy});
              known_[{c, rung}] = r.best_accuracy;
              scored.push_back({r.best_accuracy, c});
            }
          }
          std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
          configs.clear();
          for (std::size_t i = 0; i < scored.size() / 2; ++i) configs.push_back(scored[i].second);
        }
      }
    }
    return {clock.reported(), clock.spent()};
  }

 private:
  using Config = std::array<std::size_t, 3>;
  struct Observation {
    Config c;
    double accuracy;
  };

  PlanKey key(const Config& c, int epochs) const { return {model_names_[c[0]], lrs_[c[1]], frozen_[c[2]], epochs}; }

  // Less than a run of `c` for `epochs` can take: half the per-epoch time of
  // the second half of its longest run in the table. (Long runs gathered
  // later took 0.7 to 1.3 times that time per epoch.)
  double fastest_seconds(const Config& c, int epochs) const {
    const Record* longest = nullptr;
    for (int e : epochs_)
      if (const auto it = task_.zoo.find(key(c, e)); it != task_.zoo.end()) longest = it->second;
    if (!longest || longest->history.size() < 2) return 0;
    const auto& h = longest->history;
    const std::size_t n = h.size(), half = n / 2;
    const double per_epoch = (h[n - 1].elapsed_seconds - h[half - 1].elapsed_seconds) / double(n - half);
    return 0.5 * per_epoch * epochs;
  }

  Config uniform() {
    Config c{};
    for (std::size_t d = 0; d < 3; ++d) c[d] = std::uniform_int_distribution<std::size_t>(0, dims_[d] - 1)(rng_);
    return c;
  }

  double density(const std::vector<Config>& points, const Config& x, double bw) const {
    double sum = 0;
    for (const Config& p : points) {
      double k = 1;
      for (std::size_t d = 0; d < 3; ++d) k *= p[d] == x[d] ? 1 - bw : bw / double(std::max<std::size_t>(1, dims_[d] - 1));
      sum += k;
    }
    return sum / double(points.size());
  }

  Config sample() {
    const std::size_t min_points = 3 + 1;
    if (std::uniform_real_distribution<double>(0, 1)(rng_) < 1.0 / 3) return uniform();
    for (auto it = observations_.rbegin(); it != observations_.rend(); ++it) {
      std::vector<Observation> obs = it->second;
      if (obs.size() < 2 * min_points) continue;
      std::stable_sort(obs.begin(), obs.end(), [](const Observation& a, const Observation& b) { return a.accuracy > b.accuracy; });
      const std::size_t n_good = std::max(min_points, std::size_t(std::ceil(0.15 * double(obs.size()))));
      std::vector<Config> good, bad;
      for (std::size_t i = 0; i < obs.size(); ++i) (i < n_good ? good : bad).push_back(obs[i].c);
      const double bw = 0.3;
      Config best{};
      double best_ratio = -1;
      for (int i = 0; i < 64; ++i) {
        // Draw from the good density: pick a good point, keep each coordinate
        // with probability 1 - bw, else take one of the other values. (A
        // probability of moving of (c-1)/c would make every draw uniform.)
        const Config& centre = good[std::uniform_int_distribution<std::size_t>(0, good.size() - 1)(rng_)];
        Config c = centre;
        for (std::size_t d = 0; d < 3; ++d) {
          if (dims_[d] > 1 && std::uniform_real_distribution<double>(0, 1)(rng_) < bw) {
            std::size_t v = std::uniform_int_distribution<std::size_t>(0, dims_[d] - 2)(rng_);
            c[d] = v >= centre[d] ? v + 1 : v;
          }
        }
        const double ratio = density(good, c, bw) / std::max(1e-32, density(bad, c, bw));
        if (ratio > best_ratio) best_ratio = ratio, best = c;
      }
      return best;
    }
    return uniform();
  }

  const Task& task_;
  std::vector<int> epochs_;
  std::mt19937_64 rng_;
  bool whole_runs_ = false;
  std::array<std::size_t, 3> dims_{};
  std::vector<std::string> model_names_;
  std::vector<double> lrs_;
  std::vector<int> frozen_;
  std::map<int, std::vector<Observation>> observations_;
  std::map<std::pair<Config, int>, double> known_;  // (configuration, rung) run in full: its accuracy
};

// The best plan of the grid that fits, chosen on table `seed` (exhaustive
// search), reported on the others.
double oracle_on(const Task& t, double budget, std::size_t seed) {
  const Record* best = nullptr;
  for (const Record* r : t.zoo_runs_seed[seed])
    if (r->total_seconds <= budget && (!best || r->best_accuracy > best->best_accuracy)) best = r;
  return best ? held_out(t, key_of(best->regime), budget, seed) : 0;
}

double oracle(const Task& t, double budget) {
  double sum = 0;
  for (std::size_t s = 0; s < t.zoo_seed.size(); ++s) sum += oracle_on(t, budget, s);
  return sum / double(t.zoo_seed.size());
}

// BOHB with rungs at `space` (the tables' models, rates and frozen counts,
// and epochs past the tables' grid): the device time it needs to hand back a
// plan that reaches, on the held-out table, what NASOA's plan `n` reaches
// there, as a multiple of NASOA's fine-tuning time; per table and seed, each
// search given at most `cap` times that, and ended by a run that cannot
// finish in the time left (kNever: it did not match within it). The
// fine-tuning time is read off the run's record on the search's table, so
// the runs a search needs
// do not hang on how long this process took to plan. A search that lacks a
// run adds it to `missing` and counts for nothing.
std::vector<double> space_multiples(const Task& t, const Result& n, double budget, const std::vector<int>& space,
                                    int seeds, double cap, std::set<std::pair<std::string, PlanKey>>& missing) {
  std::vector<double> out;
  for (std::size_t table = 0; table < t.zoo_seed.size(); ++table) {
    const Task view = seed_view(t, table);
    // NASOA's run on the table the search's times come from.
    const Record* nasoa_run = find_run(view.zoo, view.extra, n.chosen);
    if (!nasoa_run) throw MissingRun{t.name, n.chosen};
    const double nasoa_time = std::min(nasoa_run->total_seconds, budget);
    const DeviceClock::Report report = [&t, table](const PlanKey& k, double given) {
      return held_out(t, k, given, table);
    };
    const double target = held_out(t, n.chosen, budget - n.overhead_seconds, table);
    for (int s = 0; s < seeds; ++s) {
      try {
        const Outcome o = Bohb(view, space, std::uint64_t(s + 1), /*whole_runs=*/true).run(cap * nasoa_time, target, report);
        out.push_back(o.accuracy >= target ? o.seconds / nasoa_time : kNever);
      } catch (const MissingRun& m) {
        missing.insert({m.task, m.plan});
      }
    }
  }
  return out;
}

// ---- statistics -------------------------------------------------------------------

double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

std::string pct(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", 100 * x);
  return b;
}

std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

// ---- loading ------------------------------------------------------------------------

std::vector<Record> read_table(const std::string& path, bool may_be_empty = false) {
  rt::ExperienceLogContents c = rt::read_experience_log(path);
  for (const std::string& d : c.damage_report(path)) std::cerr << "adaption_bench: " << d << "\n";
  if (c.records.empty() && !may_be_empty)
    throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument, path + ": no records");
  return std::move(c.records);
}

// The records of `paths` (one table per seed), one per task and plan: each
// plan's runs averaged (see the top of this file), and each table's own, in
// the same order. Every plan must have a run in every table, with as many
// epochs; with `common_only`, the plans that do not are left out instead
// (runs gathered as they were needed, which an interruption may have left
// in some tables only), and a table may be empty.
struct Tables {
  std::vector<Record> mean;
  std::vector<std::vector<Record>> seeds;
};

Tables read_tables(const std::vector<std::string>& paths, bool common_only = false) {
  std::vector<std::map<std::pair<std::string, PlanKey>, Record>> tables;
  std::vector<std::pair<std::string, PlanKey>> order;  // the first table's order
  for (const std::string& path : paths) {
    std::map<std::pair<std::string, PlanKey>, Record> table;
    for (Record& r : read_table(path, common_only)) {
      const std::pair<std::string, PlanKey> key{r.task_id, key_of(r.regime)};
      if (tables.empty()) order.push_back(key);
      table.emplace(key, std::move(r));
    }
    if (!common_only && !tables.empty() && table.size() != tables.front().size())
      throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument, path + ": " + std::to_string(table.size()) +
                                                                 " plans, the first table has " +
                                                                 std::to_string(tables.front().size()));
    tables.push_back(std::move(table));
  }
  Tables out;
  out.seeds.resize(tables.size());
  for (const auto& key : order) {
    // A plan some table lacks is left out; one whose runs differ in epochs
    // is refused below (gathering again would not change it).
    if (common_only &&
        std::any_of(tables.begin(), tables.end(), [&](const auto& table) { return table.find(key) == table.end(); }))
      continue;
    for (std::size_t k = 0; k < tables.size(); ++k) {
      const auto it = tables[k].find(key);
      if (it != tables[k].end()) out.seeds[k].push_back(it->second);
    }
    Record mean = tables.front().at(key);
    const double n = double(tables.size());
    for (std::size_t k = 1; k < tables.size(); ++k) {
      const auto it = tables[k].find(key);
      if (it == tables[k].end() || it->second.history.size() != mean.history.size())
        throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                           paths[k] + ": no run of " + key.second.model + " on " + key.first +
                               " with the epochs of the first table's run");
      const Record& r = it->second;
      for (std::size_t e = 0; e < mean.history.size(); ++e) {
        mean.history[e].validation_accuracy += r.history[e].validation_accuracy;
        mean.history[e].elapsed_seconds += r.history[e].elapsed_seconds;
      }
      mean.best_accuracy += r.best_accuracy;
      mean.final_accuracy += r.final_accuracy;
      mean.total_seconds += r.total_seconds;
    }
    for (rt::EpochPoint& e : mean.history) e.validation_accuracy /= n, e.elapsed_seconds /= n;
    mean.best_accuracy /= n;
    mean.final_accuracy /= n;
    mean.total_seconds /= n;
    out.mean.push_back(std::move(mean));
  }
  return out;
}

// Real runs of the fixed default with the epochs that fill each budget
// (bench/fixed_fill_runs.py), one JSON object per line: per (task, budget),
// each seed's run.
struct FillRun {
  double best_accuracy = 0;
  double final_accuracy = -1;  // of the last epoch evaluated; -1: not in the file (runs made before it was)
  int epochs_run = 0;
  bool cut_by_budget = false;
};
using FillRuns = std::map<std::pair<std::string, double>, std::vector<FillRun>>;

FillRuns read_fill_runs(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw nasoa::Error(nasoa::ErrorCode::kNotFound, path + ": cannot open");
  FillRuns runs;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string where = path + ":" + std::to_string(number);
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      FillRun r;
      r.best_accuracy = j.at("best_accuracy").get<double>();
      if (j.contains("final_accuracy") && !j.at("final_accuracy").is_null())
        r.final_accuracy = j.at("final_accuracy").get<double>();
      r.epochs_run = j.at("epochs_run").get<int>();
      r.cut_by_budget = j.at("stop_reason").get<std::string>() != "completed";
      if (!(r.best_accuracy >= 0 && r.best_accuracy <= 1))
        throw nasoa::Error(nasoa::ErrorCode::kCorrupt, "best_accuracy outside [0, 1]");
      if (g_score == Score::kFinal && !(r.final_accuracy >= 0 && r.final_accuracy <= 1))
        throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                           "--score final needs each run's final_accuracy in [0, 1] (bench/fixed_fill_runs.py "
                           "writes it; rerun the runs made before it did)");
      runs[{j.at("task").get<std::string>(), j.at("budget").get<double>()}].push_back(r);
    } catch (const nlohmann::json::exception& e) {
      throw nasoa::Error(nasoa::ErrorCode::kCorrupt, where + ": " + e.what());
    } catch (const nasoa::Error& e) {
      throw nasoa::Error(e.code(), where + ": " + e.what());
    }
  }
  if (runs.empty()) throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument, path + ": no runs");
  return runs;
}

std::string bundle_file(const std::string& dir, const std::optional<nasoa::zoo::FileEntry>& entry, const char* what) {
  if (!entry) throw nasoa::Error(nasoa::ErrorCode::kNotFound, dir + ": the bundle ships no " + what);
  nasoa::zoo::verify_file(dir, *entry);
  return nasoa::zoo::read_file((fs::path(dir) / entry->path).string());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"adaption_bench: NASOA's plans against fixed choices, LogME, random search, BOHB and the oracle"};
  std::string zoo, profile_path, tasks_dir, out, fill_path, list_missing, list_search_missing;
  std::vector<std::string> zoo_tables, baselines_tables, nasoa_tables, search_tables;
  double space_cap = 20;
  std::vector<double> budgets{30, 60, 120, 300};
  int seeds = 20, probe_per_class = 20;
  double risk_aversion = 0;
  int members = 0;
  std::uint64_t predictor_seed = 1;
  app.add_option("--zoo", zoo, "The bundle (models, shipped experience and predictor)")->required();
  app.add_option("--table", zoo_tables,
                 "Experience log(s) of the zoo's grid on the evaluation tasks, one per seed (averaged)")
      ->required();
  app.add_option("--baselines", baselines_tables,
                 "Experience log(s) of the hand-designed networks on the same tasks, one per seed (averaged)")
      ->required();
  app.add_option("--profile", profile_path, "Device profile of the bundle on this machine (nasoa-profile)")->required();
  app.add_option("--tasks", tasks_dir, "The evaluation task folders (for the LogME probe)")->required();
  app.add_option("--budgets", budgets, "Time budgets in seconds")->delimiter(',')->capture_default_str();
  app.add_option("--seeds", seeds, "Seeds of random search and BOHB")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--risk-aversion", risk_aversion, "NASOA's k in score = mean - k * std (PlannerOptions::risk_aversion)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--members", members, "Refit the shipped predictor with this many ensemble members (0: as shipped)");
  app.add_option("--predictor-seed", predictor_seed, "Seed of that refit")->capture_default_str();
  app.add_option("--nasoa-runs", nasoa_tables,
                 "Experience log(s) of NASOA's plans outside the zoo grid on the same tasks, one per seed in the "
                 "order of --table (nasoa-gather --models; the bench names the runs it lacks)");
  app.add_option("--list-missing", list_missing,
                 "Write NASOA's plans that no table or --nasoa-runs log holds here (a line each: task model lr "
                 "frozen epochs) and exit");
  app.add_option("--search-runs", search_tables,
                 "Experience log(s) of the plans past the zoo grid that BOHB past the grid's epochs runs or "
                 "hands back, one per seed in the order of --table (--list-search-missing names the runs it lacks)");
  app.add_option("--list-search-missing", list_search_missing,
                 "Write the plans that BOHB past the grid's epochs lacks runs of here (lines as "
                 "--list-missing's) and exit");
  app.add_option("--space-cap", space_cap,
                 "How long BOHB past the grid's epochs may search, as a multiple of NASOA's device time")
      ->check(CLI::Range(1.0, 1000.0))
      ->capture_default_str();
  app.add_option("--fixed-fill", fill_path,
                 "Real runs of the fixed default with the epochs that fill each budget (bench/fixed_fill_runs.py)");
  app.add_option("--out", out, "Also write the tables as Markdown here");
  std::string score = "best";
  app.add_option("--score", score,
                 "How a run is scored: best (its best epoch's validation accuracy, what the predictor learns) or "
                 "final (its last epoch's, which no choice among epochs flatters, close to what the runtime hands "
                 "back); final leaves out the predictor "
                 "and BOHB-past-the-grid sections, which are about best")
      ->check(CLI::IsMember({"best", "final"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  g_score = score == "final" ? Score::kFinal : Score::kBest;
  if (g_score == Score::kFinal && (!list_missing.empty() || !list_search_missing.empty())) {
    std::cerr << "adaption_bench: --score final reads the runs the best-epoch bench gathered; list them without it\n";
    return 2;
  }

  try {
    torch::set_num_threads(1);
    const nasoa::zoo::Manifest manifest = nasoa::zoo::open_bundle(zoo);
    const rt::DeviceProfile profile = rt::load_device_profile(profile_path);
    const std::vector<Record> shipped_log =
        rt::parse_experience_log(bundle_file(zoo, manifest.experience, "experience"), zoo + "/experience").records;
    rt::Predictor shipped = rt::Predictor::from_json(bundle_file(zoo, manifest.predictor, "predictor"), zoo);
    if (members > 0) {
      rt::PredictorOptions po = shipped.options();
      po.members = members;
      po.seed = predictor_seed;
      shipped = rt::Predictor::fit(shipped_log, {}, po);
    }
    // Under --score final every run is scored by its last evaluated epoch,
    // the averaged runs by their averaged last epoch, before anything chooses.
    // A plan's averaged run takes the mean of its runs' last epochs (its
    // averaged history may hold an epoch one run did not evaluate).
    const auto rescored = [](Tables tables) {
      if (g_score == Score::kFinal) {
        for (std::size_t i = 0; i < tables.mean.size(); ++i) {
          double sum = 0;
          for (std::vector<Record>& seed : tables.seeds) {
            if (i >= seed.size() || !(key_of(seed[i].regime) == key_of(tables.mean[i].regime)) ||
                seed[i].task_id != tables.mean[i].task_id)
              throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                                 "the tables' runs are not in the same order as their mean (run " +
                                     tables.mean[i].run_id + ")");
            seed[i].best_accuracy = std::max(0.0, last_epoch_accuracy(seed[i]));
            sum += seed[i].best_accuracy;
          }
          tables.mean[i].best_accuracy = sum / double(tables.seeds.size());
        }
      }
      return tables;
    };
    const Tables zoo_all = rescored(read_tables(zoo_tables)), baselines_all = rescored(read_tables(baselines_tables));
    const auto read_past_grid = [&](const std::vector<std::string>& paths, const std::string& option) {
      if (!paths.empty() && paths.size() != zoo_all.seeds.size())
        throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                           "give as many " + option + " logs as zoo tables (one per gathering seed, in their order): " +
                               std::to_string(paths.size()) + " and " + std::to_string(zoo_all.seeds.size()));
      // Logs may be empty (no run past the grid gathered yet, see the
      // listing options) or hold a plan in some of them only (an interrupted
      // gathering): such a plan counts as missing.
      Tables all = rescored(!paths.empty() ? read_tables(paths, /*common_only=*/true) : Tables{});
      // Each log must be of its table's seed, or a held-out outcome would
      // pair runs of different splits.
      for (std::size_t s = 0; s < all.seeds.size(); ++s)
        for (const Record& r : all.seeds[s])
          if (r.regime.seed != zoo_all.seeds[s].front().regime.seed)
            throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                               paths[s] + ": run " + r.run_id + " has seed " + std::to_string(r.regime.seed) +
                                   ", its table " + zoo_tables[s] + " seed " +
                                   std::to_string(zoo_all.seeds[s].front().regime.seed) +
                                   " (give the logs in the order of --table)");
      return all;
    };
    const Tables nasoa_all = read_past_grid(nasoa_tables, "--nasoa-runs");
    const Tables search_all = read_past_grid(search_tables, "--search-runs");
    const std::vector<Record>& zoo_records = zoo_all.mean;
    const std::vector<Record>& baseline_records = baselines_all.mean;
    if (zoo_all.seeds.size() != baselines_all.seeds.size())
      throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                         "give as many baseline tables as zoo tables (one per gathering seed): " +
                             std::to_string(baselines_all.seeds.size()) + " and " +
                             std::to_string(zoo_all.seeds.size()));
    const std::string& zoo_table = zoo_tables.front();

    Setup setup;
    setup.profile = &profile;
    for (const nasoa::ModelInfo& m : manifest.models) setup.models.push_back(rt::describe_model(m));
    // The planner's grid is the table's, and the table's regime its base.
    std::set<double> lrs;
    std::set<int> frozen, epochs, batches;
    for (const Record& r : zoo_records)
      lrs.insert(r.regime.learning_rate), frozen.insert(r.regime.frozen_stages), epochs.insert(r.regime.epochs),
          batches.insert(r.regime.batch_size);
    setup.planner.base = zoo_records.front().regime;
    setup.planner.grid.learning_rates.assign(lrs.begin(), lrs.end());
    setup.planner.grid.frozen_stages.assign(frozen.begin(), frozen.end());
    setup.planner.grid.epochs.assign(epochs.begin(), epochs.end());
    setup.planner.grid.batch_sizes.assign(batches.begin(), batches.end());
    setup.planner.grid.fill_budget = false;
    setup.planner.risk_aversion = risk_aversion;
    // NASOA plans as the runtime does: every learning rate, frozen count and
    // epoch step of nasoa::Adapter's grid, filling the budget between steps,
    // each model no further than its own runs (its plans off the tables are
    // read off --nasoa-runs); the other methods keep to the tables' grid.
    const rt::ExperienceSummary summary = rt::summarize_experience(shipped_log);
    rt::PlanGrid runtime_grid;
    runtime_grid.batch_sizes.assign(batches.begin(), batches.end());
    setup.nasoa_grid = rt::grid_with_evidence(runtime_grid, summary, setup.models);
    std::set<int> rungs = epochs;
    for (const Record& r : shipped_log)
      if (r.best_accuracy >= 0 && r.regime.epochs <= setup.nasoa_grid.epochs.back()) rungs.insert(r.regime.epochs);
    setup.space_epochs.assign(rungs.begin(), rungs.end());

    std::map<std::string, Task> tasks;
    for (const Record& r : zoo_records) {
      Task& t = tasks[r.task_id];
      t.name = r.task_id;
      t.meta = r.task;
      t.train_images = r.train_images;
      t.validation_images = std::int64_t(r.task.images) - r.train_images;
      t.zoo[key_of(r.regime)] = &r;
      t.zoo_runs.push_back(&r);
    }
    std::set<std::string> baseline_names;
    for (const Record& r : baseline_records) {
      if (!tasks.count(r.task_id)) continue;
      tasks[r.task_id].baselines[key_of(r.regime)] = &r;
      baseline_names.insert(r.regime.model);
    }
    const std::size_t table_count = zoo_all.seeds.size();
    for (auto& [name, t] : tasks) {
      t.zoo_seed.resize(table_count);
      t.zoo_runs_seed.resize(table_count);
      t.baselines_seed.resize(table_count);
    }
    for (std::size_t s = 0; s < table_count; ++s) {
      for (const Record& r : zoo_all.seeds[s]) {
        Task& t = tasks.at(r.task_id);
        t.zoo_seed[s][key_of(r.regime)] = &r;
        t.zoo_runs_seed[s].push_back(&r);
      }
      for (const Record& r : baselines_all.seeds[s])
        if (tasks.count(r.task_id)) tasks.at(r.task_id).baselines_seed[s][key_of(r.regime)] = &r;
    }
    // Every task must have the whole grid, or the oracle and the methods would
    // compare different spaces.
    const std::size_t grid_size = setup.models.size() * lrs.size() * frozen.size() * epochs.size();
    for (const auto& [name, t] : tasks)
      if (t.zoo.size() != grid_size)
        throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument, zoo_table + ": task " + name + " has " +
                                                                   std::to_string(t.zoo.size()) + " of the grid's " +
                                                                   std::to_string(grid_size) + " plans");

    // A plan that both kinds of log hold is read off NASOA's runs.
    for (const Tables* past_grid : {&nasoa_all, &search_all}) {
      for (std::size_t s = 0; s < past_grid->seeds.size(); ++s)
        for (const Record& r : past_grid->seeds[s])
          if (tasks.count(r.task_id)) {
            Task& t = tasks.at(r.task_id);
            t.extra_seed.resize(table_count);
            t.extra_seed[s].emplace(key_of(r.regime), &r);
          }
      for (const Record& r : past_grid->mean)
        if (tasks.count(r.task_id)) tasks.at(r.task_id).extra.emplace(key_of(r.regime), &r);
    }
    // NASOA's plans must all have runs: say which are missing before the
    // LogME probing and the searches.
    std::set<std::pair<std::string, PlanKey>> missing;
    for (double budget : budgets)
      for (const auto& [name, t] : tasks) {
        try {
          nasoa_method(setup, t, budget, shipped);
        } catch (const MissingRun& m) {
          missing.insert({m.task, m.plan});
        }
      }
    // With --list-missing, the plans NASOA's stream chooses too (below): each
    // depends on the outcomes before it, so a list may take a few rounds.
    const auto write_missing = [&] {
      std::ostringstream lines;
      for (const auto& [task, k] : missing)
        lines << task << " " << k.model << " " << nasoa::zoo::round_trip_number(k.lr) << " " << k.frozen << " " << k.epochs << "\n";
      nasoa::zoo::write_file_atomic(list_missing, lines.str());
      std::cout << missing.size() << " of NASOA's plans lack runs; listed in " << list_missing << "\n";
      return 0;
    };
    if (!list_missing.empty() && !missing.empty()) return write_missing();
    const auto how_to_gather = [&](const char* option) {
      std::cerr << "gather them on the same tasks with each table's seed (nasoa-gather --zoo " << zoo
                << " --tasks DIR --models M --lrs LR --frozen F --epochs E --batch "
                << setup.planner.base.batch_size << " --seed S --log LOG) and pass the logs as " << option << "\n";
    };
    if (!missing.empty()) {
      std::cerr << "adaption_bench: NASOA plans " << missing.size() << " run(s) outside the zoo grid that no "
                << "--nasoa-runs log holds:\n";
      for (const auto& [task, k] : missing) std::cerr << "  " << task << ": " << plan_text(k) << "\n";
      how_to_gather("--nasoa-runs");
      return 2;
    }

    // BOHB past the grid's epochs, at the first budget: each search
    // stops at the first run past the grid that no log holds, so listing
    // what it lacks takes a round per run it needs.
    const double space_budget = budgets.front();
    const std::vector<int>& space_epochs = setup.space_epochs;
    const bool space_measured = g_score == Score::kBest && (!search_tables.empty() || !list_search_missing.empty());
    std::map<std::string, Result> space_nasoa;
    std::map<std::string, std::vector<double>> space_found;  // complete when nothing lacks
    if (space_measured) {
      std::set<std::pair<std::string, PlanKey>> lacking;
      for (const auto& [name, t] : tasks) {
        space_nasoa[name] = nasoa_method(setup, t, space_budget, shipped);
        space_found[name] = space_multiples(t, space_nasoa[name], space_budget, space_epochs, seeds, space_cap, lacking);
      }
      if (!list_search_missing.empty()) {
        std::ostringstream lines;
        for (const auto& [task, k] : lacking)
          lines << task << " " << k.model << " " << nasoa::zoo::round_trip_number(k.lr) << " " << k.frozen << " "
                << k.epochs << "\n";
        nasoa::zoo::write_file_atomic(list_search_missing, lines.str());
        std::cout << lacking.size() << " plans of BOHB past the grid's epochs lack runs; listed in "
                  << list_search_missing << "\n";
        return 0;
      }
      if (!lacking.empty()) {
        std::cerr << "adaption_bench: BOHB past the grid's epochs needs " << lacking.size()
                  << " run(s) outside the zoo grid that no --search-runs log holds:\n";
        for (const auto& [task, k] : lacking) std::cerr << "  " << task << ": " << plan_text(k) << "\n";
        how_to_gather("--search-runs");
        return 2;
      }
    }

    // The LogME probe, run here for real: its score and time per model.
    const int cores = nasoa::zoo::usable_cores();
    for (auto& [name, t] : tasks) {
      rt::IngestOptions ingest;
      ingest.side = manifest.models.front().input_size;
      rt::ImageStore store(rt::list_folder((fs::path(tasks_dir) / name).string()), ingest);
      // The split the table's fine-tunes used (nasoa-gather: the regime's fraction and seed).
      const nasoa::Regime& regime = zoo_records.front().regime;
      const rt::Split split = rt::stratified_split(store.labels(), regime.validation_fraction, regime.seed);
      const std::vector<std::size_t> sample = rt::probe_sample(store, split.train, probe_per_class);
      for (const nasoa::ModelInfo& m : manifest.models) {
        const auto t0 = Clock::now();
        nasoa::zoo::Network net = nasoa::zoo::load_network(zoo, m);
        t.logme[m.name] = rt::logme_probe(*net, store, sample, m.mean, m.std, std::max(1, cores / 4));
        t.logme_seconds[m.name] = seconds_since(t0);
      }
    }

    // The tables go to standard output, and to --out when given.
    const auto publish = [&](const std::string& tables) {
      std::cout << tables;
      if (!out.empty()) std::ofstream(out) << tables;
    };
    std::ostringstream o;
    o << "Machine: " << nasoa::bench::cpu_model() << ", " << cores << " logical CPUs; device profile threads "
      << profile.device.threads << ". Tables: " << zoo_records.size() << " zoo runs (" << setup.models.size()
      << " models x " << lrs.size() << " lr x " << frozen.size() << " frozen x " << epochs.size()
      << " epochs, batch " << *batches.begin() << ", on " << tasks.size() << " tasks) and " << baseline_records.size()
      << " baseline runs";
    if (zoo_tables.size() > 1 || baselines_tables.size() > 1)
      o << ", each plan's runs averaged over " << zoo_tables.size() << " (zoo) and " << baselines_tables.size()
        << " (baselines) gathering seeds";
    o << ". Random search and BOHB: mean of " << seeds << " seeds";
    if (table_count > 1)
      o << ". The oracle, random search, BOHB and the baselines' best regimes choose on one seed's tables and are "
           "reported on the other's (each in turn, averaged); NASOA, fixed and LogME are reported on both";
    o << ".\n\n";
    if (g_score == Score::kFinal)
      o << "**Scored by each run's last epoch** (--score final): a run's validation accuracy after its last "
           "evaluated epoch (cut by the budget: the last epoch that ended in time), not the best of its epochs, "
           "which is picked on the split it is reported on and flatters long runs. The runtime hands back the "
           "latest epoch within one standard error of the best (since 0.3.4; the best before), in the plans' "
           "runs the last or nearly so: these figures are close to what it hands back.\n\n";

    // 1. The adaption table.
    std::vector<std::string> methods{"oracle", "nasoa", "fixed", "logme", "random", "bohb"};
    std::map<std::string, std::map<double, std::vector<double>>> acc;  // method -> budget -> per task
    // (a) for real: the fixed default with the epochs that fill the budget,
    // beyond the grid's most. Its seeds' runs are averaged, like NASOA's.
    const std::string kFill = "fixed, filling the budget";
    std::map<double, std::pair<double, int>> fill_epochs;  // budget -> (mean epochs run, runs cut by the budget)
    if (!fill_path.empty()) {
      const FillRuns fill = read_fill_runs(fill_path);
      methods.insert(methods.begin() + 3, kFill);
      for (double budget : budgets) {
        std::vector<double> epochs_run;
        int cut = 0;
        for (const auto& [name, t] : tasks) {
          const auto it = fill.find({name, budget});
          if (it == fill.end())
            throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                               fill_path + ": no run of task " + name + " at " + fmt("%g", budget) + " s");
          if (it->second.size() != table_count)
            throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                               fill_path + ": " + std::to_string(it->second.size()) + " runs of task " + name +
                                   " at " + fmt("%g", budget) + " s; expected one per table (" +
                                   std::to_string(table_count) + ")");
          std::vector<double> a;
          for (const FillRun& r : it->second) {
            a.push_back(g_score == Score::kFinal ? r.final_accuracy : r.best_accuracy);
            epochs_run.push_back(r.epochs_run);
            cut += r.cut_by_budget;
          }
          acc[kFill][budget].push_back(mean(a));
        }
        fill_epochs[budget] = {mean(epochs_run), cut};
      }
    }
    for (const std::string& b : baseline_names) methods.push_back(b);
    std::map<double, std::vector<double>> planning_share, nasoa_seconds;
    // Device time to match / NASOA's, per seed (kNever: never matched).
    std::map<double, std::vector<std::vector<double>>> bohb_match, random_match;
    std::map<double, std::vector<std::string>> choices;
    for (double budget : budgets) {
      // (b) each baseline's best fixed regime: the (lr, frozen, epochs) with the
      // best mean over the tasks under this budget, chosen on one table and
      // reported on the others.
      for (const std::string& b : baseline_names) {
        std::vector<double> reported(tasks.size(), 0.0);
        for (std::size_t s = 0; s < table_count; ++s) {
          std::map<PlanKey, std::vector<double>> by_regime;
          for (const auto& [name, t] : tasks)
            for (const auto& [k, r] : t.baselines_seed[s])
              if (k.model == b) by_regime[k].push_back(run_within(*r, budget).accuracy);
          double best_mean = -1;
          std::optional<PlanKey> best;
          for (const auto& [k, v] : by_regime)
            if (v.size() == tasks.size() && mean(v) > best_mean) best_mean = mean(v), best = k;
          if (!best) continue;
          std::size_t i = 0;
          for (const auto& [name, t] : tasks) reported[i++] += held_out(t, *best, budget, s, true) / double(table_count);
        }
        acc[b][budget] = reported;
      }
      for (const auto& [name, t] : tasks) {
        acc["oracle"][budget].push_back(oracle(t, budget));
        const Result n = nasoa_method(setup, t, budget, shipped);
        acc["nasoa"][budget].push_back(n.outcome.accuracy);
        planning_share[budget].push_back(n.overhead_seconds / budget);
        nasoa_seconds[budget].push_back(n.outcome.seconds + n.overhead_seconds);
        choices[budget].push_back(name + ": " + n.chosen.model + " lr " + fmt("%g", n.chosen.lr) + " frozen " +
                                  std::to_string(n.chosen.frozen) + " x" + std::to_string(n.chosen.epochs) +
                                  (t.zoo.count(n.chosen) ? "" : " (off the grid)"));
        acc["fixed"][budget].push_back(fixed_default(setup, t, budget, setup.models).outcome.accuracy);
        acc["logme"][budget].push_back(logme_method(setup, t, budget).outcome.accuracy);
        std::vector<double> rs, bo, rs_t, bo_t;
        const double cap = 1e5;
        // A search that ends (every plan of the grid run) without matching
        // never does.
        for (std::size_t table = 0; table < table_count; ++table) {
          // The searches see this table; what they hand back is read off the others.
          const Task view = seed_view(t, table);
          // NASOA's device time on the table the search's time comes from
          // (its run there, and its planning): tables gathered on different
          // days differ by about 10 % in speed.
          const Record* nasoa_run = find_run(view.zoo, view.extra, n.chosen);
          if (!nasoa_run) throw MissingRun{t.name, n.chosen};
          const double nasoa_time =
              run_within(*nasoa_run, budget - n.overhead_seconds).seconds + n.overhead_seconds;
          const DeviceClock::Report report = [&t, table](const PlanKey& k, double given) {
            return held_out(t, k, given, table);
          };
          // Paired: NASOA's plan read off the same held-out runs. Against
          // its mean over all tables, a search whose hand-back is NASOA's
          // own plan would match or not by the luck of one run.
          const double target = held_out(t, n.chosen, budget - n.overhead_seconds, table);
          for (int s = 0; s < seeds; ++s) {
            rs.push_back(random_search(view, budget, kNoTarget, std::uint64_t(s + 1), report).accuracy);
            bo.push_back(
                Bohb(view, setup.planner.grid.epochs, std::uint64_t(s + 1)).run(budget, kNoTarget, report).accuracy);
            const auto multiple = [&](const Outcome& o) {
              return o.accuracy >= target ? o.seconds / nasoa_time : kNever;
            };
            rs_t.push_back(multiple(random_search(view, cap, target, std::uint64_t(s + 1), report)));
            bo_t.push_back(
                multiple(Bohb(view, setup.planner.grid.epochs, std::uint64_t(s + 1)).run(cap, target, report)));
          }
        }
        acc["random"][budget].push_back(mean(rs));
        acc["bohb"][budget].push_back(mean(bo));
        random_match[budget].push_back(rs_t);
        bohb_match[budget].push_back(bo_t);
      }
    }
    o << "## Mean validation accuracy over the " << tasks.size() << " evaluation tasks (regret against the oracle)\n\n";
    o << "| method |";
    for (double b : budgets) o << " " << fmt("%g", b) << " s |";
    o << " mean regret |\n|---|";
    for (std::size_t i = 0; i <= budgets.size(); ++i) o << "---:|";
    o << "\n";
    std::map<double, double> best_fixed;
    for (const std::string& m : methods) {
      o << "| " << m << " |";
      std::vector<double> regrets;
      for (double b : budgets) {
        const double a = mean(acc[m][b]), r = mean(acc["oracle"][b]) - a;
        regrets.push_back(r);
        o << " " << pct(a) << " % (" << pct(r) << ") |";
        if (m == "fixed" || m == kFill || baseline_names.count(m)) best_fixed[b] = std::max(best_fixed[b], a);
      }
      o << " " << pct(mean(regrets)) << " pp |\n";
    }
    if (!fill_epochs.empty()) {
      o << "\n\"" << kFill << "\": real runs of the fixed default with the epochs that fill the budget by the "
           "table's own epoch time (mean epochs run; runs stopped by the budget guard):";
      for (double b : budgets)
        o << " " << fmt("%g", b) << " s: " << fmt("%.0f", fill_epochs[b].first) << " (" << fill_epochs[b].second
          << " cut);";
      o << "\n";
    }
    o << "\nNASOA minus the best fixed choice (fixed" << (fill_epochs.empty() ? "" : ", filling the budget or not")
      << ", or a baseline network with its best regime):";
    for (double b : budgets) o << " " << fmt("%g", b) << " s: " << fmt("%+.1f", 100 * (mean(acc["nasoa"][b]) - best_fixed[b])) << " pp;";
    o << "\nPlanning time as a share of the budget, largest:";
    for (double b : budgets)
      o << " " << fmt("%g", b) << " s: " << fmt("%.3f", 100 * *std::max_element(planning_share[b].begin(), planning_share[b].end())) << " %;";
    o << "\n\nNASOA's plans (\"off the grid\": a frozen count or epoch count the tables do not hold, read off "
         "--nasoa-runs; the oracle, random search and BOHB search the grid only):\n\n";
    for (double b : budgets) {
      o << "- " << fmt("%g", b) << " s:";
      for (const std::string& c : choices[b]) o << " " << c << ";";
      o << " device time " << fmt("%.1f", mean(nasoa_seconds[b])) << " s on average\n";
    }
    // A median over seeds; "never" when at least half never matched (with an
    // even count and exactly half, the middle pair holds a never). The count
    // of seeds that never did follows.
    const auto shown_multiple = [&](const std::vector<double>& v) {
      const double m = nasoa::bench::median(v);
      const auto never = std::count(v.begin(), v.end(), kNever);
      return (m >= kNever ? std::string("never") : fmt("%.1f", m) + "x") +
             (never ? " (" + std::to_string(never) + "/" + std::to_string(v.size()) + " never)" : std::string());
    };
    o << "\n## Device time to reach NASOA's held-out accuracy, as a multiple of NASOA's device time (median over "
         "seeds and tables, per task)\n\n"
      << "A search matches when the plan it would hand back (its best on the table it sees) reaches, on the other "
         "table, what NASOA's plan reaches on that table (the column shows NASOA's mean over the tables). It runs each "
         "plan of the grid at most once, so it can end without matching.\n\n"
      << "| budget | task | NASOA's accuracy | NASOA's device time | BOHB | random search |\n|---|---|---:|---:|---:|---:|\n";
    std::map<std::string, std::vector<double>> per_task_bohb;
    for (double b : budgets) {
      std::size_t i = 0;
      for (const auto& [name, t] : tasks) {
        o << "| " << fmt("%g", b) << " s | " << name << " | " << pct(acc["nasoa"][b][i]) << " % | "
          << fmt("%.1f", nasoa_seconds[b][i]) << " s | " << shown_multiple(bohb_match[b][i]) << " | "
          << shown_multiple(random_match[b][i]) << " |\n";
        if (b == budgets.front()) per_task_bohb[name] = bohb_match[b][i];
        ++i;
      }
    }
    std::vector<double> all_bohb;
    for (const auto& [name, v] : per_task_bohb) all_bohb.insert(all_bohb.end(), v.begin(), v.end());
    o << "\nBOHB's multiple at the first budget, median over tasks, seeds and tables: " << shown_multiple(all_bohb)
      << ".\n";
    if (space_measured) {
      o << "\n## BOHB past the grid's epochs, at " << fmt("%g", space_budget) << " s\n\n"
        << "Above, the searches keep to the tables' grid, which stops at " << *epochs.rbegin()
        << " epochs while NASOA's plans go further, so a search can end without matching. Here BOHB searches the "
           "tables' models, learning rates and frozen counts for as many epochs as NASOA may plan (no model "
           "capped at its experience), with Hyperband's rungs at ";
      for (std::size_t i = 0; i < space_epochs.size(); ++i) o << (i ? ", " : "") << space_epochs[i];
      o << " epochs. Its runs past the grid are real runs on the task with each table's seed, gathered when a search "
           "first ran one or handed it back (--search-runs). Each search may spend up to "
        << fmt("%g", space_cap)
        << " times NASOA's fine-tuning time; a run that cannot finish in the time left ends it. It matches as "
           "above.\n\n"
        << "| task | NASOA's accuracy | NASOA's fine-tuning time | BOHB: median multiple | searches matched within "
        << fmt("%g", space_cap) << "x |\n|---|---:|---:|---:|---:|\n";
      std::vector<double> all;
      const auto shown = [&](const std::vector<double>& v) {
        const double m = nasoa::bench::median(v);
        return m >= kNever ? "over " + fmt("%g", space_cap) + "x" : fmt("%.1f", m) + "x";
      };
      const auto matched = [](const std::vector<double>& v) {
        return std::to_string(std::count_if(v.begin(), v.end(), [](double x) { return x < kNever; })) + "/" +
               std::to_string(v.size());
      };
      for (const auto& [name, t] : tasks) {
        const Result& n = space_nasoa.at(name);
        const std::vector<double>& v = space_found.at(name);
        all.insert(all.end(), v.begin(), v.end());
        o << "| " << name << " | " << pct(n.outcome.accuracy) << " % | " << fmt("%.1f", n.outcome.seconds) << " s | "
          << shown(v) << " | " << matched(v) << " |\n";
      }
      std::size_t runs = 0;
      double seconds = 0;
      for (const Record& r : search_all.mean) ++runs, seconds += r.total_seconds;
      o << "\nBOHB's multiple past the grid's epochs, median over tasks, seeds and tables: " << shown(all) << " ("
        << matched(all) << " matched). The logs of runs past the grid for these searches (--search-runs, of every "
           "budget and version of NASOA's target they were gathered for): " << runs << " plans, "
        << fmt("%.0f", seconds * double(search_all.seeds.size())) << " s of fine-tuning over "
        << search_all.seeds.size() << " seeds.\n";
    }

    if (g_score == Score::kFinal) {
      o << "\nThe predictor's quality and the stream are measured against the best epoch the predictor predicts "
           "(the runtime's target): see the bench without --score final.\n";
      publish(o.str());
      return 0;
    }

    // 2. The shipped predictor on the evaluation tasks (held out: gathered on the source tasks only).
    o << "\n## The shipped predictor on the evaluation tasks (none in its experience)\n\n"
      << "| task | runs | MAE | Spearman | regret of its top plan |\n|---|---:|---:|---:|---:|\n";
    std::vector<double> maes, rhos, regrets;
    for (const auto& [name, t] : tasks) {
      std::vector<rt::FeatureVector> x;
      std::vector<double> y, p;
      for (const Record* r : t.zoo_runs) {
        rt::FeatureVector v = rt::make_features(*r);
        v[rt::kProbeScore] = std::numeric_limits<double>::quiet_NaN();  // planning runs no probe by default
        x.push_back(v);
        y.push_back(r->best_accuracy);
      }
      for (const rt::Prediction& q : shipped.predict(x)) p.push_back(q.mean);
      double mae = 0;
      for (std::size_t i = 0; i < y.size(); ++i) mae += std::abs(p[i] - y[i]) / double(y.size());
      const double rho = nasoa::bench::spearman(p, y);
      // The regret of its top plan against the oracle's, the oracle choosing
      // on one table and reported on the other (the best of many noisy means
      // is above what its plan reaches), and plans the predictor ties on
      // averaged (not the first in table order).
      const double top = *std::max_element(p.begin(), p.end());
      double regret = 0;
      for (std::size_t table = 0; table < t.zoo_seed.size(); ++table) {
        double tied = 0;
        int ties = 0;
        for (std::size_t i = 0; i < p.size(); ++i)
          if (p[i] == top) tied += held_out(t, key_of(t.zoo_runs[i]->regime), kNoBudget, table), ++ties;
        regret += (oracle_on(t, kNoBudget, table) - tied / ties) / double(t.zoo_seed.size());
      }
      maes.push_back(mae), rhos.push_back(rho), regrets.push_back(regret);
      o << "| " << name << " | " << y.size() << " | " << fmt("%.3f", mae) << " | " << fmt("%.3f", rho) << " | "
        << pct(regret) << " pp |\n";
    }
    o << "| **mean** | | " << fmt("%.3f", mean(maes)) << " | " << fmt("%.3f", mean(rhos)) << " | " << pct(mean(regrets))
      << " pp |\n";

    // 3. A stream: every budget in turn, every task in turn. Two learners
    // take each outcome as device experience: one calibrates the shipped
    // predictor to it (Predictor::calibrate, what nasoa::Adapter::record
    // does), one refits on shipped + device records (Predictor::update).
    o << "\n## A stream of adaptions (each budget in turn, each task in turn)\n\n"
      << "Regret against the oracle, and the error of the chosen plan's predicted accuracy, in points. A learner "
         "takes in the chosen plan's outcome as the tables' mean; a plan chosen again on a later visit is scored "
         "on the outcome it already learned from.\n\n"
      << "| step | budget | task | shipped only: regret | error | calibrated (as shipped): regret | error | "
         "refitted: regret | error |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|\n";
    struct Learner {
      rt::Predictor predictor;
      std::vector<Record> device;
      std::vector<double> regret, error, seconds;
      bool stopped = false;  // listing: its plan had no run, so what follows is unknown
    };
    Learner fixed{shipped, {}, {}, {}, {}, false}, calibrated{shipped, {}, {}, {}, {}, false},
        refitted{shipped, {}, {}, {}, {}, false};
    int step = 0;
    for (double b : budgets)
      for (const auto& [name, t] : tasks) {
        const double best = oracle(t, b);
        o << "| " << ++step << " | " << fmt("%g", b) << " s | " << name << " |";
        for (Learner* l : {&fixed, &calibrated, &refitted}) {
          if (l->stopped) continue;
          Result r;
          try {
            r = nasoa_method(setup, t, b, l->predictor);
          } catch (const MissingRun& m) {
            if (list_missing.empty()) throw;
            missing.insert({m.task, m.plan});
            l->stopped = true;
            continue;
          }
          const Record& ran = *find_run(t.zoo, t.extra, r.chosen);
          l->regret.push_back(best - r.outcome.accuracy);
          // As planned and as a device records it: no probe ran.
          rt::FeatureVector x = rt::make_features(ran);
          x[rt::kProbeScore] = std::numeric_limits<double>::quiet_NaN();
          l->error.push_back(std::abs(l->predictor.predict(x).mean - ran.best_accuracy));
          o << " " << pct(l->regret.back()) << " | " << pct(l->error.back()) << " |";
          if (l == &fixed) continue;
          Record d = ran;
          d.probe_score.reset();
          d.source = rt::ExperienceSource::kDevice;
          d.run_id = "stream-" + std::to_string(step);
          l->device.push_back(d);
          const auto t0 = Clock::now();
          if (l == &calibrated)
            l->predictor.calibrate(l->device);
          else
            l->predictor.update(shipped_log, l->device);
          l->seconds.push_back(seconds_since(t0));
        }
        o << "\n";
      }
    o << "| **mean** | | |";
    for (const Learner* l : {&fixed, &calibrated, &refitted}) o << " " << pct(mean(l->regret)) << " | " << pct(mean(l->error)) << " |";
    o << "\n\nLearning from one outcome, median: calibration " << fmt("%.4f", nasoa::bench::median(calibrated.seconds))
      << " s, refit " << fmt("%.3f", nasoa::bench::median(refitted.seconds)) << " s.\n";

    if (!list_missing.empty()) return write_missing();
    publish(o.str());
    return 0;
  } catch (const MissingRun& m) {
    std::cerr << "adaption_bench: error: a run no table or log of runs past the grid holds: " << m.task << ": "
              << plan_text(m.plan) << " (--list-missing and --list-search-missing name them)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "adaption_bench: error: " << e.what() << "\n";
    return 1;
  }
}
