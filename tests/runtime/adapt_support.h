// tests/runtime/adapt_support.h: records, a synthetic ground truth and device
// profiles for the adapt/ tests, built in code (no training, no files).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "runtime/adapt/experience_log.h"
#include "runtime/profile/device_profile.h"

namespace nasoa::runtime::testing {

inline TaskMeta make_meta(int classes, std::int64_t per_class, double grayscale = 0, double pixel_std = 0.25) {
  TaskMeta m;
  m.classes = classes;
  m.images = std::int64_t(classes) * per_class;
  m.min_per_class = std::max<std::int64_t>(1, per_class / 2);
  m.max_per_class = per_class * 3 / 2;
  m.mean_per_class = double(per_class);
  m.min_width = m.min_height = 48;
  m.max_width = m.max_height = 512;
  m.mean_width = 200;
  m.mean_height = 150;
  m.grayscale_fraction = grayscale;
  m.pixel_mean = {0.5, 0.45, 0.4};
  m.pixel_std = {pixel_std, pixel_std, pixel_std};
  return m;
}

// A fully populated record; `i` varies every field that a test may look at.
inline ExperienceRecord make_record(int i) {
  ExperienceRecord r;
  r.run_id = "run-" + std::to_string(i);
  r.source = i % 2 ? ExperienceSource::kShipped : ExperienceSource::kDevice;
  r.task_id = "task-" + std::to_string(i / 3);
  r.task_name = "flowers \"é\" " + std::to_string(i);  // quotes and non-ASCII survive
  r.task = make_meta(5 + i, 40 + i);
  r.train_images = std::int64_t(5 + i) * (32 + i);
  r.model.name = "model-" + std::to_string(i % 4);
  r.model.encoding = "020-_16_11-21";
  r.model.parameters = 100000 + i;
  r.model.macs = 5000000 + i;
  r.model.input_size = 32;
  r.model.num_stages = 3;
  if (i % 3) r.model.upstream_accuracy = 0.5 + 0.01 * i;
  if (i % 2) r.model.step_seconds = 0.02 + 0.001 * i;
  r.regime.model = r.model.name;
  r.regime.learning_rate = 0.01 * (1 + i % 5);
  r.regime.epochs = 1 + i % 7;
  r.regime.batch_size = 8 << (i % 3);
  r.regime.frozen_stages = i % 3;
  r.regime.optimizer = i % 2 ? OptimizerKind::kAdamW : OptimizerKind::kSgd;
  r.regime.seed = 0xfedcba9876543210ULL + std::uint64_t(i);
  if (i % 2) r.budget_seconds = 60 + i;
  if (i % 3 == 0) r.budget_joules = 900.5 + i;
  for (int e = 1; e <= r.regime.epochs; ++e)
    r.history.push_back(EpochPoint{e, 3.25 * e, 2.0 / e, e == 2 && i % 2 ? -1 : 0.1 * e / r.regime.epochs});
  r.final_accuracy = 0.61 + 0.001 * i;
  r.best_accuracy = 0.62 + 0.001 * i;
  r.total_seconds = 12.5 + i;
  if (i % 2 == 0) r.joules = 101.25 + i;
  r.meter = i % 2 ? "rapl" : "none";
  r.device = "cpu";
  r.stop_reason = "completed";
  if (i % 4 == 1) r.probe_score = 0.33 + 0.01 * i;
  return r;
}

// A stand-in for the world: tasks, models and regimes drawn at random, and an
// accuracy that depends on them the way fine-tuning roughly does (a better
// upstream model, more images per class, fewer classes, a learning rate near
// its optimum and more optimiser steps all help), plus noise.
class SyntheticWorld {
 public:
  explicit SyntheticWorld(std::uint64_t seed, double noise = 0.02) : rng_(seed), noise_(noise) {
    for (int m = 0; m < 6; ++m) {
      ModelFeatures f;
      f.name = "m" + std::to_string(m);
      f.encoding = "020-_16_11-21";
      f.parameters = std::int64_t(2e5 * std::pow(2.0, m));
      f.macs = std::int64_t(1e7 * std::pow(2.2, m));
      f.input_size = 64;
      f.num_stages = 5;
      f.upstream_accuracy = 0.45 + 0.06 * m;
      models_.push_back(f);
    }
  }

  const std::vector<ModelFeatures>& models() const { return models_; }

  TaskMeta random_task() {
    const int classes = int(std::lround(std::exp(uniform(std::log(2.0), std::log(200.0)))));
    const auto per_class = std::int64_t(std::lround(std::exp(uniform(std::log(5.0), std::log(500.0)))));
    return make_meta(classes, per_class, uniform(0, 1) < 0.2 ? 1.0 : 0.0, uniform(0.1, 0.35));
  }

