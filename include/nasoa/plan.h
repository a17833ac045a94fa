// nasoa/plan.h: what Adapter::plan() chose for a task and a budget, and why.
//
// A Plan is plain data: copy it, keep it, print it (to_json()), hand it to
// Adapter::fine_tune() and, with the result, to Adapter::record(). Nothing in
// it refers back to the Adapter, the Zoo or the Task.
//
// Predicted times are for the whole adapt call as the budget counts it: the
// budget's spent_seconds and plan()'s own time (device profiling and the
// probe included) are part of them. See Adapter::plan() in nasoa/adapter.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nasoa/export.h"
#include "nasoa/regime.h"

namespace nasoa {

// One way to fine-tune the task, with what the planner expects of it.
struct PlannedRun {
  Regime regime;  // model, learning rate, epochs, batch size and frozen stages chosen
  // Best validation accuracy in [0, 1] the predictor expects, and its
  // standard deviation. Empty when there is no experience to predict from.
  std::optional<double> predicted_accuracy;
  std::optional<double> predicted_std;
  double predicted_seconds = 0;     // the whole call, spent and planning seconds included
  double training_seconds = 0;      // of which training, all epochs
  double evaluation_seconds = 0;    // of which validation, all epochs
  std::optional<double> predicted_joules;           // empty: no power figure to estimate from
  std::optional<std::int64_t> predicted_memory_bytes;  // peak resident; empty: not profiled
  int max_fitting_epochs = 0;       // most epochs of this model/lr/batch/frozen that fit
  std::string why;                  // what bounds it, in a few words
};

enum class PlanSource {
  kPredictor,  // scored by the performance predictor (shipped and/or device experience)
  kDefault,    // too little experience to follow: the documented default plan (Adapter::plan())
  kGiven,      // made by the caller, e.g. a regime given by hand
};
NASOA_API const char* to_string(PlanSource source);  // "predictor", "default", "given"

struct Plan {
  PlanSource source = PlanSource::kGiven;
  PlannedRun best;                      // what fine_tune(task, plan, ...) trains
  std::vector<PlannedRun> alternatives;  // the next best, best first, each another model/lr/batch/frozen

  // What was planned for: the budget as given to plan(); the seconds usable
  // after the planner's safety margin (a tenth of the budget is kept back for
  // estimate error). budget_seconds and usable_seconds are 0 for a budget of
  // energy alone (Budget::seconds 0 or infinity), as budget_joules is for
  // one of time alone.
  double budget_seconds = 0, budget_joules = 0;
  std::int64_t budget_memory_mib = 0;
  double usable_seconds = 0;

  // What the prediction rests on: the records of the bundle's shipped
  // experience and of the device's log (evaluated or not).
  std::size_t shipped_records = 0, device_records = 0;
  std::size_t plans_considered = 0, plans_fitting = 0;

  // plan()'s wall time, all of it, which counts against the budget:
  // fine_tune(task, plan, budget) adds it to budget.spent_seconds.
  double planning_seconds = 0;
  // The energy plan() used, all of it, which counts against an energy
  // budget: fine_tune(task, plan, budget) adds it to budget.spent_joules.
  // Read from the meter fine-tuning would use, or where none measures,
  // estimated at AdapterOptions::estimate_watts or else at the highest power
  // the device profile holds for a bundle model, for all of
  // planning_seconds; 0 where neither tells.
  double planning_joules = 0;
  // Whether plan() measured the device profile (a one-time calibration per
  // device and zoo, then cached in the state directory), and how long it took.
  bool profiled = false;
  double profiling_seconds = 0;
  // The LogME transferability probe (AdapterOptions::probe): whether it ran,
  // its time, and its score per model (higher transfers better).
  bool probe_used = false;
  double probe_seconds = 0;
  std::map<std::string, double> probe_scores;
  // Anything worth a look: damage found in the device's experience log, a
  // cached profile that was measured again, a field of the base regime set
  // otherwise than in every run the predictor learnt from, ...
  std::vector<std::string> notes;

  // Pretty-printed JSON of all of the above (optional values as null), and
  // back: a plan saved before a crash resumes the same run. to_json throws
  // Error{kInvalidArgument} naming a field that is NaN or infinite (a
  // hand-edited plan; plan() makes none); from_json throws Error{kCorrupt}
  // naming the field at fault, which includes a regime that validate()
  // refuses: a plan that plan() made reads back, a default-constructed Plan
  // (no model) does not.
  NASOA_API std::string to_json() const;
  NASOA_API static Plan from_json(const std::string& text);
};

}  // namespace nasoa
