#include "runtime/adapt/experience_coverage.h"

#include <algorithm>
#include <set>

#include "zoo/text/printable.h"

namespace nasoa::runtime {
namespace {

// Two values that differ never read alike in a note.
std::string number(double v) { return zoo::round_trip_number(v); }

std::string on_off(bool v) { return v ? "on" : "off"; }

// The most epochs of `model`'s evaluated runs; 0 for a model without one,
// or in a summary that keeps no per-model figures.
int longest_run_of(const ExperienceSummary& experience, const std::string& model) {
  const auto it = experience.longest_epochs_by_model.find(model);
  return it == experience.longest_epochs_by_model.end() ? 0 : it->second;
}

// The same at `frozen` stages frozen; 0 also for a count the model has no
// run at when the summary keeps per-count figures.
int longest_run_of(const ExperienceSummary& experience, const std::string& model, int frozen) {
  const auto it = experience.longest_epochs_by_frozen.find(model);
  if (it == experience.longest_epochs_by_frozen.end()) return 0;
  const auto at = it->second.find(frozen);
  return at == it->second.end() ? 0 : at->second;
}

struct Field {
  const char* name;
  bool (*same)(const Regime&, const Regime&);
  std::string (*show)(const Regime&);
};

// One entry per unplanned field, in unplanned_regime_fields()'s order.
const std::vector<Field>& fields() {
  static const std::vector<Field> table = {
      {"optimizer", [](const Regime& a, const Regime& b) { return a.optimizer == b.optimizer; },
       [](const Regime& r) { return std::string(to_string(r.optimizer)); }},
      {"momentum", [](const Regime& a, const Regime& b) { return a.momentum == b.momentum; },
       [](const Regime& r) { return number(r.momentum); }},
      {"weight_decay", [](const Regime& a, const Regime& b) { return a.weight_decay == b.weight_decay; },
       [](const Regime& r) { return number(r.weight_decay); }},
      {"schedule", [](const Regime& a, const Regime& b) { return a.schedule == b.schedule; },
       [](const Regime& r) { return std::string(to_string(r.schedule)); }},
      {"warmup_epochs", [](const Regime& a, const Regime& b) { return a.warmup_epochs == b.warmup_epochs; },
       [](const Regime& r) { return number(r.warmup_epochs); }},
      {"label_smoothing", [](const Regime& a, const Regime& b) { return a.label_smoothing == b.label_smoothing; },
       [](const Regime& r) { return number(r.label_smoothing); }},
      {"random_resized_crop", [](const Regime& a, const Regime& b) { return a.random_resized_crop == b.random_resized_crop; },
       [](const Regime& r) { return on_off(r.random_resized_crop); }},
      {"horizontal_flip", [](const Regime& a, const Regime& b) { return a.horizontal_flip == b.horizontal_flip; },
       [](const Regime& r) { return on_off(r.horizontal_flip); }},
  };
  return table;
}

}  // namespace

const std::vector<std::string>& unplanned_regime_fields() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const Field& f : fields()) out.push_back(f.name);
    return out;
  }();
  return names;
}

bool ExperienceSummary::operator==(const ExperienceSummary& o) const {
  if (record_count != o.record_count || evaluated_count != o.evaluated_count || batch_sizes != o.batch_sizes ||
      longest_epochs != o.longest_epochs || longest_epochs_by_model != o.longest_epochs_by_model ||
      longest_epochs_by_frozen != o.longest_epochs_by_frozen || shared_fields != o.shared_fields)
    return false;
  for (const Field& f : fields())
    if (std::count(shared_fields.begin(), shared_fields.end(), f.name) && !f.same(shared_regime, o.shared_regime))
      return false;
  return true;
}

ExperienceSummary summarize_experience(const std::vector<ExperienceRecord>& records,
                                       const std::vector<ExperienceRecord>& more) {
  ExperienceSummary s;
  s.record_count = records.size() + more.size();
  const ExperienceRecord* first = nullptr;
  std::vector<bool> shared(fields().size(), true);
  std::set<int> batches;
  for (const auto* list : {&records, &more})
    for (const ExperienceRecord& r : *list) {
      if (r.best_accuracy < 0) continue;
      ++s.evaluated_count;
      batches.insert(r.regime.batch_size);
      s.longest_epochs = std::max(s.longest_epochs, r.regime.epochs);
      int& longest_of_model = s.longest_epochs_by_model[r.regime.model];
      longest_of_model = std::max(longest_of_model, r.regime.epochs);
      int& longest_frozen = s.longest_epochs_by_frozen[r.regime.model][r.regime.frozen_stages];
      longest_frozen = std::max(longest_frozen, r.regime.epochs);
      if (!first) {
        first = &r;
        continue;
      }
      for (std::size_t f = 0; f < fields().size(); ++f)
        if (shared[f] && !fields()[f].same(r.regime, first->regime)) shared[f] = false;
    }
  if (!first) return s;
  s.batch_sizes.assign(batches.begin(), batches.end());
  s.shared_regime = first->regime;
  for (std::size_t f = 0; f < fields().size(); ++f)
    if (shared[f]) s.shared_fields.push_back(fields()[f].name);
  return s;
}

