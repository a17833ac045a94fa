#include "offline_tools/search/proxy_evaluator.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <new>
#include <random>

#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "runtime/data/image_store.h"
#include "runtime/data/task_source.h"
#include "runtime/profile/device_profile.h"
#include "runtime/train/fine_tuner.h"
#include "zoo/builder/network.h"
#include "zoo/bundle/sha256.h"

namespace nasoa::search {
namespace {

// A seeded sample of each class: the first train_per_class +
// validation_per_class after a per-class shuffle, so that every candidate of
// a search (and every rank) sees the same images.
runtime::TaskSource sample_corpus(runtime::TaskSource source, const ProxyOptions& o) {
  std::map<int, std::vector<runtime::SampleRef>> by_class;
  for (runtime::SampleRef& s : source.samples) by_class[s.label].push_back(std::move(s));
  source.samples.clear();
  std::mt19937_64 rng(o.seed);
  const std::size_t want = static_cast<std::size_t>(o.train_per_class + o.validation_per_class);
  for (auto& [label, samples] : by_class) {
    std::shuffle(samples.begin(), samples.end(), rng);
    if (samples.size() > want) samples.resize(want);
    for (runtime::SampleRef& s : samples) source.samples.push_back(std::move(s));
  }
  return source;
}

}  // namespace

ProxyEvaluator::ProxyEvaluator(const std::string& corpus_dir, const ProxyOptions& options) : options_(options) {
  if (options.train_per_class < 1 || options.validation_per_class < 1 || options.epochs < 1 ||
      options.batch_size < 1 || options.input_size < 8 || options.learning_rate <= 0)
    throw Error(ErrorCode::kInvalidArgument,
                "proxy options: train_per_class, validation_per_class, epochs, batch_size must be >= 1, "
                "input_size >= 8, learning_rate > 0");
  runtime::IngestOptions ingest;
  ingest.side = options.input_size;
  store_ = std::make_unique<runtime::ImageStore>(sample_corpus(runtime::list_folder(corpus_dir), options), ingest);
  // Per class: the first validation_per_class (after the seeded shuffle
  // above, in store order) are held out, so the split is the same whatever
  // each class's size.
  std::map<int, int> held, trained;
  for (std::size_t i = 0; i < store_->size(); ++i) {
    int& n = held[store_->label(i)];
    if (n < options.validation_per_class) {
      validation_.push_back(i);
      ++n;
    } else {
      train_.push_back(i);
      ++trained[store_->label(i)];
    }
  }
  // A class of validation_per_class images or fewer is held out whole. With
  // every class so, no candidate could learn anything: each would be timed,
  // trained on nothing and recorded as failed, for hours.
  if (train_.empty()) {
    int largest = 0;
    for (const auto& [label, n] : held) largest = std::max(largest, n);
    throw Error(ErrorCode::kInvalidArgument,
                corpus_dir + ": --validation-per-class " + std::to_string(options.validation_per_class) +
                    " holds out every image of the corpus sample (each class has at most " +
                    std::to_string(largest) + " usable images), leaving none to train on: give a smaller "
                    "--validation-per-class, or a corpus of more images per class");
  }
  for (const auto& [label, n] : held)
    if (trained.count(label) == 0)
      classes_without_training_.push_back(store_->class_names()[static_cast<std::size_t>(label)]);
  const TaskMeta& meta = store_->meta();
  for (std::size_t c = 0; c < 3; ++c) {
    mean_[c] = static_cast<float>(meta.pixel_mean[c]);
    std_[c] = static_cast<float>(std::max(meta.pixel_std[c], 1e-3));
  }
  // Which images the sample holds, by their place in the corpus (so that a
  // moved corpus is the same one) and their class.
  std::string listing;
  for (const std::string& name : store_->class_names()) listing += "class\t" + name + "\n";
  const std::filesystem::path root = std::filesystem::absolute(corpus_dir).lexically_normal();
  for (std::size_t i = 0; i < store_->size(); ++i)
    listing += std::filesystem::absolute(store_->path(i)).lexically_normal().lexically_relative(root).string() + "\t" +
               std::to_string(store_->label(i)) + "\n";
  sample_digest_ = zoo::sha256_hex(listing);
}

ProxyEvaluator::~ProxyEvaluator() = default;

std::string ProxyEvaluator::pixel_statistics() const {
  const TaskMeta& meta = store_->meta();
  char text[160];
  std::snprintf(text, sizeof text, "mean %.9g %.9g %.9g, std %.9g %.9g %.9g", meta.pixel_mean[0], meta.pixel_mean[1],
                meta.pixel_mean[2], meta.pixel_std[0], meta.pixel_std[1], meta.pixel_std[2]);
  return text;
}

int ProxyEvaluator::classes() const { return static_cast<int>(store_->class_names().size()); }

const std::vector<SkippedFile>& ProxyEvaluator::skipped() const { return store_->skipped(); }

std::vector<Evaluation> ProxyEvaluator::evaluate(const std::vector<std::string>& encodings) {
  std::vector<Evaluation> out;
  for (const std::string& e : encodings) out.push_back(evaluate_one(e));
  return out;
}

Evaluation ProxyEvaluator::evaluate_one(const std::string& text) {
  const auto started = std::chrono::steady_clock::now();
  Evaluation ev;
  ev.encoding = text;
  ev.seed = options_.seed;
  ev.rank = options_.rank;
  try {
    const Encoding encoding = Encoding::parse(text);
    const NetworkCost cost = count_cost(encoding, classes(), options_.input_size);
    ev.parameters = cost.parameters;
    ev.macs = cost.macs;
    {
      // Timed on its own network, so the trained one starts from the same
      // initialisation whatever the timing did to its weights.
      torch::manual_seed(options_.seed);
      zoo::Network timed(encoding, classes());
      // The fastest step: load from other processes on the machine only ever
      // makes a step slower, so the minimum is the steadiest estimate of the
      // network's own cost.
      const std::vector<double> steps =
          runtime::time_training_steps(*timed, options_.batch_size, options_.input_size, options_.timing_warmup,
                                       options_.timing_repetitions, options_.use_cuda);
      ev.step_seconds = *std::min_element(steps.begin(), steps.end());
    }
    if (options_.max_step_seconds > 0 && ev.step_seconds > options_.max_step_seconds) {
      ev.error = "step time " + std::to_string(ev.step_seconds) + " s above the bound " +
                 std::to_string(options_.max_step_seconds) + " s";
    } else {
      torch::manual_seed(options_.seed);
      runtime::FineTuneJob job;
      job.network = zoo::Network(encoding, classes());
      job.store = store_.get();
      job.split.train = train_;
      job.split.validation = validation_;
      job.regime.model = text;
      job.regime.learning_rate = options_.learning_rate;
      job.regime.epochs = options_.epochs;
      job.regime.batch_size = options_.batch_size;
      job.regime.weight_decay = 5e-4;
      job.regime.horizontal_flip = false;  // glyph classes are not mirror-symmetric
      job.regime.seed = options_.seed;
      job.mean = mean_;
      job.std = std_;
      job.fingerprint = "nasoa-search proxy";
      job.use_cuda = options_.use_cuda;
      job.loader_workers = options_.loader_workers;
      // The layout the search times steps in, and a fixed one: a layout
      // trial picks by timing, and a candidate must train the same on every
      // rank and every rerun.
      job.layout = runtime::MemoryLayout::kChannelsFirst;
      const runtime::FineTuneOutcome outcome = runtime::fine_tune(job, runtime::Limits(1e9, 0));
      ev.accuracy = std::max(0.0, outcome.validation_accuracy);
    }
  } catch (const Error& e) {
    ev.error = e.what();
  } catch (const c10::Error& e) {  // LibTorch (out of memory, say): this candidate only
    // Without the stack of the throw, which would fill state.json and
    // evaluations.csv with twenty lines of frames per failure.
    ev.error = std::string("LibTorch: ") + e.what_without_backtrace();
  } catch (const std::bad_alloc&) {
    ev.error = "out of memory";
  } catch (const std::exception& e) {
    ev.error = e.what();
  }
  ev.cost_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return ev;
}

}  // namespace nasoa::search
