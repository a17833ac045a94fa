// nasoa::Plan to and from JSON: what --plan-only prints, what a report
// holds, and what a planned run that was killed resumes from.
#include <cmath>
#include <nlohmann/json.hpp>

#include "nasoa/error.h"
#include "nasoa/plan.h"
#include "runtime/adapt/regime_json.h"
#include "sdk/boundary.h"

namespace nasoa {
namespace {

using Json = nlohmann::ordered_json;

template <typename T>
Json optional_json(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

Json run_json(const PlannedRun& p) {
  return Json{{"regime", Json(runtime::detail::regime_json(p.regime))},
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

using runtime::detail::Fields;

// Plan files name themselves this way in errors: "plan JSON: field '...': ...".
const std::string kSource = "plan JSON";

// A field that must be there, null when the value is absent.
std::optional<double> nullable_number(const Fields& f, const std::string& key) {
  (void)f.get(key);  // throws, naming the field, when it is missing
  return f.optional_number(key);
}

PlannedRun read_run(const Fields& r) {
  PlannedRun p;
  p.regime = runtime::detail::read_regime(r.object("regime"));
  p.predicted_accuracy = nullable_number(r, "predicted_accuracy");
  p.predicted_std = nullable_number(r, "predicted_std");
  p.predicted_seconds = r.number("predicted_seconds");
  p.training_seconds = r.number("training_seconds");
  p.evaluation_seconds = r.number("evaluation_seconds");
  p.predicted_joules = nullable_number(r, "predicted_joules");
  if (r.get("predicted_memory_bytes").is_null()) {
    p.predicted_memory_bytes.reset();
  } else {
    p.predicted_memory_bytes = r.integer("predicted_memory_bytes");
  }
  p.max_fitting_epochs = int(r.integer("max_fitting_epochs", INT32_MIN, INT32_MAX));
  p.why = r.string("why");
  return p;
}

// The path of the first NaN or infinite number in `j` (a plan's own, shallow
// structure), or empty. JSON has no such numbers: they would be written as
// null and the plan would not read back.
std::string first_non_finite(const Json& j, const std::string& path) {
  if (j.is_number_float() && !std::isfinite(j.get<double>())) return path.empty() ? "(top level)" : path;
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it)
      if (std::string p = first_non_finite(*it, path.empty() ? it.key() : path + "." + it.key()); !p.empty()) return p;
  if (j.is_array())
    for (std::size_t i = 0; i < j.size(); ++i)
      if (std::string p = first_non_finite(j[i], path + "[" + std::to_string(i) + "]"); !p.empty()) return p;
  return {};
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
    j["planning_joules"] = planning_joules;
    j["profiled"] = profiled;
    j["profiling_seconds"] = profiling_seconds;
    j["probe_used"] = probe_used;
    j["probe_seconds"] = probe_seconds;
    Json scores = Json::object();
    for (const auto& [model, score] : probe_scores) scores[model] = score;
    j["probe_scores"] = scores;
    j["notes"] = notes;
    if (const std::string field = first_non_finite(j, ""); !field.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "plan field '" + field + "' is not a finite number; JSON cannot hold it");
    // Text fields come from bundles and folders; bytes that are not UTF-8
    // are shown as U+FFFD rather than failing the whole plan.
    return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  });
}

Plan Plan::from_json(const std::string& text) {
  return sdk::at_boundary("Plan::from_json", [&] {
    runtime::detail::Json j;
    try {
      j = runtime::detail::Json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::kCorrupt, std::string("plan JSON does not parse: ") + e.what());
    }
    const Fields r(j, "", kSource);
    Plan p;
    const std::string source = r.string("source");
    if (source == "predictor") p.source = PlanSource::kPredictor;
    else if (source == "default") p.source = PlanSource::kDefault;
    else if (source == "given") p.source = PlanSource::kGiven;
    else r.fail(r.at("source"), "'" + source + "' is not predictor, default or given");
    p.best = read_run(r.object("best"));
    const auto& alt = r.array("alternatives");
    for (std::size_t i = 0; i < alt.size(); ++i)
      p.alternatives.push_back(read_run(Fields(alt[i], "alternatives[" + std::to_string(i) + "]", kSource)));
    const Fields budget = r.object("budget");
    p.budget_seconds = budget.number("seconds");
    p.budget_joules = budget.number("joules");
    p.budget_memory_mib = budget.integer("memory_mib");
    p.usable_seconds = budget.number("usable_seconds");
    const Fields experience = r.object("experience");
    p.shipped_records = std::size_t(experience.integer("shipped_records", 0));
    p.device_records = std::size_t(experience.integer("device_records", 0));
    p.plans_considered = std::size_t(r.integer("plans_considered", 0));
    p.plans_fitting = std::size_t(r.integer("plans_fitting", 0));
    p.planning_seconds = r.number("planning_seconds");
    if (p.planning_seconds < 0) r.fail(r.at("planning_seconds"), "is negative");
    // Plans of 0.3.4 and before have no field: they counted no energy.
    p.planning_joules = r.optional_number("planning_joules", 0).value_or(0.0);
    p.profiled = r.boolean("profiled");
    p.profiling_seconds = r.number("profiling_seconds");
    p.probe_used = r.boolean("probe_used");
    p.probe_seconds = r.number("probe_seconds");
    const Fields scores = r.object("probe_scores");
    for (const auto& item : r.get("probe_scores").items()) p.probe_scores[item.key()] = scores.number(item.key());
    const Json& notes = r.array("notes");
    for (std::size_t i = 0; i < notes.size(); ++i) {
      if (!notes[i].is_string()) r.fail(r.at("notes[" + std::to_string(i) + "]"), "expected a string");
      p.notes.push_back(notes[i].get<std::string>());
    }
    return p;
  });
}

}  // namespace nasoa