std::vector<std::string> regime_outside_experience(const Regime& base, const ExperienceSummary& experience) {
  std::vector<std::string> notes;
  if (experience.evaluated_count == 0) return notes;
  const std::string runs = experience.evaluated_count == 1
                               ? std::string("the one run")
                               : "all " + std::to_string(experience.evaluated_count) + " runs";
  for (const Field& f : fields()) {
    const bool shared =
        std::count(experience.shared_fields.begin(), experience.shared_fields.end(), f.name) > 0;
    if (!shared || f.same(base, experience.shared_regime)) continue;
    const std::string theirs = f.show(experience.shared_regime);
    notes.push_back(std::string(f.name) + " is " + f.show(base) + ", but it is " + theirs + " in " + runs +
                    " of the experience plans are predicted from: the predicted accuracy is for " + f.name + " " +
                    theirs);
  }
  return notes;
}

std::vector<int> epochs_with_evidence(const ExperienceSummary& experience, const std::vector<int>& grid) {
  const int cap = std::max(kEpochsPlannedWithoutLongerRuns, experience.longest_epochs);
  std::vector<int> epochs;
  bool beyond = false;
  for (const int e : grid) {
    if (e <= cap) epochs.push_back(e);
    beyond = beyond || e > cap;
  }
  if (beyond && std::find(epochs.begin(), epochs.end(), cap) == epochs.end()) epochs.push_back(cap);
  return epochs;
}

// A cap's reason, for the runs of `whose` (empty: the whole experience's),
// whether or not the cap is their longest run.
std::string cap_reason(bool is_longest_run, const std::string& whose) {
  if (is_longest_run)
    return whose.empty() ? "the longest run of the predictor's experience"
                         : "the longest run of " + whose + " in the predictor's experience";
  return "the most epochs planned without evidence of longer runs" + (whose.empty() ? "" : " of " + whose);
}

std::string epoch_cap_reason(const ExperienceSummary& experience, int cap, const std::string& model) {
  const int longest = model.empty() ? experience.longest_epochs : longest_run_of(experience, model);
  return cap_reason(longest == cap, model);
}

std::map<std::string, int> model_epoch_caps(const ExperienceSummary& experience, const std::vector<std::string>& models,
                                            const std::vector<int>& grid) {
  std::map<std::string, int> caps;
  const std::vector<int> planned = epochs_with_evidence(experience, grid);
  if (experience.longest_epochs_by_model.empty() || planned.empty()) return caps;
  const int most = *std::max_element(planned.begin(), planned.end());
  for (const std::string& name : models) {
    const int cap = std::max(kEpochsPlannedWithoutLongerRuns, longest_run_of(experience, name));
    if (cap < most) caps[name] = cap;
  }
  return caps;
}

std::string epoch_cap_reason(const ExperienceSummary& experience, int cap, const std::string& model, int frozen) {
  return cap_reason(longest_run_of(experience, model, frozen) == cap, model + " with " + frozen_stages_text(frozen));
}

std::map<std::string, std::map<int, int>> frozen_epoch_caps(const ExperienceSummary& experience,
                                                            const std::map<std::string, std::vector<int>>& frozen,
                                                            const std::vector<int>& grid) {
  std::map<std::string, std::map<int, int>> caps;
  const std::vector<int> planned = epochs_with_evidence(experience, grid);
  if (experience.longest_epochs_by_frozen.empty() || planned.empty()) return caps;
  const int most = *std::max_element(planned.begin(), planned.end());
  std::vector<std::string> names;
  for (const auto& [name, counts] : frozen) names.push_back(name);
  const std::map<std::string, int> by_model = model_epoch_caps(experience, names, grid);
  for (const auto& [name, counts] : frozen) {
    const auto model_cap = by_model.find(name);
    const int of_model = model_cap == by_model.end() ? most : model_cap->second;
    for (const int f : counts) {
      const int cap = std::max(kEpochsPlannedWithoutLongerRuns, longest_run_of(experience, name, f));
      if (cap < of_model) caps[name][f] = cap;
    }
  }
  return caps;
}

std::string frozen_stages_text(int frozen) {
  return std::to_string(frozen) + " frozen stage" + (frozen == 1 ? "" : "s");
}

std::string listed_batch_sizes(const std::vector<int>& sizes) {
  std::string text;
  for (const int b : sizes) text += (text.empty() ? "" : ", ") + std::to_string(b);
  return text;
}

std::vector<int> batch_sizes_with_evidence(const ExperienceSummary& experience, const std::vector<int>& profiled,
                                           std::string* note) {
  note->clear();
  std::vector<int> sizes;
  for (const int b : profiled)
    if (std::binary_search(experience.batch_sizes.begin(), experience.batch_sizes.end(), b)) sizes.push_back(b);
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  if (sizes.empty())
    *note = "the device profile measured none of the batch sizes the predictor has seen (" +
            listed_batch_sizes(experience.batch_sizes) + "): planned over the profile's (" +
            listed_batch_sizes(profiled) + "), on no evidence of what they do";
  return sizes;
}

}  // namespace nasoa::runtime
