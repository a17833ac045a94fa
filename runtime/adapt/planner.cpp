#include "runtime/adapt/planner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "nasoa/error.h"
#include "runtime/adapt/experience_coverage.h"
#include "runtime/adapt/regime_json.h"
#include "runtime/data/batching.h"
#include "runtime/train/finishing_costs.h"

namespace nasoa::runtime {
namespace {

using Json = nlohmann::ordered_json;
constexpr double kInf = std::numeric_limits<double>::infinity();

[[noreturn]] void invalid(const std::string& what) { throw Error(ErrorCode::kInvalidArgument, what); }

std::string fmt(const char* format, double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}
// Rounded up, so that "at least X" is never below what is needed.
// The smallest budget written with `decimals` decimals whose usable part
// (the budget less the safety margin, `keep` of it) holds `need`: rounded
// up, then raised a step where floating-point rounding would leave the
// quoted budget a hair short of the very plan it names. (Memory caps are
// whole MiB, and their usable part is truncated to whole bytes: a byte more
// is asked for.)
std::string least_budget(double need, double keep, int decimals, double unit = 1.0) {
  const double step = std::pow(10.0, -decimals);
  double v = std::ceil(need / keep / unit / step) * step;
  while (v * unit * keep < need) v += step;
  return fmt(("%." + std::to_string(decimals) + "f").c_str(), v);
}
std::string mib(double bytes) { return fmt("%.1f", bytes / (1024.0 * 1024.0)); }

// One model x batch x frozen count, whatever the learning rate: what an
// epoch costs and what the profile knows of power and memory.
struct Config {
  std::size_t model = 0;
  int batch = 0, frozen = 0;
  double train_epoch = 0, eval_epoch = 0;
  // Saving the model and the slack the fine-tuner keeps, and one
  // checkpoint, by the model's size (finishing_costs.h).
  double finishing = 0, checkpoint = 0;
  std::optional<double> watts;
  std::optional<std::int64_t> memory;
  int epoch_cap = 0;             // the most epochs planned for it
  std::string epoch_cap_reason;  // what that cap stands for; empty: the grid's own
};

struct Costs {
  double spent_seconds = 0, spent_joules = 0;
  double startup = 0;
  double checkpoint_interval = 0;  // <= 0: no checkpoints
  double seconds(const Config& c, int epochs) const {
    const double run = epochs * (c.train_epoch + c.eval_epoch);
    return spent_seconds + startup + run + c.finishing +
           c.checkpoint * checkpoints_of_run(epochs, run, checkpoint_interval);
  }
  std::optional<double> joules(const Config& c, int epochs) const {
    if (!c.watts) return std::nullopt;
    return spent_joules + *c.watts * (seconds(c, epochs) - spent_seconds);
  }
};

struct Limits {
  double usable_seconds = 0;
  std::optional<double> usable_joules;
  std::optional<std::int64_t> memory;
  bool time_fits(const Costs& k, const Config& c, int e) const { return k.seconds(c, e) <= usable_seconds; }
  bool energy_fits(const Costs& k, const Config& c, int e) const {
    if (!usable_joules) return true;
    const auto j = k.joules(c, e);
    return j && *j <= *usable_joules;
  }
  bool memory_fits(const Config& c) const { return !memory || (c.memory && *c.memory <= *memory); }
  bool fits(const Costs& k, const Config& c, int e) const {
    return memory_fits(c) && time_fits(k, c, e) && energy_fits(k, c, e);
  }
};

struct Candidate {
  std::size_t config = 0, lr = 0;
  int epochs = 0, max_fit = 0;
  double seconds = 0;
  Prediction prediction;
  double score = 0;
};

const StepTiming* find_cell(const ModelProfile& m, int batch, int frozen) {
  for (const StepTiming& s : m.steps)
    if (s.batch_size == batch && s.frozen_stages == frozen) return &s;
  return nullptr;
}

std::string why(const PlannedRun& p, const Config& c, const Costs& k, const Limits& l) {
  const int epoch_cap = c.epoch_cap;
  const std::string& epoch_cap_reason = c.epoch_cap_reason;
  std::string text;
  const int e = p.regime.epochs;
  if (e < p.max_fitting_epochs) {
    text = "predicted best at " + std::to_string(e) + " of up to " + std::to_string(p.max_fitting_epochs) +
           " epochs that fit";
  } else if (e >= epoch_cap) {
    text = epoch_cap_reason.empty() ? "the grid's epoch cap (" + std::to_string(epoch_cap) + ")"
                                    : epoch_cap_reason + " (" + std::to_string(epoch_cap) + " epochs)";
  } else if (!l.time_fits(k, c, e + 1)) {
    text = "bound by time: " + std::to_string(e) + " epochs take " + fmt("%.1f", p.seconds) + " of " +
           fmt("%.1f", l.usable_seconds) + " usable s";
  } else if (!l.energy_fits(k, c, e + 1)) {
    text = "bound by energy: " + std::to_string(e) + " epochs take " + fmt("%.0f", p.joules.value_or(0)) + " of " +
           fmt("%.0f", l.usable_joules.value_or(0)) + " usable J";
  } else {
    text = "bound by the budget";
  }
  if (l.memory && p.memory_bytes)
    text += "; memory " + mib(double(*p.memory_bytes)) + " of " + mib(double(*l.memory)) + " MiB";
  return text;
}

Json plan_json(const PlannedRun& p) {
  Json j;
  j["model"] = p.regime.model;
  Json regime(detail::regime_json(p.regime));
  regime.erase("model");  // it heads the plan
  j["regime"] = std::move(regime);
  j["predicted_accuracy"] = p.predicted_accuracy;
  j["predicted_std"] = p.predicted_std;
  j["score"] = p.score;
  j["seconds"] = p.seconds;
  j["training_seconds"] = p.training_seconds;
  j["evaluation_seconds"] = p.evaluation_seconds;
  j["joules"] = p.joules ? Json(*p.joules) : Json(nullptr);
  j["memory_bytes"] = p.memory_bytes ? Json(*p.memory_bytes) : Json(nullptr);
  j["max_fitting_epochs"] = p.max_fitting_epochs;
  j["why"] = p.why;
  return j;
}

}  // namespace

double finishing_seconds(std::int64_t parameters) {
  return estimated_save_seconds(double(sizeof(float)) * double(parameters)) + kFinishingSlackSeconds;
}

double fixed_seconds(const PlanOverheads& overheads, std::int64_t parameters) {
  return overheads.startup_seconds + finishing_seconds(parameters);
}

Schedule generate_schedule(const TaskMeta& task, std::int64_t train_images, const PlannerBudget& budget,
                           const DeviceProfile& profile, const std::vector<ModelFeatures>& models,
                           const AccuracyPredictor& predictor, const PlannerOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const PlanGrid& grid = options.grid;
  const PlanOverheads& over = options.overheads;
  if (models.empty()) invalid("no models to plan for");
  if (train_images < 1) invalid("train_images " + std::to_string(train_images) + " is below 1");
  // Infinite seconds: no time limit, for a budget that an energy limit bounds.
  if (!(budget.seconds > 0) || (std::isinf(budget.seconds) && !budget.joules))
    invalid("budget seconds " + std::to_string(budget.seconds) +
            " is not a positive number (infinity, no time limit, only with a joule budget)");
  if (budget.joules && !(*budget.joules > 0)) invalid("budget joules " + std::to_string(*budget.joules) + " is not positive");
  if (budget.memory_bytes && *budget.memory_bytes <= 0)
    invalid("budget memory " + std::to_string(*budget.memory_bytes) + " bytes is not positive");
  if (grid.learning_rates.empty()) invalid("the plan grid has no learning rate");
  for (double lr : grid.learning_rates)
    if (!(lr > 0) || !std::isfinite(lr)) invalid("plan grid learning rate " + std::to_string(lr) + " is not positive");
  if (grid.epochs.empty()) invalid("the plan grid has no epoch count");
  for (int e : grid.epochs)
    if (e < 1) invalid("plan grid epoch count " + std::to_string(e) + " is below 1");
  for (int b : grid.batch_sizes)
    if (b < 1) invalid("plan grid batch size " + std::to_string(b) + " is below 1");
  for (int f : grid.frozen_stages)
    if (f < 0) invalid("plan grid frozen stage count " + std::to_string(f) + " is negative");
  for (const auto& [name, cap] : grid.epoch_caps_by_model)
    if (cap.epochs < 1)
      invalid("plan grid epoch cap " + std::to_string(cap.epochs) + " of model '" + name + "' is below 1");
  for (const auto& [name, counts] : grid.epoch_caps_by_frozen)
    for (const auto& [f, cap] : counts)
      if (cap.epochs < 1)
        invalid("plan grid epoch cap " + std::to_string(cap.epochs) + " of model '" + name + "' with " +
                frozen_stages_text(f) + " is below 1");
  if (!(over.safety_margin >= 0 && over.safety_margin < 1))
    invalid("safety margin " + std::to_string(over.safety_margin) + " is outside [0, 1)");
  for (const auto& [name, v] : {std::pair{"spent_seconds", over.spent_seconds},
                                std::pair{"spent_joules", over.spent_joules},
                                std::pair{"startup_seconds", over.startup_seconds},
                                std::pair{"checkpoint_interval_seconds", over.checkpoint_interval_seconds},
                                std::pair{"estimate_watts", options.estimate_watts},
                                std::pair{"risk_aversion", options.risk_aversion}})
    if (!(v >= 0) || !std::isfinite(v)) invalid(std::string(name) + " " + std::to_string(v) + " is not a non-negative number");
  if (!(over.time_scale > 0) || !std::isfinite(over.time_scale))
    invalid("time_scale " + std::to_string(over.time_scale) + " is not a number > 0");
  if (over.validation_images < 0) invalid("validation_images " + std::to_string(over.validation_images) + " is negative");
  if (over.resident_bytes < 0) invalid("resident_bytes " + std::to_string(over.resident_bytes) + " is negative");
  if (!(options.base.warmup_epochs >= 0) || !std::isfinite(options.base.warmup_epochs))
    invalid("base regime's warmup_epochs " + std::to_string(options.base.warmup_epochs) +
            " is not a non-negative number");
  if (over.unprofiled_bytes < 0)
    invalid("unprofiled_bytes " + std::to_string(over.unprofiled_bytes) + " is negative");
  if (options.alternatives < 0) invalid("alternatives " + std::to_string(options.alternatives) + " is negative");

  Limits limits;
  limits.usable_seconds = budget.seconds * (1 - over.safety_margin);
  if (budget.joules) limits.usable_joules = *budget.joules * (1 - over.safety_margin);
  // Memory too: what the profile cannot see (kernel caches set up on a
  // configuration's first steps, the loader's batches, a checkpoint's
  // copies) adds a little to its estimate.
  if (budget.memory_bytes)
    limits.memory = std::int64_t(double(*budget.memory_bytes) * (1 - over.safety_margin));
  Costs costs;
  costs.startup = over.startup_seconds;
  costs.checkpoint_interval = over.checkpoint_interval_seconds;
  costs.spent_seconds = over.spent_seconds;
  costs.spent_joules = over.spent_joules;
  const int epoch_cap = *std::max_element(grid.epochs.begin(), grid.epochs.end());

  // Configurations, with what each epoch costs.
  std::vector<Config> configs;
  bool any_watts = options.estimate_watts > 0;
  for (std::size_t mi = 0; mi < models.size(); ++mi) {
    const ModelProfile& mp = profile.model(models[mi].name);
    std::vector<int> batches =
        grid.batch_sizes.empty() ? profile.planned_batch_sizes(models[mi].name) : grid.batch_sizes;
    std::set<int> measured_frozen;
    for (const StepTiming& s : mp.steps) measured_frozen.insert(s.frozen_stages);
    // The model's own stage count where known: a profile of another network
    // under the same name must not plan frozen stages the model lacks.
    const int stages = models[mi].num_stages > 0 ? std::min(models[mi].num_stages, mp.num_stages) : mp.num_stages;
    std::vector<int> frozen = grid.frozen_stages;
    if (frozen.empty())
      for (int f = 0; f < stages; ++f) frozen.push_back(f);
    // Sorted and unique, so the order of configurations (and ties) does not
    // depend on how the grid was written.
    std::sort(batches.begin(), batches.end());
    batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
    std::sort(frozen.begin(), frozen.end());
    frozen.erase(std::unique(frozen.begin(), frozen.end()), frozen.end());
    const double model_watts = mp.most_watts();  // what fine-tuning is charged at without a meter or estimate
    for (int f : frozen) {
      if (f > stages || !measured_frozen.count(f)) continue;  // the profile cannot predict it
      for (int b : batches) {
        Config c;
        c.model = mi;
        c.batch = b;
        c.frozen = f;
        // The grid's cap, the model's and its frozen count's: the lowest binds.
        c.epoch_cap = epoch_cap;
        c.epoch_cap_reason = grid.epoch_cap_reason;
        const auto tighten = [&c](const PlanGrid::EpochCap& cap) {
          if (cap.epochs < c.epoch_cap) c.epoch_cap = cap.epochs, c.epoch_cap_reason = cap.reason;
        };
        if (const auto capped = grid.epoch_caps_by_model.find(models[mi].name); capped != grid.epoch_caps_by_model.end())
          tighten(capped->second);
        if (const auto of_model = grid.epoch_caps_by_frozen.find(models[mi].name);
            of_model != grid.epoch_caps_by_frozen.end())
          if (const auto at = of_model->second.find(f); at != of_model->second.end()) tighten(at->second);
        c.train_epoch = over.time_scale * predict_epoch_seconds(profile, mp.model.name, train_images, b, f);
        const double weight_bytes = double(sizeof(float)) * double(models[mi].parameters);
        c.finishing = finishing_seconds(models[mi].parameters);
        c.checkpoint = estimated_checkpoint_seconds(weight_bytes);
        // Evaluation runs at the plan's batch size, as the fine-tuner's does.
        c.eval_epoch =
            over.time_scale * predict_evaluation_seconds(profile, models[mi].name, over.validation_images, b);
        const StepTiming* cell = find_cell(mp, b, f);
        if (options.unmetered) {
          if (options.estimate_watts > 0) c.watts = options.estimate_watts;
          else if (model_watts > 0) c.watts = model_watts;
        } else if (cell && cell->watts) {
          c.watts = *cell->watts;
        } else if (options.estimate_watts > 0) {
          c.watts = options.estimate_watts;
        }
        // An epoch whose images leave one over ends in a batch of b + 1
        // (runtime/data/batching.h): the step's memory, measured at b, is
        // scaled up for it, all of it, on the safe side.
        const double larger = double(largest_batch(train_images, b, true)) / double(b);
        const auto scaled = [&](std::int64_t bytes) { return std::int64_t(std::ceil(double(bytes) * std::max(1.0, larger))); };
        if (cell && cell->rss_increase_bytes && options.overheads.resident_bytes > 0)
          c.memory = options.overheads.resident_bytes + scaled(*cell->rss_increase_bytes) +
                     2 * std::int64_t(sizeof(float)) * models[mi].parameters + options.overheads.unprofiled_bytes;
        else if (cell && cell->peak_rss_bytes)
          c.memory = scaled(*cell->peak_rss_bytes) + options.overheads.unprofiled_bytes;
        any_watts = any_watts || c.watts.has_value();
        configs.push_back(c);
      }
    }
  }
  if (configs.empty())
    invalid("the device profile has no measurement for any planned frozen stage count of the models");
  if (budget.joules && !any_watts)
    invalid("a joule budget needs power figures: the device profile has no watts and estimate_watts is 0");

  std::vector<int> epoch_grid = grid.epochs;
  std::sort(epoch_grid.begin(), epoch_grid.end());
  epoch_grid.erase(std::unique(epoch_grid.begin(), epoch_grid.end()), epoch_grid.end());

  Schedule out;
  out.budget = budget;
  out.usable_seconds = limits.usable_seconds;
  out.usable_joules = limits.usable_joules;
  out.configurations = configs.size() * grid.learning_rates.size();

  // The base's warm-up must end before its cosine schedule does (validate()):
  // a plan shorter than that would be refused by the fine-tuner it is for.
  const int fewest_epochs = options.base.schedule == ScheduleKind::kCosine
                                ? int(std::floor(std::max(0.0, options.base.warmup_epochs))) + 1
                                : 1;
  std::vector<Candidate> candidates;
  std::vector<int> max_fit(configs.size(), 0);
  for (std::size_t ci = 0; ci < configs.size(); ++ci) {
    const Config& c = configs[ci];
    int fit = 0;
    if (limits.fits(costs, c, 1)) {
      // Start from the closed form and correct it where rounding disagrees
      // with the check every plan is held to.
      const double per_epoch = c.train_epoch + c.eval_epoch;
      double estimate =
          per_epoch > 0 ? (limits.usable_seconds - costs.seconds(c, 0)) / per_epoch : c.epoch_cap;
      fit = int(std::clamp(std::floor(estimate), 1.0, double(c.epoch_cap)));
      while (fit > 1 && !limits.fits(costs, c, fit)) --fit;
      while (fit < c.epoch_cap && limits.fits(costs, c, fit + 1)) ++fit;
    }
    max_fit[ci] = fit;
    std::vector<int> epochs;
    for (int e : epoch_grid)
      if (e <= fit) epochs.push_back(e);
    // A model's own cap ends its grid as the largest epoch count ends the
    // whole one: planned even where the grid has no step there.
    const bool cap_binds = c.epoch_cap < epoch_cap && fit == c.epoch_cap;
    if ((grid.fill_budget || cap_binds) && fit >= 1 && (epochs.empty() || epochs.back() != fit)) epochs.push_back(fit);
    const auto within_cap = std::count_if(epoch_grid.begin(), epoch_grid.end(), [&](int e) { return e <= c.epoch_cap; });
    // The most that fit, or the model's cap where the grid has no step.
    const bool one_more = grid.fill_budget || (c.epoch_cap < epoch_cap && !std::binary_search(epoch_grid.begin(),
                                                                                             epoch_grid.end(),
                                                                                             c.epoch_cap));
    out.plans_considered += (std::size_t(within_cap) + (one_more ? 1 : 0)) * grid.learning_rates.size();
    epochs.erase(std::remove_if(epochs.begin(), epochs.end(), [&](int e) { return e < fewest_epochs; }), epochs.end());
    for (std::size_t li = 0; li < grid.learning_rates.size(); ++li)
      for (int e : epochs) {
        Candidate k;
        k.config = ci;
        k.lr = li;
        k.epochs = e;
        k.max_fit = fit;
        k.seconds = costs.seconds(c, e);
        candidates.push_back(k);
      }
  }

  if (candidates.empty() && fewest_epochs > 1) {
    const int most = *std::max_element(max_fit.begin(), max_fit.end());
    if (most >= 1 && most < fewest_epochs)
      invalid("no plan fits the budget with the base regime's warmup_epochs = " + fmt("%g", options.base.warmup_epochs) +
              ": the cosine schedule needs more epochs than the warm-up (at least " + std::to_string(fewest_epochs) +
              "), and the budget fits at most " + std::to_string(most) + " of any plan");
  }
  if (candidates.empty()) {
    // The configuration closest to fitting, at the fewest epochs a plan may
    // have (more than one under a warm-up), and what it needs.
    const int least = std::max(1, fewest_epochs);
    std::size_t nearest = configs.size();
    double nearest_ratio = kInf;
    for (std::size_t ci = 0; ci < configs.size(); ++ci) {
      const Config& c = configs[ci];
      double ratio = costs.seconds(c, least) / limits.usable_seconds;
      if (limits.usable_joules) {
        const auto j = costs.joules(c, least);
        ratio = std::max(ratio, j ? *j / *limits.usable_joules : kInf);
      }
      if (limits.memory) ratio = std::max(ratio, c.memory ? double(*c.memory) / double(*limits.memory) : kInf);
      if (ratio < nearest_ratio) nearest_ratio = ratio, nearest = ci;
    }
    const std::string margin = fmt("%.0f", over.safety_margin * 100) + "% safety margin";
    if (nearest == configs.size()) {
      const bool memory_known = std::any_of(configs.begin(), configs.end(), [](const Config& c) { return c.memory.has_value(); });
      const bool no_memory = limits.memory && !memory_known;
      if (no_memory || limits.usable_joules)
        invalid("no plan fits the budget: the device profile has no " + std::string(no_memory ? "memory" : "power") +
                " figure for any configuration that could fit, so none can be shown to fit the " +
                (no_memory ? "memory cap" : "joule budget"));
      invalid("no plan fits the budget: the device profile predicts no finite time for any configuration");
    }
    const Config& c = configs[nearest];
    // What the cheapest plan needs, the limits it breaks first: with a
    // memory cap too small, leading with seconds that fit would mislead.
    std::vector<std::string> broken, kept;
    const double seconds = costs.seconds(c, least);
    if (std::isfinite(budget.seconds))
      (seconds > limits.usable_seconds ? broken : kept)
          .push_back("a budget of at least " + least_budget(seconds, 1 - over.safety_margin, 2) + " s (given " +
                     fmt("%.2f", budget.seconds) + " s, with a " + margin + " and " + fmt("%.2f", over.spent_seconds) +
                     " s already spent)");
    if (budget.joules) {
      const double joules = *costs.joules(c, least);
      (joules > *limits.usable_joules ? broken : kept)
          .push_back("at least " + least_budget(joules, 1 - over.safety_margin, 2) + " J (given " +
                     fmt("%.2f", *budget.joules) + " J)");
    }
    if (budget.memory_bytes)
      (*c.memory > *limits.memory ? broken : kept)
          .push_back("a memory cap of at least " + least_budget(double(*c.memory) + 1, 1 - over.safety_margin, 0, 1024.0 * 1024.0) +
                     " MiB (given " + mib(double(*budget.memory_bytes)) + " MiB)");
    std::string text = "no plan fits the budget: the cheapest, model '" + models[c.model].name + "' at batch " +
                       std::to_string(c.batch) + " with " + std::to_string(c.frozen) +
                       " frozen stages for " + std::to_string(least) + (least == 1 ? " epoch" : " epochs") + ", needs ";
    for (std::size_t i = 0; i < broken.size(); ++i) text += (i ? " and " : "") + broken[i];
    if (!kept.empty()) {
      text += broken.empty() ? "" : "; it fits ";
      for (std::size_t i = 0; i < kept.size(); ++i) text += (i ? " and " : "") + kept[i];
    }
    invalid(text);
  }

  // Score every fitting plan in one call.
  std::vector<FeatureVector> rows;
  rows.reserve(candidates.size());
  {
    std::vector<Regime> templates(models.size(), options.base);
    std::vector<std::optional<double>> probes(models.size());
    for (std::size_t mi = 0; mi < models.size(); ++mi) {
      templates[mi].model = models[mi].name;
      const auto it = options.probe_scores.find(models[mi].name);
      if (it != options.probe_scores.end()) probes[mi] = it->second;
    }
    std::vector<ModelFeatures> features = models;
    for (std::size_t mi = 0; mi < models.size(); ++mi)
      if (features[mi].num_stages <= 0) features[mi].num_stages = profile.model(models[mi].name).num_stages;
    for (const Candidate& k : candidates) {
      const Config& c = configs[k.config];
      Regime& r = templates[c.model];
      r.learning_rate = grid.learning_rates[k.lr];
      r.epochs = k.epochs;
      r.batch_size = c.batch;
      r.frozen_stages = c.frozen;
      rows.push_back(make_features(task, train_images, features[c.model], r, probes[c.model]));
    }
  }
  const std::vector<Prediction> predictions = predictor.predict(rows);
  if (predictions.size() != candidates.size())
    throw Error(ErrorCode::kInternal, "the predictor returned " + std::to_string(predictions.size()) +
                                          " predictions for " + std::to_string(candidates.size()) + " plans");
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    candidates[i].prediction = predictions[i];
    candidates[i].score = predictions[i].mean - options.risk_aversion * predictions[i].std;
  }
  out.plans_fitting = candidates.size();

