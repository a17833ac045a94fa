#include "runtime/adapt/predictor.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <tuple>
#include <unordered_set>

#include "nasoa/error.h"
#include "runtime/adapt/json_fields.h"
#include "runtime/adapt/regime_json.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"

namespace nasoa::runtime {

const std::array<const char*, kFeatureCount> kFeatureNames = {
    "log_classes",      "log_images_per_class", "log_train_images", "class_imbalance", "grayscale_fraction",
    "pixel_std",        "log_image_to_input",   "log_parameters",   "log_macs",        "upstream_accuracy",
    "log_learning_rate", "frozen_fraction",     "log_batch",        "epochs",          "log_steps",
    "log_images_seen",  "adamw",                "log_weight_decay", "label_smoothing", "probe_score"};

namespace {

using detail::Fields;
using detail::Json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr char kFormatName[] = "nasoa-predictor";

// Counts are at least 1 before their log, so that empty inputs stay finite.
double log_count(double v) { return std::log(std::max(v, 1.0)); }

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// std::uniform_real_distribution's output differs between standard
// libraries; the engine's raw output does not.
double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

[[noreturn]] void bad_option(const std::string& field, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, "predictor option '" + field + "': " + what);
}

void check_options(const PredictorOptions& o) {
  if (o.members < 1) bad_option("members", std::to_string(o.members) + " is below 1");
  if (o.trees < 1) bad_option("trees", std::to_string(o.trees) + " is below 1");
  if (o.max_depth < 1 || o.max_depth > 8) bad_option("max_depth", std::to_string(o.max_depth) + " is outside 1..8");
  if (!(o.shrinkage > 0 && o.shrinkage <= 1)) bad_option("shrinkage", std::to_string(o.shrinkage) + " is outside (0, 1]");
  if (!(o.min_leaf_weight > 0) || !std::isfinite(o.min_leaf_weight))
    bad_option("min_leaf_weight", std::to_string(o.min_leaf_weight) + " is not positive");
  if (!(o.l2 >= 0) || !std::isfinite(o.l2)) bad_option("l2", std::to_string(o.l2) + " is negative");
  if (o.max_bins < 2 || o.max_bins > 254) bad_option("max_bins", std::to_string(o.max_bins) + " is outside 2..254");
  if (!(o.std_floor > 0) || !std::isfinite(o.std_floor))
    bad_option("std_floor", std::to_string(o.std_floor) + " is not positive");
  if (!(o.device_weight > 0) || !std::isfinite(o.device_weight))
    bad_option("device_weight", std::to_string(o.device_weight) + " is not positive");
}

Json options_json(const PredictorOptions& o) {
  return Json{{"members", o.members},         {"trees", o.trees},   {"max_depth", o.max_depth},
              {"shrinkage", o.shrinkage},     {"min_leaf_weight", o.min_leaf_weight},
              {"l2", o.l2},                   {"max_bins", o.max_bins},
              {"std_floor", o.std_floor},     {"device_weight", o.device_weight},
              {"seed", o.seed}};
}

PredictorOptions read_options(const Fields& f) {
  PredictorOptions o;
  o.members = int(f.integer("members", 1, 1 << 20));
  o.trees = int(f.integer("trees", 1, 1 << 20));
  o.max_depth = int(f.integer("max_depth", 1, 8));
  o.shrinkage = f.number("shrinkage", 0, 1);
  o.min_leaf_weight = f.number("min_leaf_weight", 0);
  o.l2 = f.number("l2", 0);
  o.max_bins = int(f.integer("max_bins", 2, 254));
  o.std_floor = f.number("std_floor", 0);
  o.device_weight = f.number("device_weight", 0);
  const Json& seed = f.get("seed");
  if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<std::int64_t>() >= 0))
    f.fail(f.at("seed"), "expected a non-negative integer, got " + detail::describe_value(seed));
  o.seed = seed.get<std::uint64_t>();
  try {
    check_options(o);
  } catch (const Error& e) {
    f.fail(f.at("*"), e.what());
  }
  return o;
}

// Split candidates of one feature: x <= cuts[b] falls in bins 0..b. Values
// are binned once for all members; bin cuts.size() + 1 holds missing values.
std::vector<double> make_cuts(std::vector<double> values, int max_bins) {
  std::sort(values.begin(), values.end());
  std::vector<double> distinct = values;
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<double> cuts;
  if (distinct.size() < 2) return cuts;
  if (distinct.size() <= std::size_t(max_bins)) {
    for (std::size_t i = 0; i + 1 < distinct.size(); ++i) cuts.push_back(0.5 * (distinct[i] + distinct[i + 1]));
    return cuts;
  }
  for (int k = 1; k < max_bins; ++k) {
    const double q = values[std::size_t(k) * values.size() / std::size_t(max_bins)];
    const auto next = std::upper_bound(distinct.begin(), distinct.end(), q);
    if (next == distinct.end()) break;
    const double cut = 0.5 * (q + *next);
    if (cuts.empty() || cut > cuts.back()) cuts.push_back(cut);
  }
  return cuts;
}

double tree_value(const std::vector<Predictor::Node>& tree, const FeatureVector& x) {
  int i = 0;
  while (tree[std::size_t(i)].feature >= 0) {
    const Predictor::Node& n = tree[std::size_t(i)];
    const double v = x[std::size_t(n.feature)];
    i = std::isnan(v) ? (n.missing_left ? n.left : n.right) : (v <= n.threshold ? n.left : n.right);
  }
  return tree[std::size_t(i)].value;
}

// Grows one regression tree on the residuals `g` with row weights `w`.
class TreeBuilder {
 public:
  TreeBuilder(const PredictorOptions& options, const std::vector<std::uint8_t>& bins, std::size_t rows,
              const std::vector<std::vector<double>>& cuts)
      : o_(options), bins_(bins), n_(rows), cuts_(cuts) {
    for (const auto& c : cuts_) offsets_.push_back(width_), width_ += c.size() + 2;
    hg_.resize(width_);
    hw_.resize(width_);
  }

  std::vector<Predictor::Node> grow(std::vector<int>& rows, const std::vector<double>& w,
                                    const std::vector<double>& g) {
    w_ = &w;
    g_ = &g;
    nodes_.clear();
    build(rows.data(), rows.data() + rows.size(), 0);
    return nodes_;
  }

