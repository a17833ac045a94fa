// offline_tools/search/proxy_evaluator.h: evaluates a candidate network on
// this machine: its training step time and its accuracy after a short proxy
// training from scratch on a sample of the upstream corpus.
//
// The corpus sample is decoded once, when the evaluator is made (each MPI
// rank makes its own), and shared by every candidate. The step time is the
// fastest of the steps runtime::time_training_steps times at the proxy batch
// and input size (the device profile's measurement; the minimum because other
// load on a shared machine only ever slows a step); the proxy training is the runtime's
// own fine-tuning loop (runtime::fine_tune) with a fixed short recipe, so a
// candidate is trained here as the zoo will later be pretrained and
// fine-tuned. Not thread-safe: one evaluator per thread (LibTorch's
// intra-op threads do the parallel work).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nasoa/task.h"
#include "offline_tools/search/evaluation.h"

namespace nasoa::runtime {
class ImageStore;
}

namespace nasoa::search {

struct ProxyOptions {
  int input_size = 32;
  int batch_size = 64;
  int epochs = 3;
  double learning_rate = 0.1;
  int train_per_class = 60;        // images of each class trained on (fewer where a class has fewer)
  int validation_per_class = 20;   // held out of each class for the accuracy
  int timing_warmup = 3;
  int timing_repetitions = 9;
  double max_step_seconds = 0;     // slower candidates are timed but not trained (left out); 0: none
  std::uint64_t seed = 1;
  int loader_workers = 1;
  bool use_cuda = true;
  int rank = 0;                    // recorded in each evaluation
};

class ProxyEvaluator : public Evaluator {
 public:
  // Lists and decodes the sample of `corpus_dir` (class subfolders). Throws
  // what ingestion throws (nasoa::Error naming the folder), and
  // Error{kInvalidArgument} naming --validation-per-class when it holds out
  // every image of the sample, so that nothing is left to train on.
  ProxyEvaluator(const std::string& corpus_dir, const ProxyOptions& options);
  ~ProxyEvaluator() override;

  std::vector<Evaluation> evaluate(const std::vector<std::string>& encodings) override;
  Evaluation evaluate_one(const std::string& encoding);

  int classes() const;
  std::size_t train_images() const { return train_.size(); }
  std::size_t validation_images() const { return validation_.size(); }
  // The corpus's files that could not be used, with why (for the caller to
  // report: on MPI every rank reads the corpus, and one should say it).
  const std::vector<SkippedFile>& skipped() const;
  // The classes whose sampled images are all held out (no more than
  // validation_per_class of them): candidates never train on them.
  const std::vector<std::string>& classes_without_training() const { return classes_without_training_; }
  // SHA-256 of the sample's images (paths relative to the corpus, classes):
  // a search resumed on another corpus would mix two corpora's accuracies.
  const std::string& sample_digest() const { return sample_digest_; }
  // The sample's pixel mean and standard deviation per channel, as text: a
  // corpus rebuilt under the same file names (another --seed or --side)
  // has the same digest but other pixels.
  std::string pixel_statistics() const;

 private:
  ProxyOptions options_;
  std::unique_ptr<runtime::ImageStore> store_;
  std::vector<std::size_t> train_, validation_;
  std::vector<std::string> classes_without_training_;
  std::array<float, 3> mean_{}, std_{};
  std::string sample_digest_;
};

}  // namespace nasoa::search
