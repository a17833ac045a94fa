#include "runtime/data/batch_loader.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <random>

namespace nasoa::runtime {
namespace {

// SplitMix64: decorrelates the seeds of neighbouring samples and epochs.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

cv::Mat augment(const cv::Mat& rgb, bool crop, bool flip, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  // `rgb` may be a view into the shared cache: never write through it (an
  // output Mat of matching size would be reused in place by cv::resize).
  cv::Mat out;
  if (crop) {
    const double area = double(rgb.rows) * rgb.cols;
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = area * (0.35 + 0.65 * unit(rng));
      const double ratio = std::exp(std::log(3.0 / 4.0) + unit(rng) * (std::log(4.0 / 3.0) - std::log(3.0 / 4.0)));
      const int w = int(std::lround(std::sqrt(target * ratio)));
      const int h = int(std::lround(std::sqrt(target / ratio)));
      if (w < 1 || h < 1 || w > rgb.cols || h > rgb.rows) continue;
      const int x = int(unit(rng) * (rgb.cols - w + 1)) % (rgb.cols - w + 1);
      const int y = int(unit(rng) * (rgb.rows - h + 1)) % (rgb.rows - h + 1);
      cv::resize(rgb(cv::Rect(x, y, w, h)), out, rgb.size(), 0, 0, cv::INTER_LINEAR);
      break;
    }
  }
  if (out.empty()) out = rgb;
  if (flip && unit(rng) < 0.5) {
    cv::Mat flipped;
    cv::flip(out, flipped, 1);
    out = flipped;
  }
  return out;
}

void normalise_into(const cv::Mat& rgb, const std::array<float, 3>& mean,
                    const std::array<float, 3>& std, float* out) {
  const int plane = rgb.rows * rgb.cols;
  float scale[3], shift[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * std[std::size_t(c)]);
    shift[c] = -mean[std::size_t(c)] / std[std::size_t(c)];
  }
  for (int y = 0; y < rgb.rows; ++y) {
    const std::uint8_t* row = rgb.ptr<std::uint8_t>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      const int at = y * rgb.cols + x;
      for (int c = 0; c < 3; ++c) out[c * plane + at] = row[3 * x + c] * scale[c] + shift[c];
    }
  }
}

BatchLoader::BatchLoader(const ImageStore& store, std::vector<std::size_t> indices, LoaderOptions options)
    : store_(store), indices_(std::move(indices)), options_(options) {
  options_.batch_size = std::max(1, options_.batch_size);
  options_.workers = std::max(1, options_.workers);
  options_.prefetch = std::max(1, options_.prefetch);
}

BatchLoader::~BatchLoader() { stop_workers(); }

std::int64_t BatchLoader::batches_per_epoch() const {
  return runtime::batches_per_epoch(std::int64_t(indices_.size()), options_.batch_size, options_.no_batch_of_one);
}

void BatchLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

void BatchLoader::start_epoch(int epoch, std::int64_t first_step) {
  stop_workers();
  order_ = indices_;
  if (options_.shuffle) {
    std::mt19937_64 rng(mix(options_.seed ^ mix(std::uint64_t(epoch) + 1)));
    std::shuffle(order_.begin(), order_.end(), rng);
  }
  epoch_ = epoch;
  next_to_build_ = next_to_return_ = std::clamp<std::int64_t>(first_step, 0, batches_per_epoch());
  end_ = batches_per_epoch();
  ready_.clear();
  failure_ = nullptr;
  stopping_ = false;
  for (int w = 0; w < options_.workers; ++w) {
    workers_.emplace_back([this] {
      while (true) {
        std::int64_t step;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          changed_.wait(lock, [&] {
            return stopping_ || next_to_build_ >= end_ ||
                   next_to_build_ < next_to_return_ + options_.prefetch;
          });
          if (stopping_ || next_to_build_ >= end_) return;
          step = next_to_build_++;
        }
        try {
          Batch batch = build(step);
          std::lock_guard<std::mutex> lock(mutex_);
          ready_.emplace(step, std::move(batch));
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex_);
          if (!failure_) failure_ = std::current_exception();
        }
        changed_.notify_all();
      }
    });
  }
}

std::optional<Batch> BatchLoader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_to_return_ >= end_) return std::nullopt;
  changed_.wait(lock, [&] { return failure_ || ready_.count(next_to_return_) > 0; });
  if (failure_) std::rethrow_exception(failure_);
  auto it = ready_.find(next_to_return_);
  Batch batch = std::move(it->second);
  ready_.erase(it);
  ++next_to_return_;
  lock.unlock();
  changed_.notify_all();
  return batch;
}

Batch BatchLoader::build(std::int64_t step) const {
  const std::size_t begin = std::size_t(step) * std::size_t(options_.batch_size);
  // The last batch takes what is left: one image over joins it.
  const std::size_t end = step + 1 == batches_per_epoch() ? order_.size()
                                           : std::min(order_.size(), begin + std::size_t(options_.batch_size));
  const int side = store_.side();
  Batch batch;
  batch.step = step;
  batch.images = torch::empty({std::int64_t(end - begin), 3, side, side}, torch::kFloat32);
  batch.labels = torch::empty({std::int64_t(end - begin)}, torch::kInt64);
  float* images = batch.images.data_ptr<float>();
  std::int64_t* labels = batch.labels.data_ptr<std::int64_t>();
  const bool augmenting = options_.random_resized_crop || options_.horizontal_flip;
  for (std::size_t i = begin; i < end; ++i) {
    const std::size_t sample = order_[i];
    cv::Mat rgb = store_.image(sample);
    if (augmenting)
      rgb = augment(rgb, options_.random_resized_crop, options_.horizontal_flip,
                    mix(options_.seed ^ mix(std::uint64_t(epoch_) << 32 ^ i)));
    normalise_into(rgb, options_.mean, options_.std, images + (i - begin) * 3 * side * side);
    labels[i - begin] = store_.label(sample);
  }
  return batch;
}

}  // namespace nasoa::runtime