 private:
  int build(int* begin, int* end, int depth) {
    const std::vector<double>& w = *w_;
    const std::vector<double>& g = *g_;
    double G = 0, W = 0;
    for (const int* r = begin; r != end; ++r) G += w[std::size_t(*r)] * g[std::size_t(*r)], W += w[std::size_t(*r)];
    const int index = int(nodes_.size());
    nodes_.emplace_back();
    nodes_.back().value = o_.shrinkage * G / (W + o_.l2);
    if (depth >= o_.max_depth || W < 2 * o_.min_leaf_weight) return index;

    std::fill(hg_.begin(), hg_.end(), 0.0);
    std::fill(hw_.begin(), hw_.end(), 0.0);
    for (std::size_t f = 0; f < cuts_.size(); ++f) {
      if (cuts_[f].empty()) continue;
      const std::uint8_t* column = bins_.data() + f * n_;
      double* hg = hg_.data() + offsets_[f];
      double* hw = hw_.data() + offsets_[f];
      for (const int* r = begin; r != end; ++r) {
        const std::size_t i = std::size_t(*r);
        hg[column[i]] += w[i] * g[i];
        hw[column[i]] += w[i];
      }
    }
    const double parent = G * G / (W + o_.l2);
    double best_gain = 1e-12 * std::max(1.0, parent);
    int best_feature = -1, best_bin = 0;
    bool best_missing_left = false;
    auto score = [&](double sg, double sw) { return sg * sg / (sw + o_.l2); };
    for (std::size_t f = 0; f < cuts_.size(); ++f) {
      const std::size_t bins = cuts_[f].size() + 1;  // non-missing bins
      if (bins < 2) continue;
      const double* hg = hg_.data() + offsets_[f];
      const double* hw = hw_.data() + offsets_[f];
      const double mg = hg[bins], mw = hw[bins];
      double lg = 0, lw = 0;
      for (std::size_t b = 0; b + 1 < bins; ++b) {
        lg += hg[b], lw += hw[b];
        const double rg = G - mg - lg, rw = W - mw - lw;
        if (lw >= o_.min_leaf_weight && rw + mw >= o_.min_leaf_weight) {
          const double gain = score(lg, lw) + score(rg + mg, rw + mw) - parent;
          if (gain > best_gain) best_gain = gain, best_feature = int(f), best_bin = int(b), best_missing_left = false;
        }
        if (mw > 0 && lw + mw >= o_.min_leaf_weight && rw >= o_.min_leaf_weight) {
          const double gain = score(lg + mg, lw + mw) + score(rg, rw) - parent;
          if (gain > best_gain) best_gain = gain, best_feature = int(f), best_bin = int(b), best_missing_left = true;
        }
      }
    }
    if (best_feature < 0) return index;

    const std::uint8_t* column = bins_.data() + std::size_t(best_feature) * n_;
    const auto missing = std::uint8_t(cuts_[std::size_t(best_feature)].size() + 1);
    int* middle = std::partition(begin, end, [&](int r) {
      const std::uint8_t b = column[std::size_t(r)];
      return b == missing ? best_missing_left : b <= best_bin;
    });
    const int left = build(begin, middle, depth + 1);
    const int right = build(middle, end, depth + 1);
    Predictor::Node& node = nodes_[std::size_t(index)];
    node.feature = best_feature;
    node.missing_left = best_missing_left;
    node.threshold = cuts_[std::size_t(best_feature)][std::size_t(best_bin)];
    node.left = left;
    node.right = right;
    node.value = 0;
    return index;
  }

  const PredictorOptions& o_;
  const std::vector<std::uint8_t>& bins_;
  std::size_t n_;
  const std::vector<std::vector<double>>& cuts_;
  std::vector<std::size_t> offsets_;
  std::size_t width_ = 0;
  std::vector<double> hg_, hw_;
  const std::vector<double>* w_ = nullptr;
  const std::vector<double>* g_ = nullptr;
  std::vector<Predictor::Node> nodes_;
};

Json tree_json(const std::vector<Predictor::Node>& tree) {
  Json feature = Json::array(), missing = Json::array(), threshold = Json::array(), left = Json::array(),
       right = Json::array(), value = Json::array();
  for (const Predictor::Node& n : tree) {
    feature.push_back(n.feature);
    missing.push_back(n.missing_left ? 1 : 0);
    threshold.push_back(n.threshold);
    left.push_back(n.left);
    right.push_back(n.right);
    value.push_back(n.value);
  }
  return Json{{"feature", feature}, {"missing_left", missing}, {"threshold", threshold},
              {"left", left},       {"right", right},          {"value", value}};
}

std::vector<Predictor::Node> read_tree(const Fields& f, int max_depth) {
  const Json& feature = f.array("feature");
  const std::size_t n = feature.size();
  if (n == 0) f.fail(f.at("feature"), "a tree needs at least one node");
  for (const char* key : {"missing_left", "threshold", "left", "right", "value"})
    if (f.array(key).size() != n)
      f.fail(f.at(key), "has " + std::to_string(f.array(key).size()) + " entries, 'feature' has " + std::to_string(n));
  std::vector<Predictor::Node> tree(n);
  auto element = [&](const char* key, std::size_t i) -> const Json& {
    const Json& v = f.array(key)[i];
    if (!v.is_number()) f.fail(f.at(key) + "[" + std::to_string(i) + "]", "expected a number, got " + detail::describe_value(v));
    return v;
  };
  for (std::size_t i = 0; i < n; ++i) {
    Predictor::Node& node = tree[i];
    const std::string where = "[" + std::to_string(i) + "]";
    const Json& fe = element("feature", i);
    if (!fe.is_number_integer() || fe.get<std::int64_t>() < -1 || fe.get<std::int64_t>() >= kFeatureCount)
      f.fail(f.at("feature") + where, "expected -1 or a feature index, got " + detail::describe_value(fe));
    node.feature = int(fe.get<std::int64_t>());
    node.missing_left = element("missing_left", i).get<double>() != 0;
    node.threshold = element("threshold", i).get<double>();
    node.value = element("value", i).get<double>();
    if (!std::isfinite(node.threshold) || !std::isfinite(node.value))
      f.fail(f.at("threshold") + where, "not finite");
    if (node.feature >= 0) {
      // Children after their parent: no cycles, so predict() always ends.
      for (const char* key : {"left", "right"}) {
        const Json& c = element(key, i);
        if (!c.is_number_integer() || c.get<std::int64_t>() <= std::int64_t(i) || c.get<std::int64_t>() >= std::int64_t(n))
          f.fail(f.at(key) + where, "child index " + detail::describe_value(c) + " is not after node " + std::to_string(i) + " in the tree");
      }
      node.left = int(f.array("left")[i].get<std::int64_t>());
      node.right = int(f.array("right")[i].get<std::int64_t>());
    }
  }
  std::vector<int> depth(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (tree[i].feature < 0) continue;
    for (int child : {tree[i].left, tree[i].right}) {
      depth[std::size_t(child)] = std::max(depth[std::size_t(child)], depth[i] + 1);
      if (depth[std::size_t(child)] > max_depth)
        f.fail(f.at("left"), "the tree is deeper than options.max_depth (" + std::to_string(max_depth) + ")");
    }
  }
  return tree;
}

}  // namespace

bool PredictorOptions::operator==(const PredictorOptions& o) const {
  return members == o.members && trees == o.trees && max_depth == o.max_depth && shrinkage == o.shrinkage &&
         min_leaf_weight == o.min_leaf_weight && l2 == o.l2 && max_bins == o.max_bins && std_floor == o.std_floor &&
         device_weight == o.device_weight && seed == o.seed;
}

