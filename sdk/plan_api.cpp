// nasoa::Plan to and from JSON: what --plan-only prints, what a report
// holds, and what a planned run that was killed resumes from.
#include <cmath>
#include <nlohmann/json.hpp>

#include "nasoa/error.h"
#include "nasoa/plan.h"
#include "sdk/boundary.h"

namespace nasoa {
namespace {

using Json = nlohmann::ordered_json;

template <typename T>
Json optional_json(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

Json regime_json(const Regime& r) {
  return Json{{"model", r.model},
              {"learning_rate", r.learning_rate},
              {"epochs", r.epochs},
              {"batch_size", r.batch_size},
              {"frozen_stages", r.frozen_stages},
              {"optimizer", to_string(r.optimizer)},
              {"momentum", r.momentum},
              {"weight_decay", r.weight_decay},
              {"schedule", to_string(r.schedule)},
              {"warmup_epochs", r.warmup_epochs},
              {"label_smoothing", r.label_smoothing},
              {"random_resized_crop", r.random_resized_crop},
              {"horizontal_flip", r.horizontal_flip},
              {"validation_fraction", r.validation_fraction},
              {"seed", r.seed}};
}

Json run_json(const PlannedRun& p) {
  return Json{{"regime", regime_json(p.regime)},
              {"predicted_accuracy", optional_json(p.predicted_accuracy)},
              {"predicted_std", optional_json(p.predicted_std)},
              {"predicted_seconds", p.predicted_seconds},
              {"training_seconds", p.training_seconds},
              {"evaluation_seconds", p.evaluation_seconds},
              {"predicted_joules", optional_json(p.predicted_joules)},
              {"predicted_memory_bytes", optional_json(p.predicted_memory_bytes)},
              {"max_fitting_epochs", p.max_fitting_epochs},
              {"why", p.why}};
}

// Reads back what to_json() wrote; every failure names the field's path.
class Reader {
 public:
  Reader(const Json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) fail("", "expected an object");
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(ErrorCode::kCorrupt, "plan JSON: field '" + at(key) + "': " + what);
  }
  std::string at(const std::string& key) const {
    if (key.empty()) return path_.empty() ? "(top level)" : path_;
    return path_.empty() ? key : path_ + "." + key;
  }
  const Json& get(const std::string& key) const {
    const auto it = j_.find(key);
    if (it == j_.end()) fail(key, "missing");
    return *it;
  }
  Reader object(const std::string& key) const { return Reader(get(key), at(key)); }
  double number(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_number() || !std::isfinite(v.get<double>())) fail(key, "expected a finite number, got " + v.dump());
    return v.get<double>();
  }
  std::optional<double> optional_number(const std::string& key) const {
    if (get(key).is_null()) return std::nullopt;
    return number(key);
  }
  std::int64_t integer(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_number_integer()) fail(key, "expected an integer, got " + v.dump());
    return v.get<std::int64_t>();
  }
  std::uint64_t unsigned_integer(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_number_unsigned()) fail(key, "expected a non-negative integer, got " + v.dump());
    return v.get<std::uint64_t>();
  }
  bool boolean(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_boolean()) fail(key, "expected true or false, got " + v.dump());
    return v.get<bool>();
  }
  std::string string(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_string()) fail(key, "expected a string, got " + v.dump());
    return v.get<std::string>();
  }
  const Json& array(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_array()) fail(key, "expected an array, got " + v.dump());
    return v;
  }

 private:
  const Json& j_;
  std::string path_;
};

int to_int(const Reader& r, const std::string& key) {
  const std::int64_t v = r.integer(key);
  if (v < INT32_MIN || v > INT32_MAX) r.fail(key, "value " + std::to_string(v) + " is out of range");
  return int(v);
}

Regime read_regime(const Reader& r) {
  Regime g;
  g.model = r.string("model");
  g.learning_rate = r.number("learning_rate");
  g.epochs = to_int(r, "epochs");
  g.batch_size = to_int(r, "batch_size");
  g.frozen_stages = to_int(r, "frozen_stages");
  try {
    g.optimizer = parse_optimizer(r.string("optimizer"));
  } catch (const Error& e) {
    r.fail("optimizer", e.what());
  }
  try {
    g.schedule = parse_schedule(r.string("schedule"));
  } catch (const Error& e) {
    r.fail("schedule", e.what());
  }
  g.momentum = r.number("momentum");
  g.weight_decay = r.number("weight_decay");
  g.warmup_epochs = r.number("warmup_epochs");
  g.label_smoothing = r.number("label_smoothing");
  g.random_resized_crop = r.boolean("random_resized_crop");
  g.horizontal_flip = r.boolean("horizontal_flip");
  g.validation_fraction = r.number("validation_fraction");
  g.seed = r.unsigned_integer("seed");
  try {
    validate(g);
  } catch (const Error& e) {
    r.fail("", e.what());
  }
  return g;
}

