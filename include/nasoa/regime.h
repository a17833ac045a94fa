// nasoa/regime.h: a training regime, everything that decides how a zoo model
// is fine-tuned on a task. Plain data; copy it freely.
#pragma once

#include <cstdint>
#include <string>

#include "nasoa/export.h"

namespace nasoa {

enum class OptimizerKind { kSgd, kAdamW };
enum class ScheduleKind { kCosine, kStep };

struct Regime {
  std::string model;            // name of a model in the zoo
  double learning_rate = 0.01;  // peak rate, reached after the warm-up
  int epochs = 10;
  int batch_size = 32;
  int frozen_stages = 0;        // the first k stages (stem = stage 0) are not trained,
                                // and their BatchNorm statistics stay as pretrained
                                // (eval mode), unlike requires_grad(false) in PyTorch
  OptimizerKind optimizer = OptimizerKind::kSgd;
  double momentum = 0.9;        // SGD momentum; AdamW's beta1
  double weight_decay = 1e-4;
  ScheduleKind schedule = ScheduleKind::kCosine;
  double warmup_epochs = 0.5;   // linear warm-up from 0 (cosine schedule only; < epochs)
  double label_smoothing = 0.1;
  bool random_resized_crop = true;
  // Off unless asked: mirroring changes the class of text, digits, arrows and
  // signs, and the shipped experience (what plans are predicted from) trains
  // without it. Turn it on for subjects that look the same mirrored.
  bool horizontal_flip = false;
  double validation_fraction = 0.2;  // of each class, when the task has no validation folder
  std::uint64_t seed = 0;
};

// Throws Error{kInvalidArgument} naming the first field out of range
// (learning_rate > 0, epochs >= 1, batch_size >= 1, frozen_stages >= 0,
// momentum in [0, 1), weight_decay >= 0, label_smoothing in [0, 1),
// warmup_epochs >= 0, validation_fraction in (0, 1), model not empty).
NASOA_API void validate(const Regime& regime);

// The learning rate after `epochs_done` (fractional) epochs: cosine decay to 0
// after a linear warm-up, or a step schedule dividing by 10 at 1/2 and 3/4.
// Fine-tuning trains each step at the rate of the step's middle, so no step
// runs at 0: a one-epoch run of a single step trains at the rate of epoch
// 0.5, the full peak with the default half-epoch warm-up, half of it under a
// cosine schedule without warm-up.
NASOA_API double learning_rate_at(const Regime& regime, double epochs_done);

NASOA_API const char* to_string(OptimizerKind kind);
NASOA_API const char* to_string(ScheduleKind kind);
// "sgd" / "adamw", "cosine" / "step". Throw Error{kInvalidArgument}.
NASOA_API OptimizerKind parse_optimizer(const std::string& name);
NASOA_API ScheduleKind parse_schedule(const std::string& name);

}  // namespace nasoa