FeatureVector make_features(const TaskMeta& task, std::int64_t train_images, const ModelFeatures& model,
                            const Regime& regime, std::optional<double> probe_score) {
  FeatureVector x;
  x.fill(kNaN);
  const double classes = std::max(1, task.classes);
  const double images = std::max<std::int64_t>(1, train_images);
  const double batch = std::max(1, regime.batch_size);
  const double epochs = std::max(0, regime.epochs);
  x[kLogClasses] = std::log(classes);
  x[kLogImagesPerClass] = log_count(images / classes);
  x[kLogTrainImages] = std::log(images);
  x[kClassImbalance] = std::log(std::max<double>(1, double(task.max_per_class)) /
                                std::max<double>(1, double(task.min_per_class)));
  x[kGrayscaleFraction] = task.grayscale_fraction;
  x[kPixelStd] = (task.pixel_std[0] + task.pixel_std[1] + task.pixel_std[2]) / 3;
  const double side = std::sqrt(task.mean_width * task.mean_height);
  if (side > 0 && model.input_size > 0) x[kLogImageToInput] = std::log(side / model.input_size);
  x[kLogParameters] = log_count(double(model.parameters));
  x[kLogMacs] = log_count(double(model.macs));
  if (model.upstream_accuracy) x[kUpstreamAccuracy] = *model.upstream_accuracy;
  if (regime.learning_rate > 0) x[kLogLearningRate] = std::log(regime.learning_rate);
  if (model.num_stages > 0) x[kFrozenFraction] = double(regime.frozen_stages) / model.num_stages;
  x[kLogBatch] = std::log(batch);
  x[kEpochs] = epochs;
  x[kLogSteps] = log_count(epochs * std::ceil(images / batch));
  x[kLogImagesSeen] = log_count(epochs * images);
  x[kAdamW] = regime.optimizer == OptimizerKind::kAdamW ? 1 : 0;
  x[kLogWeightDecay] = std::log10(std::max(0.0, regime.weight_decay) + 1e-6);
  x[kLabelSmoothing] = regime.label_smoothing;
  if (probe_score) x[kProbeScore] = *probe_score;
  // A value that overflowed (a hand-made record's extremes) is unknown, as a
  // missing one is, rather than a row that stops every fit.
  for (double& v : x)
    if (std::isinf(v)) v = kNaN;
  return x;
}

FeatureVector make_features(const ExperienceRecord& r) {
  return make_features(r.task, effective_train_images(r), r.model, r.regime, r.probe_score);
}

std::vector<TrainingRow> training_rows(const std::vector<ExperienceRecord>& shipped,
                                       const std::vector<ExperienceRecord>& device, double device_weight) {
  std::vector<TrainingRow> rows;
  rows.reserve(shipped.size() + device.size());
  std::map<std::string, int> tasks;  // task id -> its index, in order of first appearance
  for (const auto* set : {&shipped, &device})
    for (const ExperienceRecord& r : *set)
      if (r.best_accuracy >= 0) {
        const int task = tasks.emplace(r.task_id, int(tasks.size())).first->second;
        rows.push_back(TrainingRow{make_features(r), r.best_accuracy, set == &device ? device_weight : 1.0, task});
      }
  return rows;
}

Predictor Predictor::fit(const std::vector<TrainingRow>& rows, const PredictorOptions& options) {
  check_options(options);
  if (rows.empty()) throw Error(ErrorCode::kInvalidArgument, "no evaluated experience to fit the predictor on");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!std::isfinite(rows[i].y))
      throw Error(ErrorCode::kInvalidArgument, "training row " + std::to_string(i) + ": target is not finite");
    if (!(rows[i].weight > 0) || !std::isfinite(rows[i].weight))
      throw Error(ErrorCode::kInvalidArgument, "training row " + std::to_string(i) + ": weight " +
                                                   std::to_string(rows[i].weight) + " is not positive");
    for (double v : rows[i].x)
      if (std::isinf(v))
        throw Error(ErrorCode::kInvalidArgument, "training row " + std::to_string(i) + ": a feature is infinite");
  }
  // A probe is optional on the device (off by default), so the trees must
  // learn what a plan reaches without one. Were every row probed, no split
  // would see a missing score and a missing one would follow the default
  // branch, the higher scores': each probed row is also taught with its
  // score blanked, a twin that shares its row's draws (half each).
  const std::size_t rows_given = rows.size();
  std::vector<TrainingRow> taught(rows);
  std::vector<std::size_t> twin_of;  // taught[rows_given + j] twins taught[twin_of[j]]
  for (std::size_t i = 0; i < rows_given; ++i)
    if (!std::isnan(rows[i].x[kProbeScore])) {
      TrainingRow twin = rows[i];
      twin.x[kProbeScore] = kNaN;
      taught.push_back(twin);
      twin_of.push_back(i);
    }
  const std::size_t n = taught.size();
  Predictor p;
  p.options_ = options;
  p.training_rows_ = rows_given;

  std::vector<std::vector<double>> cuts(kFeatureCount);
  std::vector<std::uint8_t> bins(kFeatureCount * n);
  for (std::size_t f = 0; f < kFeatureCount; ++f) {
    std::vector<double> values;
    for (std::size_t i = 0; i < rows_given; ++i)
      if (!std::isnan(rows[i].x[f])) values.push_back(rows[i].x[f]);
    FeatureRange& range = p.ranges_[f];
    if (!values.empty()) {
      range.seen = true;
      range.min = *std::min_element(values.begin(), values.end());
      range.max = *std::max_element(values.begin(), values.end());
      const double mean = std::accumulate(values.begin(), values.end(), 0.0) / double(values.size());
      double ss = 0;
      for (double v : values) ss += (v - mean) * (v - mean);
      const double sd = std::sqrt(ss / double(values.size()));
      range.scale = sd > 1e-12 ? sd : 1.0;
    }
    cuts[f] = make_cuts(std::move(values), options.max_bins);
    const auto missing = std::uint8_t(cuts[f].size() + 1);
    for (std::size_t i = 0; i < n; ++i) {
      const double v = taught[i].x[f];
      bins[f * n + i] = std::isnan(v) ? missing
                                      : std::uint8_t(std::lower_bound(cuts[f].begin(), cuts[f].end(), v) - cuts[f].begin());
    }
  }

  std::vector<double> cumulative(rows_given);
  double total = 0;
  for (std::size_t i = 0; i < rows_given; ++i) cumulative[i] = total += rows[i].weight;

  TreeBuilder builder(options, bins, n, cuts);
  std::vector<double> oob_sum(rows_given, 0.0), oob_count(rows_given, 0.0);  // of the rows as given
  std::vector<double> w(n), g(n), pred(n);
  std::vector<int> active;
  for (int m = 0; m < options.members; ++m) {
    std::mt19937_64 rng(splitmix64(options.seed * 0x100000001b3ULL + std::uint64_t(m)));
    std::fill(w.begin(), w.end(), 0.0);
    for (std::size_t draw = 0; draw < rows_given; ++draw) {
      const double u = uniform01(rng) * total;
      const auto i = std::size_t(std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin());
      w[std::min(i, rows_given - 1)] += 1;
    }
    // A probed row and its twin share the row's draws: each record keeps
    // its weight, against min_leaf_weight, l2 and device_weight alike.
    for (std::size_t j = 0; j < twin_of.size(); ++j) w[rows_given + j] = w[twin_of[j]] /= 2;
    double sw = 0, swy = 0;
    active.clear();
    for (std::size_t i = 0; i < n; ++i)
      if (w[i] > 0) active.push_back(int(i)), sw += w[i], swy += w[i] * taught[i].y;
    Member member;
    member.base = swy / sw;
    std::fill(pred.begin(), pred.end(), member.base);
    member.trees.reserve(std::size_t(options.trees));
    for (int t = 0; t < options.trees; ++t) {
      for (int i : active) g[std::size_t(i)] = taught[std::size_t(i)].y - pred[std::size_t(i)];
      member.trees.push_back(builder.grow(active, w, g));
      for (std::size_t i = 0; i < n; ++i) pred[i] += tree_value(member.trees.back(), taught[i].x);
    }
    // Out of bag: the rows as given (a twin is out of bag with its row).
    for (std::size_t i = 0; i < rows_given; ++i)
      if (w[i] == 0) oob_sum[i] += pred[i], oob_count[i] += 1;
    p.members_.push_back(std::move(member));
  }
  double se = 0, counted = 0;
  for (std::size_t i = 0; i < rows_given; ++i)
    if (oob_count[i] > 0) {
      const double e = oob_sum[i] / oob_count[i] - rows[i].y;
      se += e * e, counted += 1;
    }
  p.oob_rmse_ = counted > 0 ? std::sqrt(se / counted) : 0.0;
  p.compile();
  p.task_rmse_ = task_error(rows, options);
  return p;
}

