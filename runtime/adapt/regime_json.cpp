#include "runtime/adapt/regime_json.h"

#include <cstdint>
#include <string>

#include "nasoa/error.h"

namespace nasoa::runtime::detail {

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

Regime read_regime(const Fields& f) {
  Regime r;
  r.model = f.string("model");
  r.learning_rate = f.number("learning_rate");
  r.epochs = int(f.integer("epochs", 0, INT32_MAX));
  r.batch_size = int(f.integer("batch_size", 0, INT32_MAX));
  r.frozen_stages = int(f.integer("frozen_stages", 0, INT32_MAX));
  const std::string optimizer = f.string("optimizer"), schedule = f.string("schedule");
  try {
    r.optimizer = parse_optimizer(optimizer);
  } catch (const Error& e) {
    f.fail(f.at("optimizer"), e.what());
  }
  try {
    r.schedule = parse_schedule(schedule);
  } catch (const Error& e) {
    f.fail(f.at("schedule"), e.what());
  }
  r.momentum = f.number("momentum");
  r.weight_decay = f.number("weight_decay");
  r.warmup_epochs = f.number("warmup_epochs");
  r.label_smoothing = f.number("label_smoothing");
  r.random_resized_crop = f.boolean("random_resized_crop");
  r.horizontal_flip = f.boolean("horizontal_flip");
  r.validation_fraction = f.number("validation_fraction");
  const Json& seed = f.get("seed");
  if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<std::int64_t>() >= 0))
    f.fail(f.at("seed"), "expected a non-negative integer, got " + detail::describe_value(seed));
  r.seed = seed.get<std::uint64_t>();
  try {
    validate(r);
  } catch (const Error& e) {
    f.fail(f.at("*"), e.what());
  }
  return r;
}

}  // namespace nasoa::runtime::detail