  auto key_less = [&](const Candidate& a, const Candidate& b) {
    const bool a_nan = std::isnan(a.score), b_nan = std::isnan(b.score);
    if (a_nan != b_nan) return b_nan;
    if (!a_nan && a.score != b.score) return a.score > b.score;
    if (a.seconds != b.seconds) return a.seconds > b.seconds;
    const Config &ca = configs[a.config], &cb = configs[b.config];
    const std::string &na = models[ca.model].name, &nb = models[cb.model].name;
    if (na != nb) return na < nb;
    if (a.lr != b.lr) return grid.learning_rates[a.lr] < grid.learning_rates[b.lr];
    if (ca.batch != cb.batch) return ca.batch < cb.batch;
    if (ca.frozen != cb.frozen) return ca.frozen < cb.frozen;
    return a.epochs < b.epochs;
  };
  std::vector<std::size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return key_less(candidates[a], candidates[b]); });

  auto make_run = [&](const Candidate& k) {
    const Config& c = configs[k.config];
    PlannedRun p;
    p.regime = options.base;
    p.regime.model = models[c.model].name;
    p.regime.learning_rate = grid.learning_rates[k.lr];
    p.regime.epochs = k.epochs;
    p.regime.batch_size = c.batch;
    p.regime.frozen_stages = c.frozen;
    p.predicted_accuracy = k.prediction.mean;
    p.predicted_std = k.prediction.std;
    p.score = k.score;
    p.seconds = k.seconds;
    p.training_seconds = k.epochs * c.train_epoch;
    p.evaluation_seconds = k.epochs * c.eval_epoch;
    p.joules = costs.joules(c, k.epochs);
    p.memory_bytes = c.memory;
    p.max_fitting_epochs = k.max_fit;
    p.why = why(p, c, costs, limits);
    return p;
  };
  std::set<std::pair<std::size_t, std::size_t>> seen;  // (configuration, learning rate)
  for (std::size_t i : order) {
    const Candidate& k = candidates[i];
    if (!seen.insert({k.config, k.lr}).second) continue;
    if (seen.size() == 1) {
      out.best = make_run(k);
      continue;
    }
    if (int(out.alternatives.size()) >= options.alternatives) break;
    out.alternatives.push_back(make_run(k));
  }
  out.planning_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return out;
}