// The error on tasks left out of the fit: whole tasks in up to 8 folds, a
// small ensemble fitted on the other folds (its rows' tasks unknown, so it
// does not recurse), each row of the fold predicted as given and, when
// probed, without its score (as a device plans by default).
double Predictor::task_error(const std::vector<TrainingRow>& rows, const PredictorOptions& options) {
  std::set<int> tasks;
  for (const TrainingRow& r : rows)
    if (r.task >= 0) tasks.insert(r.task);
  if (tasks.size() < 2) {
    // Nothing to hold out: a new task's error cannot be measured. Taken as
    // the spread of the accuracies learnt from, what predicting their mean
    // would err by, rather than 0, which claimed the confidence of the runs
    // of one known task for every other.
    if (rows.empty()) return 0;
    double mean = 0;
    for (const TrainingRow& r : rows) mean += r.y;
    mean /= double(rows.size());
    double variance = 0;
    for (const TrainingRow& r : rows) variance += (r.y - mean) * (r.y - mean);
    return std::sqrt(variance / double(rows.size()));
  }
  std::map<int, int> fold_of;
  const int folds = int(std::min<std::size_t>(8, tasks.size()));
  for (int t : tasks) fold_of[t] = int(fold_of.size()) % folds;
  PredictorOptions small = options;
  small.members = std::min(3, options.members);
  double se = 0, counted = 0;
  for (int f = 0; f < folds; ++f) {
    std::vector<TrainingRow> train;
    std::vector<FeatureVector> held_out;
    std::vector<double> truth;
    for (const TrainingRow& r : rows) {
      if (r.task >= 0 && fold_of.at(r.task) == f) {
        held_out.push_back(r.x), truth.push_back(r.y);
        if (!std::isnan(r.x[kProbeScore])) {
          held_out.push_back(r.x), truth.push_back(r.y);
          held_out.back()[kProbeScore] = kNaN;
        }
      } else {
        train.push_back(r);
        train.back().task = -1;
      }
    }
    if (train.empty() || held_out.empty()) continue;
    const std::vector<Prediction> predicted = fit(train, small).predict(held_out);
    for (std::size_t i = 0; i < predicted.size(); ++i) {
      const double e = predicted[i].mean - truth[i];
      se += e * e, counted += 1;
    }
  }
  return counted > 0 ? std::sqrt(se / counted) : 0.0;
}

Predictor Predictor::fit(const std::vector<ExperienceRecord>& shipped, const std::vector<ExperienceRecord>& device,
                         const PredictorOptions& options) {
  check_options(options);
  Predictor p = fit(runtime::training_rows(shipped, device, options.device_weight), options);
  p.experience_ = summarize_experience(shipped, device);
  return p;
}

void Predictor::update(const std::vector<ExperienceRecord>& shipped, const std::vector<ExperienceRecord>& device) {
  *this = fit(shipped, device, options_);
}

void Predictor::compile() {
  depth_ = options_.max_depth;
  const std::size_t internal = (std::size_t(1) << depth_) - 1, leaves = internal + 1;
  std::size_t trees = 0;
  for (const Member& m : members_) trees += m.trees.size();
  split_feature_.assign(trees * internal, 0);
  split_threshold_.assign(trees * internal, std::numeric_limits<double>::infinity());
  split_missing_left_.assign(trees * internal, 1);
  leaf_value_.assign(trees * leaves, 0.0);
  member_trees_.assign(1, 0);
  std::size_t t = 0;
  for (const Member& m : members_) {
    for (const auto& tree : m.trees) {
      // (node in `tree`, slot in the complete layout, depth of the slot)
      std::vector<std::tuple<int, std::size_t, int>> stack{{0, 0, 0}};
      while (!stack.empty()) {
        const auto [node, slot, depth] = stack.back();
        stack.pop_back();
        const Node& n = tree[std::size_t(node)];
        if (depth == depth_) {
          leaf_value_[t * leaves + slot - internal] = n.value;
          continue;
        }
        if (n.feature >= 0) {
          split_feature_[t * internal + slot] = n.feature;
          split_threshold_[t * internal + slot] = n.threshold;
          split_missing_left_[t * internal + slot] = n.missing_left ? 1 : 0;
          stack.emplace_back(n.left, 2 * slot + 1, depth + 1);
          stack.emplace_back(n.right, 2 * slot + 2, depth + 1);
        } else {
          // Already a pass-through slot (everything goes left, defaults
          // above); the right side is filled too, so no slot is left unset.
          stack.emplace_back(node, 2 * slot + 1, depth + 1);
          stack.emplace_back(node, 2 * slot + 2, depth + 1);
        }
      }
      ++t;
    }
    member_trees_.push_back(t);
  }
}

double Predictor::novelty(const FeatureVector& x) const {
  double s = 0;
  for (std::size_t f = 0; f < kFeatureCount; ++f) {
    const FeatureRange& r = ranges_[f];
    if (!r.seen || std::isnan(x[f])) continue;
    const double e = std::max({0.0, x[f] - r.max, r.min - x[f]}) / r.scale;
    s += e * e;
  }
  return std::sqrt(s);
}

namespace {
constexpr std::size_t kBlock = 32;  // rows walked through each tree together
}

