// runtime/data/batch_loader.h: training and evaluation batches, prefetched.
//
// Worker threads build batches ahead of the training loop (augment, normalise,
// lay out NCHW float) so that training never waits for data. Everything
// random is derived from (seed, epoch, position), so an epoch's batches are
// the same whatever the number of workers, and a resumed run can restart in
// the middle of an epoch and see exactly the batches it would have seen.
//
// Not thread-safe: one consumer calls start_epoch()/next(). The store must
// outlive the loader.
#pragma once

#include <torch/torch.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "runtime/data/batching.h"
#include "runtime/data/image_store.h"

namespace nasoa::runtime {

struct LoaderOptions {
  int batch_size = 32;
  bool shuffle = true;
  bool random_resized_crop = false;
  bool horizontal_flip = false;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  std::uint64_t seed = 0;
  int workers = 2;
  int prefetch = 4;  // batches built ahead of the consumer
  // For training: an epoch never ends in a batch of one image
  // (runtime/data/batching.h).
  bool no_batch_of_one = false;
};

struct Batch {
  torch::Tensor images;  // [N, 3, side, side] float32, normalised
  torch::Tensor labels;  // [N] int64
  std::int64_t step = 0;  // position in the epoch
};

class BatchLoader {
 public:
  BatchLoader(const ImageStore& store, std::vector<std::size_t> indices, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  std::int64_t batches_per_epoch() const;
  std::size_t size() const { return indices_.size(); }

  // Begins epoch `epoch` at batch `first_step` (0 unless resuming).
  void start_epoch(int epoch, std::int64_t first_step = 0);
  // The epoch's next batch in order, or std::nullopt after its last.
  std::optional<Batch> next();

 private:
  void stop_workers();
  Batch build(std::int64_t step) const;

  const ImageStore& store_;
  std::vector<std::size_t> indices_;
  LoaderOptions options_;

  std::vector<std::size_t> order_;  // this epoch's sample order
  int epoch_ = 0;
  std::int64_t next_to_build_ = 0, next_to_return_ = 0, end_ = 0;
  bool stopping_ = false;
  std::map<std::int64_t, Batch> ready_;
  std::exception_ptr failure_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::thread> workers_;
};

// One image, augmented as a training sample would be: random resized crop
// (area 35-100 %, aspect 3/4-4/3) and horizontal flip, each when enabled.
cv::Mat augment(const cv::Mat& rgb, bool crop, bool flip, std::uint64_t seed);

// Writes an RGB uint8 image into `out` (3 x side x side floats), normalised.
void normalise_into(const cv::Mat& rgb, const std::array<float, 3>& mean,
                    const std::array<float, 3>& std, float* out);

}  // namespace nasoa::runtime