  Regime random_regime(const ModelFeatures& model) {
    Regime r;
    r.model = model.name;
    r.learning_rate = std::exp(uniform(std::log(0.001), std::log(0.3)));
    r.frozen_stages = int(rng_() % std::uint64_t(model.num_stages));
    r.batch_size = 8 << (rng_() % 4);
    r.epochs = 1 + int(rng_() % 30);
    return r;
  }

  ExperienceRecord record(const TaskMeta& task, const ModelFeatures& model, const Regime& regime,
                          const std::string& id, double shift = 0) {
    ExperienceRecord r;
    r.run_id = id;
    r.source = ExperienceSource::kShipped;
    r.task_id = id;
    r.task = task;
    r.train_images = std::int64_t(double(task.images) * 0.8);
    r.model = model;
    r.regime = regime;
    r.best_accuracy = std::clamp(truth(r) + shift + normal() * noise_, 0.0, 1.0);
    r.final_accuracy = r.best_accuracy;
    r.total_seconds = 10;
    r.device = "cpu";
    r.stop_reason = "completed";
    return r;
  }

  ExperienceRecord random_record(const std::string& id) {
    const ModelFeatures& m = models_[rng_() % models_.size()];
    return record(random_task(), m, random_regime(m), id);
  }

  std::vector<ExperienceRecord> records(int n, const std::string& prefix) {
    std::vector<ExperienceRecord> out;
    for (int i = 0; i < n; ++i) out.push_back(random_record(prefix + std::to_string(i)));
    return out;
  }

  // The noise-free accuracy of a record's task, model and regime.
  static double truth(const ExperienceRecord& r) {
    const double classes = r.task.classes;
    const double per_class = double(effective_train_images(r)) / classes;
    const double steps = r.regime.epochs * std::ceil(double(effective_train_images(r)) / r.regime.batch_size);
    const double lr_off = std::log10(r.regime.learning_rate) - std::log10(0.03);
    const double frozen = double(r.regime.frozen_stages) / r.model.num_stages;
    const double y = 0.2 + 0.6 * r.model.upstream_accuracy.value_or(0.5) + 0.15 * std::tanh(std::log(per_class) / 3) -
                     0.04 * std::log(classes) - 0.06 * lr_off * lr_off + 0.2 * (1 - std::exp(-steps / 300.0)) -
                     0.05 * frozen - 0.03 * r.task.grayscale_fraction;
    return std::clamp(y, 0.0, 1.0);
  }

  double uniform(double lo, double hi) { return lo + (hi - lo) * double(rng_() >> 11) * 0x1.0p-53; }
  double normal() {
    const double u1 = std::max(uniform(0, 1), 1e-12), u2 = uniform(0, 1);
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }

 private:
  std::mt19937_64 rng_;
  double noise_;
  std::vector<ModelFeatures> models_;
};

// A profile measured every batch size x frozen count of `models`: step time
// affine in the batch and shrinking with frozen stages, memory and watts
// growing with the batch. `watts` false leaves power unmeasured.
inline DeviceProfile make_profile(const std::vector<ModelFeatures>& models, bool watts = true,
                                  std::vector<int> batch_sizes = {8, 16, 32, 64}) {
  DeviceProfile p;
  p.date = "2024-01-01T00:00:00Z";
  p.device.device = "cpu";
  p.device.cpu_cores = 2;
  p.device.threads = 2;
  p.bundle_name = "synthetic";
  p.batch_sizes = batch_sizes;
  p.memory_method = "vmhwm-reset";
  p.meter = watts ? "rapl" : "none";
  p.meter_measured = watts;
  for (std::size_t i = 0; i < models.size(); ++i) {
    const ModelFeatures& f = models[i];
    ModelProfile m;
    m.model = BundleModelEntry{f.name, f.encoding, f.input_size, 10};
    m.num_stages = f.num_stages;
    const double scale = double(f.macs) / 1e7;
    m.inference_seconds_per_image_batch1 = 0.002 * scale;
    m.inference_seconds_per_image_batch64 = 0.0005 * scale;
    for (int frozen = 0; frozen <= f.num_stages; ++frozen)
      for (int b : batch_sizes) {
        StepTiming s;
        s.batch_size = b;
        s.frozen_stages = frozen;
        s.step_seconds = (0.004 + 0.0015 * b * scale) * (1.0 - 0.15 * frozen / f.num_stages);
        s.peak_rss_bytes = std::int64_t((200 + 4 * b * scale * (1.0 - 0.1 * frozen)) * 1024 * 1024);
        s.rss_increase_bytes = *s.peak_rss_bytes / 2;
        if (watts) s.watts = 10 + b * 0.1 + i;
        m.steps.push_back(s);
      }
    p.bundle_models.push_back(m.model);
    p.models.push_back(m);
  }
  return p;
}

}  // namespace nasoa::runtime::testing