void Predictor::predict_block(const FeatureVector* rows, std::size_t count, Prediction* out) const {
  const std::size_t internal = (std::size_t(1) << depth_) - 1, leaves = internal + 1;
  const std::size_t members = members_.size();
  double sum[kBlock] = {}, sum_sq[kBlock] = {}, acc[kBlock];
  for (std::size_t m = 0; m < members; ++m) {
    std::fill(acc, acc + count, members_[m].base);
    for (std::size_t t = member_trees_[m]; t < member_trees_[m + 1]; ++t) {
      const std::int32_t* feature = split_feature_.data() + t * internal;
      const double* threshold = split_threshold_.data() + t * internal;
      const std::uint8_t* missing_left = split_missing_left_.data() + t * internal;
      const double* leaf = leaf_value_.data() + t * leaves;
      // A level at a time for all rows: the rows' steps do not wait on each
      // other's loads, and the next slot is computed, not branched to.
      std::size_t slot[kBlock] = {};
      for (int d = 0; d < depth_; ++d)
        for (std::size_t r = 0; r < count; ++r) {
          const std::size_t i = slot[r];
          const double v = rows[r][std::size_t(feature[i])];
          const bool left = (v <= threshold[i]) | (bool(missing_left[i]) & (v != v));
          slot[r] = 2 * i + 2 - std::size_t(left);
        }
      for (std::size_t r = 0; r < count; ++r) acc[r] += leaf[slot[r] - internal];
    }
    for (std::size_t r = 0; r < count; ++r) sum[r] += acc[r], sum_sq[r] += acc[r] * acc[r];
  }
  const double k = double(members);
  for (std::size_t r = 0; r < count; ++r) {
    const double mean = sum[r] / k;
    const double variance = std::max(0.0, sum_sq[r] / k - mean * mean);
    const double away = oob_rmse_ * novelty(rows[r]);
    out[r].mean = std::clamp(mean, 0.0, 1.0);
    // No distribution on [0, 1] has a larger standard deviation than 1/2.
    out[r].std = std::min(0.5, std::sqrt(variance + options_.std_floor * options_.std_floor + away * away +
                                         task_rmse_ * task_rmse_));
  }
}

Prediction Predictor::predict(const FeatureVector& x) const {
  Prediction out;
  predict_block(&x, 1, &out);
  apply_calibration(&x, 1, &out);
  return out;
}

std::vector<Prediction> Predictor::predict(const std::vector<FeatureVector>& rows) const {
  std::vector<Prediction> out(rows.size());
  for (std::size_t begin = 0; begin < rows.size(); begin += kBlock)
    predict_block(rows.data() + begin, std::min(kBlock, rows.size() - begin), out.data() + begin);
  apply_calibration(rows.data(), rows.size(), out.data());
  return out;
}

namespace {

// Accuracies of 0 or 1 have no logit; a validation set of a thousand images
// cannot tell those from 0.001 or 0.999 anyway.
double logit(double p) {
  p = std::clamp(p, 1e-3, 1 - 1e-3);
  return std::log(p / (1 - p));
}

double inverse_logit(double z) { return 1 / (1 + std::exp(-z)); }

}  // namespace

void Predictor::calibrate(const std::vector<ExperienceRecord>& device) {
  calibration_x_.clear();
  calibration_residual_.clear();
  std::vector<FeatureVector> x;
  std::vector<double> achieved;
  for (const ExperienceRecord& r : device)
    if (r.best_accuracy >= 0) {
      x.push_back(make_features(r));
      achieved.push_back(r.best_accuracy);
    }
  const std::vector<Prediction> base = predict(x);  // uncalibrated: the lists are empty
  for (std::size_t i = 0; i < x.size(); ++i) calibration_residual_.push_back(logit(achieved[i]) - logit(base[i].mean));
  calibration_x_ = std::move(x);
}

double Predictor::calibration_shift(const FeatureVector& x) const {
  double weight = 0, weighted = 0;
  for (std::size_t i = 0; i < calibration_x_.size(); ++i) {
    double d2 = 0;
    for (int f = kLogClasses; f <= kLogImageToInput; ++f) {
      const double d = (x[std::size_t(f)] - calibration_x_[i][std::size_t(f)]) / ranges_[std::size_t(f)].scale;
      if (std::isfinite(d)) d2 += d * d;
    }
    const double w = std::exp(-0.5 * d2 / (kCalibrationWidth * kCalibrationWidth));
    weight += w;
    weighted += w * calibration_residual_[i];
  }
  return weighted / (kCalibrationShrinkage + weight);
}

void Predictor::apply_calibration(const FeatureVector* rows, std::size_t count, Prediction* out) const {
  if (calibration_x_.empty()) return;
  for (std::size_t r = 0; r < count; ++r)
    out[r].mean = std::clamp(inverse_logit(logit(out[r].mean) + calibration_shift(rows[r])), 0.0, 1.0);
}

