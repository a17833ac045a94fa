// runtime/adapt/predictor.h: the fine-tuning performance predictor, which
// says from a task's meta-features, a zoo model's features and a training
// plan what best validation accuracy a fine-tune will reach, and how sure it
// is.
//
// Model: an ensemble of `members` gradient-boosted regression-tree models
// (squared loss, depth-limited, shrinkage, L2-regularised leaves, histogram
// splits on quantile bins, a learned default direction for missing values).
// Each member is fitted on its own bootstrap sample drawn with its own seed,
// where a row's chance to be drawn is proportional to its weight (device
// experience: PredictorOptions::device_weight, 3 by default, the same as
// repeating each device record three times). A probe is optional on the
// device, so each probed row is also taught with its score blanked (a twin
// that shares its row's draws, half the weight each): the trees learn what
// a plan reaches without a probe, where otherwise a missing score would
// follow the higher scores' branch. The
// prediction is the members'
// mean, clamped to [0, 1]; the uncertainty is
//
//   std = min(1/2, sqrt(var(members) + std_floor^2 + (oob_rmse * novelty)^2 + task_rmse^2))
//
// where oob_rmse is the ensemble's out-of-bag error on its training rows,
// novelty the Euclidean length of how far each feature lies outside the
// training range, in units of that feature's training standard deviation,
// and task_rmse the error on a task the fit has not seen: grouped
// cross-validation over the rows' tasks (up to 8 folds of whole tasks, a
// 3-member ensemble per fold, each row predicted as given and, when probed,
// without its score). A bootstrap of rows puts every task in every member,
// so neither the members' spread nor oob_rmse sees how far a new task's
// runs may lie from the experience's; without task_rmse the spread claimed
// a few points where new tasks were off by tens. With fewer than two known
// tasks, nothing can be held out: task_rmse is then the standard deviation
// of the accuracies fitted on (what predicting their mean errs by).
// Trees cannot extrapolate, and their members agree outside the data as much
// as inside it, so the novelty term is what makes a plan unlike anything seen
// less certain. Fitting is deterministic for a seed (own sampling on
// std::mt19937_64's raw output, fixed summation order).
//
// The feature vector is described at kFeatureNames and in docs/adaption.md.
//
// File format: one JSON object {"format": "nasoa-predictor", "format_version",
// "sha256", "model"}, where sha256 is the SHA-256 (hex) of the canonical
// serialization of "model" (compact, keys sorted, nlohmann::json::dump()).
// Doubles are written in their shortest round-trip form, so a loaded
// predictor predicts bit for bit what the saved one did. Written with
// write_file_atomic(): a crash leaves the old file or the new one.
//
// PredictorState keeps a device's learning in a state directory: the device
// records in experience.log (experience_log.h) and the predictor fitted on the
// shipped experience in predictor.json, which names what it was fitted on;
// the device records calibrate it. The shipped bundle is never modified. See the class.
//
// Ownership and threads: Predictor is a value (copyable, movable); its const
// members may be called from several threads at once. PredictorState is
// move-only and used from one thread at a time.
//
// Errors: nasoa::Error. fit(): kInvalidArgument for no usable rows, bad
// options, non-finite targets. load(): kNotFound / kIo for the file, kCorrupt
// naming the file (checksum mismatch, truncation, a malformed field named by
// its path), kUnsupportedVersion for a newer format or another feature set.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "nasoa/regime.h"
#include "nasoa/task.h"
#include "runtime/adapt/experience_coverage.h"
#include "runtime/adapt/experience_log.h"

