#include "nasoa/regime.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "nasoa/error.h"

namespace nasoa {
namespace {

void require(bool ok, const char* field, double value, const std::string& expected) {
  if (ok) return;
  std::ostringstream shown;  // "32" and "1e+300", not "32.000000" and 300 digits
  shown.precision(15);
  shown << value;
  throw Error(ErrorCode::kInvalidArgument,
              std::string("regime field ") + field + " = " + shown.str() + ": expected " + expected);
}

// LibTorch's optimisers take these as float.
bool float_number(double v) { return std::isfinite(v) && std::abs(v) <= double(std::numeric_limits<float>::max()); }

}  // namespace

void validate(const Regime& r) {
  if (r.model.empty()) throw Error(ErrorCode::kInvalidArgument, "regime field model is empty");
  require(r.learning_rate > 0 && float_number(r.learning_rate), "learning_rate", r.learning_rate, "> 0 and finite");
  require(r.epochs >= 1, "epochs", r.epochs, ">= 1");
  require(r.batch_size >= 1, "batch_size", r.batch_size, ">= 1");
  require(r.frozen_stages >= 0, "frozen_stages", r.frozen_stages, ">= 0");
  require(r.momentum >= 0 && r.momentum < 1, "momentum", r.momentum, "in [0, 1)");
  require(r.weight_decay >= 0 && float_number(r.weight_decay), "weight_decay", r.weight_decay, ">= 0 and finite");
  require(r.warmup_epochs >= 0 && std::isfinite(r.warmup_epochs), "warmup_epochs", r.warmup_epochs, ">= 0 and finite");
  // A warm-up as long as the run never decays, and may never reach the peak.
  if (r.schedule == ScheduleKind::kCosine)
    require(r.warmup_epochs < r.epochs, "warmup_epochs", r.warmup_epochs,
            "less than epochs (" + std::to_string(r.epochs) + ") with the cosine schedule");
  require(r.label_smoothing >= 0 && r.label_smoothing < 1, "label_smoothing", r.label_smoothing, "in [0, 1)");
  require(r.validation_fraction > 0 && r.validation_fraction < 1, "validation_fraction",
          r.validation_fraction, "in (0, 1)");
  // An enum cast from an integer (a config file, a bad JSON reader) would
  // otherwise run as whichever kind the code tests last.
  require(r.optimizer == OptimizerKind::kSgd || r.optimizer == OptimizerKind::kAdamW, "optimizer",
          static_cast<double>(r.optimizer), "sgd (0) or adamw (1)");
  require(r.schedule == ScheduleKind::kCosine || r.schedule == ScheduleKind::kStep, "schedule",
          static_cast<double>(r.schedule), "cosine (0) or step (1)");
}

double learning_rate_at(const Regime& r, double done) {
  if (r.schedule == ScheduleKind::kStep) {
    const double f = done / r.epochs;
    return r.learning_rate * (f < 0.5 ? 1.0 : f < 0.75 ? 0.1 : 0.01);
  }
  if (done < r.warmup_epochs) return r.learning_rate * done / r.warmup_epochs;
  const double span = std::max(1e-9, r.epochs - r.warmup_epochs);
  const double progress = std::min(1.0, (done - r.warmup_epochs) / span);
  return 0.5 * r.learning_rate * (1.0 + std::cos(M_PI * progress));
}

const char* to_string(OptimizerKind kind) { return kind == OptimizerKind::kSgd ? "sgd" : "adamw"; }
const char* to_string(ScheduleKind kind) { return kind == ScheduleKind::kCosine ? "cosine" : "step"; }

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::kSgd;
  if (name == "adamw") return OptimizerKind::kAdamW;
  throw Error(ErrorCode::kInvalidArgument, "unknown optimizer '" + name + "' (sgd or adamw)");
}

ScheduleKind parse_schedule(const std::string& name) {
  if (name == "cosine") return ScheduleKind::kCosine;
  if (name == "step") return ScheduleKind::kStep;
  throw Error(ErrorCode::kInvalidArgument, "unknown schedule '" + name + "' (cosine or step)");
}

}  // namespace nasoa