PlannedRun read_run(const Reader& r) {
  PlannedRun p;
  p.regime = read_regime(r.object("regime"));
  p.predicted_accuracy = r.optional_number("predicted_accuracy");
  p.predicted_std = r.optional_number("predicted_std");
  p.predicted_seconds = r.number("predicted_seconds");
  p.training_seconds = r.number("training_seconds");
  p.evaluation_seconds = r.number("evaluation_seconds");
  p.predicted_joules = r.optional_number("predicted_joules");
  if (r.get("predicted_memory_bytes").is_null()) {
    p.predicted_memory_bytes.reset();
  } else {
    p.predicted_memory_bytes = r.integer("predicted_memory_bytes");
  }
  p.max_fitting_epochs = to_int(r, "max_fitting_epochs");
  p.why = r.string("why");
  return p;
}

}  // namespace

const char* to_string(PlanSource source) {
  switch (source) {
    case PlanSource::kPredictor: return "predictor";
    case PlanSource::kDefault: return "default";
    case PlanSource::kGiven: return "given";
  }
  return "?";
}

std::string Plan::to_json() const {
  return sdk::at_boundary("Plan::to_json", [&] {
    Json j;
    j["source"] = nasoa::to_string(source);
    j["best"] = run_json(best);
    Json alt = Json::array();
    for (const PlannedRun& p : alternatives) alt.push_back(run_json(p));
    j["alternatives"] = alt;
    j["budget"] = Json{{"seconds", budget_seconds},
                       {"joules", budget_joules},
                       {"memory_mib", budget_memory_mib},
                       {"usable_seconds", usable_seconds}};
    j["experience"] = Json{{"shipped_records", shipped_records}, {"device_records", device_records}};
    j["plans_considered"] = plans_considered;
    j["plans_fitting"] = plans_fitting;
    j["planning_seconds"] = planning_seconds;
    j["profiled"] = profiled;
    j["profiling_seconds"] = profiling_seconds;
    j["probe_used"] = probe_used;
    j["probe_seconds"] = probe_seconds;
    Json scores = Json::object();
    for (const auto& [model, score] : probe_scores) scores[model] = score;
    j["probe_scores"] = scores;
    j["notes"] = notes;
    return j.dump(2) + "\n";
  });
}

Plan Plan::from_json(const std::string& text) {
  return sdk::at_boundary("Plan::from_json", [&] {
    Json j;
    try {
      j = Json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::kCorrupt, std::string("plan JSON does not parse: ") + e.what());
    }
    const Reader r(j, "");
    Plan p;
    const std::string source = r.string("source");
    if (source == "predictor") p.source = PlanSource::kPredictor;
    else if (source == "default") p.source = PlanSource::kDefault;
    else if (source == "given") p.source = PlanSource::kGiven;
    else r.fail("source", "'" + source + "' is not predictor, default or given");
    p.best = read_run(r.object("best"));
    const Json& alt = r.array("alternatives");
    for (std::size_t i = 0; i < alt.size(); ++i)
      p.alternatives.push_back(read_run(Reader(alt[i], "alternatives[" + std::to_string(i) + "]")));
    const Reader budget = r.object("budget");
    p.budget_seconds = budget.number("seconds");
    p.budget_joules = budget.number("joules");
    p.budget_memory_mib = budget.integer("memory_mib");
    p.usable_seconds = budget.number("usable_seconds");
    const Reader experience = r.object("experience");
    p.shipped_records = experience.unsigned_integer("shipped_records");
    p.device_records = experience.unsigned_integer("device_records");
    p.plans_considered = r.unsigned_integer("plans_considered");
    p.plans_fitting = r.unsigned_integer("plans_fitting");
    p.planning_seconds = r.number("planning_seconds");
    if (p.planning_seconds < 0) r.fail("planning_seconds", "is negative");
    p.profiled = r.boolean("profiled");
    p.profiling_seconds = r.number("profiling_seconds");
    p.probe_used = r.boolean("probe_used");
    p.probe_seconds = r.number("probe_seconds");
    const Json& scores = r.get("probe_scores");
    if (!scores.is_object()) r.fail("probe_scores", "expected an object");
    const Reader score_reader(scores, "probe_scores");
    for (auto it = scores.begin(); it != scores.end(); ++it) p.probe_scores[it.key()] = score_reader.number(it.key());
    const Json& notes = r.array("notes");
    for (std::size_t i = 0; i < notes.size(); ++i) {
      if (!notes[i].is_string()) r.fail("notes[" + std::to_string(i) + "]", "expected a string");
      p.notes.push_back(notes[i].get<std::string>());
    }
    return p;
  });
}

}  // namespace nasoa