namespace nasoa::runtime {

inline constexpr int kPredictorFormatVersion = 1;

// The predictor's inputs, in order. Logs are natural; counts are clamped to
// at least 1 before taking a log. Missing values are NaN.
enum Feature : int {
  kLogClasses,            // log(classes)
  kLogImagesPerClass,     // log(train_images / classes)
  kLogTrainImages,        // log(train_images)
  kClassImbalance,        // log(max_per_class / min_per_class)
  kGrayscaleFraction,     // share of one-channel images
  kPixelStd,              // mean of the RGB pixel standard deviations
  kLogImageToInput,       // log(sqrt(mean_width * mean_height) / model input size)
  kLogParameters,         // log(model parameters)
  kLogMacs,               // log(model MACs per image at its input size)
  kUpstreamAccuracy,      // top-1 on the upstream corpus; NaN when unknown
  kLogLearningRate,       // log(peak learning rate)
  kFrozenFraction,        // frozen_stages / num_stages (stem counted)
  kLogBatch,              // log(batch size)
  kEpochs,                // epochs
  kLogSteps,              // log(epochs * ceil(train_images / batch)): optimiser steps
  kLogImagesSeen,         // log(epochs * train_images)
  kAdamW,                 // 1 for AdamW, 0 for SGD
  kLogWeightDecay,        // log10(weight_decay + 1e-6)
  kLabelSmoothing,        // label smoothing
  kProbeScore,            // a transferability probe's score; NaN when none ran
  kFeatureCount
};
using FeatureVector = std::array<double, kFeatureCount>;
extern const std::array<const char*, kFeatureCount> kFeatureNames;

FeatureVector make_features(const TaskMeta& task, std::int64_t train_images, const ModelFeatures& model,
                            const Regime& regime, std::optional<double> probe_score = std::nullopt);
FeatureVector make_features(const ExperienceRecord& record);

struct Prediction {
  double mean = 0;  // best validation accuracy, in [0, 1]
  double std = 0;   // in (0, 1/2]
};

// What the planner needs of a predictor; tests substitute their own.
class AccuracyPredictor {
 public:
  virtual ~AccuracyPredictor() = default;
  // One prediction per row, in order. Must be safe to call concurrently.
  virtual std::vector<Prediction> predict(const std::vector<FeatureVector>& rows) const = 0;
};

struct PredictorOptions {
  int members = 24;            // bootstrap members, >= 1
  int trees = 50;              // boosting rounds per member, >= 1
  int max_depth = 4;           // 1..8
  double shrinkage = 0.1;      // (0, 1]
  double min_leaf_weight = 3;  // bootstrap-weighted rows a leaf needs, > 0
  double l2 = 1.0;             // leaf value = sum / (weight + l2), >= 0
  int max_bins = 64;           // split candidates per feature, 2..254
  double std_floor = 0.01;     // > 0: no prediction is more certain than this
  double device_weight = 3.0;  // draw weight of device rows against shipped ones, > 0
  std::uint64_t seed = 1;
  bool operator==(const PredictorOptions&) const;
};

struct TrainingRow {
  FeatureVector x{};
  double y = 0;       // best validation accuracy in [0, 1]
  double weight = 1;  // relative chance to be drawn into a bootstrap sample, > 0
  int task = -1;      // which task the row is of (rows of one task share it); -1: unknown
};

// Rows from records, device ones weighted by `device_weight`; records never
// evaluated (best_accuracy < 0) are left out.
std::vector<TrainingRow> training_rows(const std::vector<ExperienceRecord>& shipped,
                                       const std::vector<ExperienceRecord>& device, double device_weight);

class Predictor final : public AccuracyPredictor {
 public:
  static Predictor fit(const std::vector<TrainingRow>& rows, const PredictorOptions& options = {});
  static Predictor fit(const std::vector<ExperienceRecord>& shipped, const std::vector<ExperienceRecord>& device,
                       const PredictorOptions& options = {});

  // Refits on both sets with this predictor's options (see fit()); the
  // result was fitted on something new, so fitted_on() is cleared.
  void update(const std::vector<ExperienceRecord>& shipped, const std::vector<ExperienceRecord>& device);

  std::vector<Prediction> predict(const std::vector<FeatureVector>& rows) const override;
  Prediction predict(const FeatureVector& row) const;

  // Calibration to one device's outcomes, which PredictorState applies to
  // the predictor fitted on the shipped experience. Each evaluated device
  // record gives a residual, logit(achieved) - logit(predicted). A prediction
  // then moves, in logit space, by a weighted mean of those residuals, shrunk
  // toward 0 (kCalibrationShrinkage) and weighted by how close the record's
  // task lies to the row's. Closeness is a Gaussian kernel on the task
  // meta-features (kLogClasses .. kLogImageToInput), in units of their spread
  // in the training rows (kCalibrationWidth).
  //
  // Every plan for one task moves by the same amount, so the planner's
  // ranking within a task never changes. A device's few records cannot
  // outweigh a thousand shipped ones, and refitting on them reshuffled
  // near-tied plans for the worse (bench/adaption). What they do teach is how
  // far the shipped experience is off for the tasks this device sees. The
  // spread (std) of a prediction is left as it is.
  //
  // Replaces any earlier calibration; an empty list removes it. Records never
  // evaluated are ignored. Not saved by to_json().
  void calibrate(const std::vector<ExperienceRecord>& device);
  std::size_t calibration_records() const { return calibration_x_.size(); }
  static constexpr double kCalibrationShrinkage = 0.5;  // in units of a record's weight at distance 0
  static constexpr double kCalibrationWidth = 1.0;      // kernel width, in training standard deviations