namespace {

// The summary of the experience a predictor was fitted on, as saved with
// it: counts, batch sizes, and the shared fields with the regime that holds
// their values.
Json summary_json(const ExperienceSummary& s) {
  Json j{{"records", s.record_count}, {"evaluated", s.evaluated_count}, {"batch_sizes", s.batch_sizes},
         {"shared_fields", s.shared_fields}};
  // The epoch figures as they were read: a summary loaded from a file saved
  // before they were kept has none (0, or no models), and written back with
  // them it would contradict its own evaluated records.
  if (s.longest_epochs > 0 || s.evaluated_count == 0) j["longest_epochs"] = s.longest_epochs;
  if (!s.longest_epochs_by_model.empty()) j["longest_epochs_by_model"] = s.longest_epochs_by_model;
  if (!s.longest_epochs_by_frozen.empty()) {
    Json by_frozen = Json::object();
    for (const auto& [model, counts] : s.longest_epochs_by_frozen)
      for (const auto& [frozen, epochs] : counts) by_frozen[model][std::to_string(frozen)] = epochs;
    j["longest_epochs_by_frozen"] = by_frozen;
  }
  // Without an evaluated record there is no regime to hold the values (and
  // the default one, which names no model, would not read back).
  if (s.evaluated_count > 0) j["shared_regime"] = detail::regime_json(s.shared_regime);
  return j;
}

// Reads what summary_json() writes, refusing a summary that contradicts
// itself: planning trusts it in place of the records.
ExperienceSummary read_summary(const Fields& f) {
  ExperienceSummary s;
  s.record_count = std::size_t(f.integer("records", 0));
  s.evaluated_count = std::size_t(f.integer("evaluated", 0, std::int64_t(s.record_count)));
  const Json& batches = f.array("batch_sizes");
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (!batches[i].is_number_integer() || batches[i].get<std::int64_t>() < 1 ||
        batches[i].get<std::int64_t>() > std::numeric_limits<int>::max() ||
        (i > 0 && batches[i].get<std::int64_t>() <= batches[i - 1].get<std::int64_t>()))
      f.fail(f.at("batch_sizes") + "[" + std::to_string(i) + "]",
             "expected ascending distinct positive integers, got " + detail::describe_value(batches[i]));
    s.batch_sizes.push_back(batches[i].get<int>());
  }
  const bool evaluated = s.evaluated_count > 0;
  if (evaluated != !s.batch_sizes.empty() || s.batch_sizes.size() > s.evaluated_count)
    f.fail(f.at("batch_sizes"), "lists " + std::to_string(s.batch_sizes.size()) + " batch sizes for " +
                                    std::to_string(s.evaluated_count) + " evaluated records");
  // In unplanned_regime_fields()'s order, each once.
  const Json& shared = f.array("shared_fields");
  const std::vector<std::string>& known = unplanned_regime_fields();
  auto next = known.begin();
  for (std::size_t i = 0; i < shared.size(); ++i) {
    const auto at = shared[i].is_string() ? std::find(next, known.end(), shared[i].get<std::string>()) : known.end();
    if (at == known.end())
      f.fail(f.at("shared_fields") + "[" + std::to_string(i) + "]",
             "expected one of the unplanned regime fields, each once and in order, got " +
                 detail::describe_value(shared[i]));
    s.shared_fields.push_back(*at);
    next = at + 1;
  }
  if (!evaluated && !s.shared_fields.empty())
    f.fail(f.at("shared_fields"), "lists fields shared by the evaluated records, and there are none");
  if (evaluated != f.has("shared_regime"))
    f.fail(f.at("shared_regime"), evaluated ? "is missing: the summary has evaluated records"
                                            : "is given: the summary has no evaluated record");
  if (evaluated) s.shared_regime = detail::read_regime(f.object("shared_regime"));
  // Absent from summaries saved before it was kept: 0, and planning keeps to
  // the epochs it planned then.
  if (f.contains("longest_epochs")) {
    s.longest_epochs = int(f.integer("longest_epochs", 0, std::numeric_limits<int>::max()));
    if (evaluated != (s.longest_epochs > 0))
      f.fail(f.at("longest_epochs"), "is " + std::to_string(s.longest_epochs) + " for " +
                                         std::to_string(s.evaluated_count) + " evaluated records");
  }
  // Absent from summaries saved before it was kept: empty, and planning
  // caps every model at longest_epochs. Present, it names every model the
  // evaluated records ran, the longest of them longest_epochs.
  if (f.contains("longest_epochs_by_model")) {
    const Fields by_model = f.object("longest_epochs_by_model");
    if (!f.contains("longest_epochs"))
      f.fail(f.at("longest_epochs_by_model"), "is given without " + f.at("longest_epochs"));
    const Json& j = f.get("longest_epochs_by_model");
    int longest = 0;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key().empty()) f.fail(f.at("longest_epochs_by_model"), "names a model \"\"");
      const int epochs = int(by_model.integer(it.key(), 1, std::numeric_limits<int>::max()));
      s.longest_epochs_by_model[it.key()] = epochs;
      longest = std::max(longest, epochs);
    }
    if (longest != s.longest_epochs)
      f.fail(f.at("longest_epochs_by_model"), "has " + std::to_string(longest) + " as its longest run, but " +
                                                  f.at("longest_epochs") + " is " +
                                                  std::to_string(s.longest_epochs));
    if (s.longest_epochs_by_model.size() > s.evaluated_count)
      f.fail(f.at("longest_epochs_by_model"), "names " + std::to_string(s.longest_epochs_by_model.size()) +
                                                  " models for " + std::to_string(s.evaluated_count) +
                                                  " evaluated records");
    if (evaluated && !s.longest_epochs_by_model.count(s.shared_regime.model))
      f.fail(f.at("longest_epochs_by_model"), "does not name " + s.shared_regime.model +
                                                  ", the model of " + f.at("shared_regime"));
  }
  // Absent from summaries saved before it was kept: empty, and a model's
  // frozen stage counts share its cap. Present, it names the models of
  // longest_epochs_by_model, each with the counts it ran ("0", "1", ...),
  // the longest of which is the model's.
  if (f.contains("longest_epochs_by_frozen")) {
    const Fields by_frozen = f.object("longest_epochs_by_frozen");
    if (!f.contains("longest_epochs_by_model"))
      f.fail(f.at("longest_epochs_by_frozen"), "is given without " + f.at("longest_epochs_by_model"));
    const Json& j = f.get("longest_epochs_by_frozen");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const auto of_model = s.longest_epochs_by_model.find(it.key());
      if (of_model == s.longest_epochs_by_model.end())
        f.fail(f.at("longest_epochs_by_frozen"),
               "names " + detail::describe_value(Json(it.key())) + ", which " + f.at("longest_epochs_by_model") +
                   " does not");
      const Fields counts = by_frozen.object(it.key());
      int longest = 0;
      std::map<int, int>& read = s.longest_epochs_by_frozen[it.key()];
      for (auto c = it.value().begin(); c != it.value().end(); ++c) {
        // A count as to_string writes it: "01" or "+1" would be another key for 1.
        const std::string& key = c.key();
        const bool digits = !key.empty() && key.size() <= 10 &&
                            std::all_of(key.begin(), key.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
                            (key == "0" || key[0] != '0');
        const long long frozen = digits ? std::stoll(key) : -1;
        if (frozen < 0 || frozen > std::numeric_limits<int>::max())
          counts.fail(counts.at(key), "is not a frozen stage count (0, 1, 2, ...)");
        const int epochs = int(counts.integer(key, 1, std::numeric_limits<int>::max()));
        read[int(frozen)] = epochs;
        longest = std::max(longest, epochs);
      }
      if (longest != of_model->second)
        f.fail(by_frozen.at(it.key()), "has " + std::to_string(longest) + " as its longest run, but " +
                                           f.at("longest_epochs_by_model") + " gives " +
                                           std::to_string(of_model->second));
    }
    if (s.longest_epochs_by_frozen.size() != s.longest_epochs_by_model.size())
      f.fail(f.at("longest_epochs_by_frozen"), "names " + std::to_string(s.longest_epochs_by_frozen.size()) +
                                                   " models, " + f.at("longest_epochs_by_model") + " " +
                                                   std::to_string(s.longest_epochs_by_model.size()));
    std::size_t pairs = 0;
    for (const auto& [model, counts] : s.longest_epochs_by_frozen) pairs += counts.size();
    if (pairs > s.evaluated_count)
      f.fail(f.at("longest_epochs_by_frozen"), "names " + std::to_string(pairs) + " frozen counts for " +
                                                   std::to_string(s.evaluated_count) + " evaluated records");
    const auto first = s.longest_epochs_by_frozen.find(s.shared_regime.model);
    if (evaluated && (first == s.longest_epochs_by_frozen.end() || !first->second.count(s.shared_regime.frozen_stages)))
      f.fail(f.at("longest_epochs_by_frozen"), "does not name " + std::to_string(s.shared_regime.frozen_stages) +
                                                   " frozen stages of " + s.shared_regime.model + ", those of " +
                                                   f.at("shared_regime"));
  }
  return s;
}

}  // namespace

