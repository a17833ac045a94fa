#include "runtime/adapt/experience_coverage.h"

#include <cstdio>
#include <functional>
#include <optional>

namespace nasoa::runtime {
namespace {

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

std::string on_off(bool v) { return v ? "on" : "off"; }

struct Field {
  const char* name;
  std::function<std::string(const Regime&)> value;  // as the note shows it; equal text, equal value
};

const std::vector<Field>& unplanned_fields() {
  static const std::vector<Field> fields = {
      {"optimizer", [](const Regime& r) { return std::string(to_string(r.optimizer)); }},
      {"momentum", [](const Regime& r) { return number(r.momentum); }},
      {"weight_decay", [](const Regime& r) { return number(r.weight_decay); }},
      {"schedule", [](const Regime& r) { return std::string(to_string(r.schedule)); }},
      {"warmup_epochs", [](const Regime& r) { return number(r.warmup_epochs); }},
      {"label_smoothing", [](const Regime& r) { return number(r.label_smoothing); }},
      {"random_resized_crop", [](const Regime& r) { return on_off(r.random_resized_crop); }},
      {"horizontal_flip", [](const Regime& r) { return on_off(r.horizontal_flip); }},
  };
  return fields;
}

}  // namespace

std::vector<std::string> regime_outside_experience(const Regime& base, const std::vector<ExperienceRecord>& records) {
  std::vector<const ExperienceRecord*> evaluated;
  for (const ExperienceRecord& r : records)
    if (r.best_accuracy >= 0) evaluated.push_back(&r);
  std::vector<std::string> notes;
  if (evaluated.empty()) return notes;
  for (const Field& field : unplanned_fields()) {
    std::optional<std::string> shared = field.value(evaluated.front()->regime);
    for (const ExperienceRecord* r : evaluated)
      if (field.value(r->regime) != *shared) {
        shared.reset();
        break;
      }
    const std::string mine = field.value(base);
    if (shared && mine != *shared)
      notes.push_back(std::string(field.name) + " is " + mine + ", but it is " + *shared + " in " +
                      (evaluated.size() == 1 ? std::string("the one run")
                                             : "all " + std::to_string(evaluated.size()) + " runs") +
                      " of the experience plans are predicted from: the predicted accuracy is for " + field.name +
                      " " + *shared);
  }
  return notes;
}

}  // namespace nasoa::runtime