  const PredictorOptions& options() const { return options_; }
  std::size_t training_rows() const { return training_rows_; }
  double oob_rmse() const { return oob_rmse_; }
  double task_rmse() const { return task_rmse_; }
  // Free text naming what the predictor was fitted on (PredictorState keeps a
  // digest of its experience here); saved with it.
  const std::string& fitted_on() const { return fitted_on_; }
  void set_fitted_on(std::string text) { fitted_on_ = std::move(text); }
  // A summary of the records it was fitted on (what plans it can speak for),
  // set by fit() from records and saved with it; absent for a predictor
  // fitted on bare rows or saved without one.
  const std::optional<ExperienceSummary>& experience() const { return experience_; }

  std::string to_json() const;
  static Predictor from_json(const std::string& text, const std::string& source);
  void save(const std::string& path) const;  // atomically
  static Predictor load(const std::string& path);

  // The fitted model as saved: per member, a base value and its trees.
  struct Node {
    int feature = -1;  // -1: a leaf
    bool missing_left = false;
    double threshold = 0;  // x <= threshold goes left
    int left = -1, right = -1;  // indices within the tree
    double value = 0;      // a leaf's contribution, shrinkage included
  };
  struct Member {
    double base = 0;
    std::vector<std::vector<Node>> trees;
  };
  struct FeatureRange {
    bool seen = false;  // some training row had a value
    double min = 0, max = 0, scale = 1;
  };

 private:
  Predictor() = default;
  // Lays every tree out as a complete binary tree of depth max_depth (a leaf
  // above that depth is carried down by nodes that send everything left), so
  // that predict() walks a fixed number of levels without branching.
  void compile();
  void predict_block(const FeatureVector* rows, std::size_t count, Prediction* out) const;
  double novelty(const FeatureVector& x) const;
  // The calibration's logit shift for one row; 0 without calibration.
  double calibration_shift(const FeatureVector& x) const;
  void apply_calibration(const FeatureVector* rows, std::size_t count, Prediction* out) const;

  int depth_ = 0;
  std::vector<std::int32_t> split_feature_;  // per tree 2^depth - 1 entries
  std::vector<double> split_threshold_;
  std::vector<std::uint8_t> split_missing_left_;
  std::vector<double> leaf_value_;           // per tree 2^depth entries
  std::vector<std::size_t> member_trees_;    // member m: trees member_trees_[m] .. member_trees_[m+1]

  PredictorOptions options_;
  std::vector<Member> members_;
  std::array<FeatureRange, kFeatureCount> ranges_{};
  std::size_t training_rows_ = 0;
  static double task_error(const std::vector<TrainingRow>& rows, const PredictorOptions& options);

  double oob_rmse_ = 0;
  double task_rmse_ = 0;
  std::string fitted_on_;
  std::optional<ExperienceSummary> experience_;
  std::vector<FeatureVector> calibration_x_;  // evaluated device records' features
  std::vector<double> calibration_residual_;  // and their logit residuals
};

// The experience shipped with a zoo bundle: the digest that names its
// records, the bundle's predictor (if any), and the records themselves, read
// only when something needs them. A state that takes the shipped predictor
// needs only the summary it carries, and parsing a full grid's records takes
// longer than the rest of a first plan. Copies share what has been read,
// unguarded: a ShippedExperience and all its copies together are used from
// one thread at a time (an Adapter serves one call at a time).
class ShippedExperience {
 public:
  using RecordReader = std::function<std::vector<ExperienceRecord>()>;

  // No shipped experience.
  ShippedExperience();
  // Records in hand. An empty `digest` is computed from them.
  explicit ShippedExperience(std::vector<ExperienceRecord> records, std::string digest = {},
                             std::optional<Predictor> predictor = std::nullopt);
  // Records read by `read` on first use; `digest` (not empty) must name
  // what it returns, e.g. the manifest's SHA-256 of the bundle's file.
  // `predictor`: already verified against the manifest. What `read` throws
  // reaches the caller of records() (or summary()).
  ShippedExperience(RecordReader read, std::string digest, std::optional<Predictor> predictor);