std::string Predictor::to_json() const {
  Json features = Json::array();
  for (const char* name : kFeatureNames) features.push_back(name);
  Json ranges = Json::array();
  for (const FeatureRange& r : ranges_)
    ranges.push_back(r.seen ? Json{{"min", r.min}, {"max", r.max}, {"scale", r.scale}} : Json(nullptr));
  Json members = Json::array();
  for (const Member& m : members_) {
    Json trees = Json::array();
    for (const auto& t : m.trees) trees.push_back(tree_json(t));
    members.push_back(Json{{"base", m.base}, {"trees", std::move(trees)}});
  }
  Json model{{"features", std::move(features)},
             {"options", options_json(options_)},
             {"training_rows", training_rows_},
             {"oob_rmse", oob_rmse_},
             {"task_rmse", task_rmse_},
             {"fitted_on", fitted_on_},
             {"feature_ranges", std::move(ranges)},
             {"members", std::move(members)}};
  if (experience_) model["experience"] = summary_json(*experience_);
  const std::string digest = zoo::sha256_hex(model.dump());
  Json file{{"format", kFormatName}, {"format_version", kPredictorFormatVersion}, {"sha256", digest},
            {"model", std::move(model)}};
  return file.dump() + "\n";
}

Predictor Predictor::from_json(const std::string& text, const std::string& source) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {  // out_of_range too: a number past a double's range
    throw Error(ErrorCode::kCorrupt, source + ": not a predictor file: not valid JSON (" + e.what() + ")");
  }
  const Fields top(j, "", source);
  if (top.string("format") != kFormatName)
    top.fail("format", "expected \"" + std::string(kFormatName) + "\", got \"" + top.string("format") + "\"");
  const std::int64_t version = top.integer("format_version", 1);
  if (version > kPredictorFormatVersion)
    throw Error(ErrorCode::kUnsupportedVersion, source + ": field 'format_version' is " + std::to_string(version) +
                                                    "; this build reads up to " +
                                                    std::to_string(kPredictorFormatVersion));
  const std::string digest = top.string("sha256");
  // The checksum covers the model's bytes as written (to_json() writes the
  // keys sorted, so "model" comes just before "sha256"), not a re-encoding
  // of what was parsed: a changed digit that still parses to the same
  // double must be refused too, as any other damage is. And what was parsed
  // must be exactly those bytes: the parser keeps the last of two "model"
  // keys, which the checksummed range would not cover.
  const std::size_t model_at = text.find("\"model\":");
  const std::size_t sha_at = text.rfind(",\"sha256\":");
  const auto model_bytes = [&] { return std::string_view(text).substr(model_at + 8, sha_at - model_at - 8); };
  if (model_at == std::string::npos || sha_at == std::string::npos || sha_at < model_at + 8 ||
      zoo::sha256_hex(model_bytes()) != digest || !j.contains("model") || j.at("model").dump() != model_bytes())
    throw Error(ErrorCode::kCorrupt, source + ": checksum mismatch: the predictor file is damaged");

  const Fields model = top.object("model");
  const Json& features = model.array("features");
  std::size_t differ = 0;  // the first position where the file's features and this build's differ
  while (differ < std::min<std::size_t>(features.size(), kFeatureCount) && features[differ].is_string() &&
         features[differ].get<std::string>() == kFeatureNames[differ])
    ++differ;
  if (differ < features.size() || features.size() != kFeatureCount)
    throw Error(ErrorCode::kUnsupportedVersion,
                source + ": field 'model.features' lists " + std::to_string(features.size()) +
                    " features and this build computes " + std::to_string(kFeatureCount) + "; they differ first at [" +
                    std::to_string(differ) + "]: " +
                    (differ < features.size() ? detail::describe_value(features[differ]) : std::string("(none)")) +
                    " against " + (differ < kFeatureCount ? std::string(kFeatureNames[differ]) : std::string("(none)")) +
                    "; refit the predictor");
  Predictor p;
  p.options_ = read_options(model.object("options"));
  p.training_rows_ = std::size_t(model.integer("training_rows", 1));
  p.oob_rmse_ = model.number("oob_rmse", 0);
  // Absent from files of 0.3.2 and before: no task term then.
  p.task_rmse_ = model.has("task_rmse") ? model.number("task_rmse", 0) : 0.0;
  p.fitted_on_ = model.string("fitted_on");
  // Absent: fitted on bare rows, or written before predictors carried it.
  // (A null there is damage, not absence.)
  if (j.at("model").contains("experience")) p.experience_ = read_summary(model.object("experience"));
  const Json& ranges = model.array("feature_ranges");
  if (ranges.size() != kFeatureCount)
    model.fail(model.at("feature_ranges"), "expected " + std::to_string(kFeatureCount) + " entries");
  for (std::size_t f = 0; f < kFeatureCount; ++f) {
    if (ranges[f].is_null()) continue;
    const Fields r(ranges[f], model.at("feature_ranges") + "[" + std::to_string(f) + "]", source);
    FeatureRange& range = p.ranges_[f];
    range.seen = true;
    range.min = r.number("min");
    range.max = r.number("max", range.min);
    range.scale = r.number("scale", 1e-300);
  }
  const Json& members = model.array("members");
  if (members.empty()) model.fail(model.at("members"), "is empty");
  for (std::size_t m = 0; m < members.size(); ++m) {
    const Fields mf(members[m], model.at("members") + "[" + std::to_string(m) + "]", source);
    Member member;
    member.base = mf.number("base");
    const Json& trees = mf.array("trees");
    for (std::size_t t = 0; t < trees.size(); ++t)
      member.trees.push_back(read_tree(Fields(trees[t], mf.at("trees") + "[" + std::to_string(t) + "]", source),
                                       p.options_.max_depth));
    p.members_.push_back(std::move(member));
  }
  p.compile();
  return p;
}

void Predictor::save(const std::string& path) const { zoo::write_file_atomic(path, to_json()); }

Predictor Predictor::load(const std::string& path) { return from_json(zoo::read_file(path), path); }

// ---- ShippedExperience ------------------------------------------------------

struct ShippedExperience::Shared {
  RecordReader read;
  std::string digest;
  std::optional<Predictor> predictor;
  std::optional<std::vector<ExperienceRecord>> records;
  std::optional<ExperienceSummary> summary;
};

ShippedExperience::ShippedExperience() : ShippedExperience(std::vector<ExperienceRecord>{}) {}

ShippedExperience::ShippedExperience(std::vector<ExperienceRecord> records, std::string digest,
                                     std::optional<Predictor> predictor)
    : shared_(std::make_shared<Shared>()) {
  if (digest.empty()) {
    std::string all;
    for (const ExperienceRecord& r : records) all += zoo::sha256_hex(to_json(r)) + "\n";
    digest = "records:" + zoo::sha256_hex(all);
  }
  shared_->digest = std::move(digest);
  shared_->predictor = std::move(predictor);
  shared_->records = std::move(records);
}

ShippedExperience::ShippedExperience(RecordReader read, std::string digest, std::optional<Predictor> predictor)
    : shared_(std::make_shared<Shared>()) {
  if (!read || digest.empty())
    throw Error(ErrorCode::kInvalidArgument, "ShippedExperience: a record reader needs a reader and a digest");
  shared_->read = std::move(read);
  shared_->digest = std::move(digest);
  shared_->predictor = std::move(predictor);
}

const std::string& ShippedExperience::digest() const { return shared_->digest; }