PlanGrid grid_with_evidence(const PlanGrid& grid, const ExperienceSummary& experience,
                            const std::vector<ModelFeatures>& models) {
  PlanGrid out = grid;
  out.epochs = epochs_with_evidence(experience, grid.epochs);
  if (!out.epochs.empty() && !grid.epochs.empty()) {
    const int cut = *std::max_element(out.epochs.begin(), out.epochs.end());
    if (cut < *std::max_element(grid.epochs.begin(), grid.epochs.end()))
      out.epoch_cap_reason = epoch_cap_reason(experience, cut);
  }
  std::vector<std::string> names;
  for (const ModelFeatures& m : models) names.push_back(m.name);
  for (const auto& [name, cap] : model_epoch_caps(experience, names, grid.epochs))
    out.epoch_caps_by_model[name] = {cap, epoch_cap_reason(experience, cap, name)};
  // Every count a model may plan: the grid's, and all of its stages (those
  // the planner plans when the grid names none). Where the caller does not
  // know a model's stage count, the planner takes the profile's, so every
  // count a zoo network could have is capped.
  constexpr int kStagesOfAnyNetwork = 16;
  std::map<std::string, std::vector<int>> counts;
  for (const ModelFeatures& m : models) {
    std::vector<int>& c = counts[m.name];
    c = grid.frozen_stages;
    for (int f = 0; f < (m.num_stages > 0 ? m.num_stages : kStagesOfAnyNetwork); ++f) c.push_back(f);
    std::sort(c.begin(), c.end());
    c.erase(std::unique(c.begin(), c.end()), c.end());
  }
  for (const auto& [name, caps] : frozen_epoch_caps(experience, counts, grid.epochs))
    for (const auto& [f, cap] : caps) out.epoch_caps_by_frozen[name][f] = {cap, epoch_cap_reason(experience, cap, name, f)};
  return out;
}

std::string to_json(const PlannedRun& plan) { return plan_json(plan).dump(2) + "\n"; }

std::string to_json(const Schedule& s) {
  Json j;
  j["best"] = plan_json(s.best);
  Json alternatives = Json::array();
  for (const PlannedRun& p : s.alternatives) alternatives.push_back(plan_json(p));
  j["alternatives"] = alternatives;
  // No time limit (infinite seconds) is null, on purpose: JSON has no infinity.
  const auto seconds_json = [](double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); };
  j["budget"] = Json{{"seconds", seconds_json(s.budget.seconds)},
                     {"joules", s.budget.joules ? Json(*s.budget.joules) : Json(nullptr)},
                     {"memory_bytes", s.budget.memory_bytes ? Json(*s.budget.memory_bytes) : Json(nullptr)},
                     {"usable_seconds", seconds_json(s.usable_seconds)},
                     {"usable_joules", s.usable_joules ? Json(*s.usable_joules) : Json(nullptr)}};
  j["configurations"] = s.configurations;
  j["plans_considered"] = s.plans_considered;
  j["plans_fitting"] = s.plans_fitting;
  j["planning_seconds"] = s.planning_seconds;
  return j.dump(2) + "\n";
}

}  // namespace nasoa::runtime