  const std::string& digest() const;
  // The predictor the bundle ships, if any. A state directory takes it
  // instead of fitting its own when its fitted_on() and options are the ones
  // the directory would fit: on first use and after the bundle is updated,
  // so neither pays for a fit.
  const std::optional<Predictor>& predictor() const;
  // Read on first call.
  const std::vector<ExperienceRecord>& records() const;
  bool records_read() const;
  // What the records hold: the summary the shipped predictor carries when
  // it was fitted on exactly these records (its fitted_on() names this
  // digest), else summarised from records().
  const ExperienceSummary& summary() const;

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

// A device's learning, kept in a state directory:
//
//   experience.log   device records, append-only (experience_log.h)
//   predictor.json   fitted on the shipped records; its fitted_on() is a
//                    digest of the shipped digest and the options
//
// The predictor is fitted on the shipped experience and calibrated to the
// device's records (Predictor::calibrate): record() appends the outcome to
// the log (fsync) and recalibrates, in well under a second, and open()
// recalibrates from the log. Only a bundle that ships no evaluated record
// has its predictor fitted on the device's records, refitted after each one
// (and then fitted_on() covers the log records' checksums too).
//
// open() reads the log (dropping a torn tail and skipping damaged lines,
// reported in damage()). It takes the shipped predictor whenever that is the
// one it would fit (and keeps a copy in predictor.json); otherwise it loads
// predictor.json, and when that is missing, damaged, or fitted on something
// other than what the directory now holds, refits and rewrites it. Killed at any instant, the directory reopens: the log loses at
// most the append in flight, and predictor.json is the old or the new file,
// refitted on open if stale.
class PredictorState {
 public:
  static constexpr const char* kLogFile = "experience.log";
  static constexpr const char* kPredictorFile = "predictor.json";

  // Creates `dir` when missing. Throws kIo when it cannot be read or
  // created (a predictor.json that cannot be written is noted in damage()),
  // what fit() throws for bad options, and, when it must fit a predictor on
  // shipped records not read yet, what reading them throws (the bundle's
  // file changed since it was opened: kCorrupt naming it).
  static PredictorState open(const std::string& dir, ShippedExperience shipped,
                             const PredictorOptions& options = {});

  PredictorState(PredictorState&&) noexcept;
  PredictorState& operator=(PredictorState&&) noexcept;
  PredictorState(const PredictorState&) = delete;
  PredictorState& operator=(const PredictorState&) = delete;
  ~PredictorState();

  // Null while there is no evaluated record at all, shipped or device.
  const Predictor* predictor() const;
  // Evaluated records the predictor rests on, shipped and device together:
  // those it was fitted on and those it is calibrated to.
  std::size_t evaluated_records() const;
  const std::vector<ExperienceRecord>& device_records() const { return device_; }
  // A summary of the records the predictor is fitted on: the shipped ones
  // when any of them was evaluated, else the device's. Reads no shipped
  // record when the shipped predictor carries it (ShippedExperience::summary).
  ExperienceSummary fitted_experience() const;
  // Damage open() found in the log, one line each (see damage_report()),
  // and a predictor.json open() or record() could not write.
  const std::vector<std::string>& damage() const { return damage_; }
  // Whether open() had to refit (predictor.json missing, damaged or stale,
  // and no matching shipped predictor).
  bool refitted_on_open() const { return refitted_on_open_; }
  const std::string& dir() const { return dir_; }

  // Stores `outcome` as device experience (its source is set to kDevice) and
  // learns from it (see the class comment). A run id already in the log is
  // not stored again: false.
  // Throws what append_experience() throws (kInvalidArgument, kIo) before
  // anything changes. Once the record is stored, a predictor.json that
  // cannot be written is not an error: the predictor refitted on it is used
  // in this process, damage() says why the file was not written, and the
  // next open() refits.
  bool record(ExperienceRecord outcome);

  // The fitted_on() of a predictor fitted with `options` on shipped
  // experience of digest `shipped_digest` (the manifest's SHA-256 of the
  // bundle's experience file): what a bundle's predictor carries, so that a
  // fresh state directory starts from it instead of fitting again.
  static std::string shipped_fingerprint(const std::string& shipped_digest, const PredictorOptions& options);

 private:
  PredictorState() = default;
  std::string fingerprint() const;
  void refit_and_save();
  // predictor.json is a copy of what the records call for: one that cannot
  // be written (a full disk, a read-only folder) is noted in damage() and
  // the predictor used unsaved, so that neither a plan nor the record being
  // stored fails for it.
  void save_predictor_copy(const std::function<void(const std::string&)>& save);
  // Whether the predictor is fitted on the shipped records alone (and
  // calibrated to the device's) rather than on the device's records.
  bool fits_shipped() const;
  void learn_from_device();

  std::string dir_;
  ShippedExperience shipped_;
  PredictorOptions options_;
  std::vector<ExperienceRecord> device_;
  std::vector<std::string> device_sha256_;
  std::vector<std::string> damage_;
  std::optional<Predictor> predictor_;
  bool refitted_on_open_ = false;
};

}  // namespace nasoa::runtime