const std::optional<Predictor>& ShippedExperience::predictor() const { return shared_->predictor; }

const std::vector<ExperienceRecord>& ShippedExperience::records() const {
  if (!shared_->records) shared_->records = shared_->read();
  return *shared_->records;
}

bool ShippedExperience::records_read() const { return shared_->records.has_value(); }

const ExperienceSummary& ShippedExperience::summary() const {
  if (!shared_->summary) {
    const std::optional<Predictor>& p = shared_->predictor;
    if (p && p->experience() &&
        p->fitted_on() == PredictorState::shipped_fingerprint(shared_->digest, p->options()))
      shared_->summary = *p->experience();
    else
      shared_->summary = summarize_experience(records());
  }
  return *shared_->summary;
}

// ---- PredictorState ---------------------------------------------------------

PredictorState::PredictorState(PredictorState&&) noexcept = default;
PredictorState& PredictorState::operator=(PredictorState&&) noexcept = default;
PredictorState::~PredictorState() = default;

const Predictor* PredictorState::predictor() const { return predictor_ ? &*predictor_ : nullptr; }

std::size_t PredictorState::evaluated_records() const {
  const Predictor* p = predictor();
  return p ? p->training_rows() + p->calibration_records() : 0;
}

bool PredictorState::fits_shipped() const { return shipped_.summary().evaluated_count > 0; }

ExperienceSummary PredictorState::fitted_experience() const {
  return fits_shipped() ? shipped_.summary() : summarize_experience(device_);
}

// With shipped experience the digest names no device record, so it is the
// one the bundle's own predictor.json carries, and a fresh state directory
// starts from that file. The leading version changes with how fit() fits
// (2: probed rows also taught without their score, and the uncertainty's
// term for new tasks), so a copy fitted the old way is fitted again.
namespace {
// What a state's fingerprint digests, before any device record's checksum.
std::string fingerprint_text(const std::string& shipped_digest, const PredictorOptions& options) {
  return "nasoa-predictor-state 2\nshipped " + shipped_digest + "\noptions " + options_json(options).dump() +
         "\ndevice";
}
}  // namespace

std::string PredictorState::fingerprint() const {
  std::string text = fingerprint_text(shipped_.digest(), options_);
  if (!fits_shipped())
    for (const std::string& d : device_sha256_) text += " " + d;
  return zoo::sha256_hex(text);
}

std::string PredictorState::shipped_fingerprint(const std::string& shipped_digest, const PredictorOptions& options) {
  return zoo::sha256_hex(fingerprint_text(shipped_digest, options));
}

void PredictorState::learn_from_device() {
  if (!fits_shipped()) {
    refit_and_save();
  } else if (predictor_) {
    predictor_->calibrate(device_);
  }
}

void PredictorState::refit_and_save() {
  const bool shipped = fits_shipped();
  const std::vector<ExperienceRecord>& records = shipped ? shipped_.records() : device_;
  if (std::none_of(records.begin(), records.end(), [](const ExperienceRecord& r) { return r.best_accuracy >= 0; })) {
    predictor_.reset();
    return;
  }
  Predictor p = shipped ? Predictor::fit(records, {}, options_) : Predictor::fit({}, records, options_);
  p.set_fitted_on(fingerprint());
  // In use before it is saved: a save that fails leaves this process with
  // the predictor its records call for, and the next open() refits.
  predictor_ = std::move(p);
  save_predictor_copy([&](const std::string& path) { predictor_->save(path); });
}

void PredictorState::save_predictor_copy(const std::function<void(const std::string&)>& save) {
  try {
    save((std::filesystem::path(dir_) / kPredictorFile).string());
  } catch (const Error& e) {
    // kInvalidArgument: something other than a file is in its place.
    if (e.code() != ErrorCode::kIo && e.code() != ErrorCode::kInvalidArgument) throw;
    damage_.push_back(std::string(e.what()) + " (the predictor is used unsaved; the next open writes it)");
  }
}

PredictorState PredictorState::open(const std::string& dir, ShippedExperience shipped,
                                    const PredictorOptions& options) {
  check_options(options);
  try {
    zoo::create_directories_durably(dir);
  } catch (const Error& e) {
    throw Error(ErrorCode::kIo, std::string("cannot create the predictor state directory: ") + e.what());
  }
  PredictorState s;
  s.dir_ = dir;
  s.options_ = options;
  s.shipped_ = std::move(shipped);

  const std::string log_path = (std::filesystem::path(dir) / kLogFile).string();
  if (std::filesystem::exists(log_path)) {
    ExperienceLogContents log = read_experience_log(log_path);
    s.damage_ = log.damage_report(log_path);
    s.device_ = std::move(log.records);
    s.device_sha256_ = std::move(log.record_sha256);
  }

  const std::string predictor_path = (std::filesystem::path(dir) / kPredictorFile).string();
  const std::string wanted = s.fingerprint();
  const std::optional<Predictor>& bundled = s.shipped_.predictor();
  if (bundled && bundled->fitted_on() == wanted && bundled->options() == options) {
    // The bundle's own predictor wins over the copy kept here: a bundle
    // refitted on the same experience (a fitting fix) carries the same
    // fingerprint, and the copy would otherwise be kept forever.
    s.predictor_ = *bundled;
    const std::string text = bundled->to_json();
    std::string kept;
    try {
      if (std::filesystem::exists(predictor_path)) kept = zoo::read_file(predictor_path);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kIo) throw;
    }
    if (kept != text) s.save_predictor_copy([&](const std::string& path) { zoo::write_file_atomic(path, text); });
  } else if (std::filesystem::exists(predictor_path)) {
    try {
      Predictor p = Predictor::load(predictor_path);
      if (p.fitted_on() == wanted && p.options() == options) s.predictor_ = std::move(p);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kIo) throw;
      s.damage_.push_back(std::string(e.what()) + " (replaced)");
    }
  }
  if (!s.predictor_) {
    s.refit_and_save();
    s.refitted_on_open_ = s.predictor_.has_value();
  }
  if (s.predictor_ && s.fits_shipped()) s.predictor_->calibrate(s.device_);
  return s;
}

bool PredictorState::record(ExperienceRecord outcome) {
  outcome.source = ExperienceSource::kDevice;
  for (const ExperienceRecord& r : device_)
    if (r.run_id == outcome.run_id) return false;
  // Another process sharing this state may have recorded it since we read the log.
  if (append_new_experience((std::filesystem::path(dir_) / kLogFile).string(), outcome).already_present > 0)
    return false;
  device_sha256_.push_back(zoo::sha256_hex(to_json(outcome)));
  device_.push_back(std::move(outcome));
  // The record is stored: a predictor.json that cannot be rewritten (a full
  // disk) is a note, not a failed record, or a caller would retry a record
  // that is already there and be told it was recorded before.
  try {
    learn_from_device();
  } catch (const Error& e) {
    damage_.push_back(std::string(e.what()) + " (the record is kept; the predictor is refitted when the folder "
                                              "is opened next)");
  }
  return true;
}

}  // namespace nasoa::runtime
