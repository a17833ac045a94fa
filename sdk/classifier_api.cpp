// nasoa::Classifier, the public face of runtime/inference.
#include <algorithm>
#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>

#include "nasoa/classifier.h"
#include "runtime/data/image_store.h"
#include "runtime/inference/model_dir.h"
#include "runtime/inference/preprocess.h"
#include "sdk/boundary.h"

namespace nasoa {
namespace {

// Bounds the activation memory of one forward pass of a large batch.
constexpr std::size_t kMaxBatch = 32;

}  // namespace

struct Classifier::Impl {
  runtime::LoadedModel model;
  torch::Device device{torch::kCPU};
  std::mutex forward_mutex;  // zoo::Network is not thread-safe

  int clamp_top_k(int top_k) const {
    if (top_k < 1)
      throw Error(ErrorCode::kInvalidArgument, "top_k is " + std::to_string(top_k) + "; it must be at least 1");
    return std::min(top_k, model.network->num_classes());
  }

  // Probabilities [N, classes] on the CPU for side x side RGB squares.
  torch::Tensor probabilities(const std::vector<cv::Mat>& squares) {
    const torch::Tensor input = runtime::squares_to_tensor(squares, model.info.mean, model.info.std);
    torch::NoGradGuard no_grad;
    std::lock_guard<std::mutex> lock(forward_mutex);
    return torch::softmax(model.network->forward(input.to(device)), 1).to(torch::kCPU);
  }

  std::vector<Prediction> top(const torch::Tensor& probs, int k) const {
    const torch::Tensor p = probs.contiguous();
    const float* data = p.data_ptr<float>();
    const int classes = static_cast<int>(p.size(0));
    std::vector<int> order(static_cast<std::size_t>(classes));
    for (int i = 0; i < classes; ++i) order[std::size_t(i)] = i;
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
      return data[a] > data[b] || (data[a] == data[b] && a < b);
    });
    std::vector<Prediction> out;
    for (int i = 0; i < k; ++i) {
      const int c = order[std::size_t(i)];
      out.push_back({c, model.info.labels[std::size_t(c)], data[c]});
    }
    return out;
  }

  std::vector<std::vector<Prediction>> predict_squares(const std::vector<cv::Mat>& squares, int k) {
    std::vector<std::vector<Prediction>> out;
    out.reserve(squares.size());
    for (std::size_t from = 0; from < squares.size(); from += kMaxBatch) {
      const std::size_t to = std::min(squares.size(), from + kMaxBatch);
      const torch::Tensor probs =
          probabilities(std::vector<cv::Mat>(squares.begin() + long(from), squares.begin() + long(to)));
      for (std::size_t i = 0; i < to - from; ++i) out.push_back(top(probs[long(i)], k));
    }
    return out;
  }
};

Classifier::Classifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Classifier::Classifier(Classifier&&) noexcept = default;
Classifier& Classifier::operator=(Classifier&&) noexcept = default;
Classifier::~Classifier() = default;

Classifier::Impl& Classifier::live() const {
  if (!impl_) throw Error(ErrorCode::kInvalidArgument, "nasoa::Classifier: used after it was moved from");
  return *impl_;
}

Classifier Classifier::open(const std::string& dir) {
  return sdk::at_boundary("Classifier::open", [&] {
    if (dir.empty()) throw Error(ErrorCode::kInvalidArgument, "Classifier::open: no model directory given (empty path)");
    auto impl = std::make_unique<Impl>();
    impl->model = runtime::open_model_dir(std::filesystem::absolute(dir).lexically_normal().string());
    if (torch::cuda::is_available()) {
      impl->model.network->to(torch::Device(torch::kCUDA));
      // The GPU the weights went to, with its index: a bare kCUDA means the
      // calling thread's current GPU, which another thread of a multi-GPU
      // app may have set otherwise, and its inputs would then land apart
      // from the weights.
      const std::vector<torch::Tensor> weights = impl->model.network->parameters();
      impl->device = weights.empty() ? torch::Device(torch::kCUDA, 0) : weights.front().device();
    }
    return Classifier(std::move(impl));
  });
}

std::vector<Prediction> Classifier::predict(const cv::Mat& image, int top_k) const {
  return sdk::at_boundary("Classifier::predict", [&] {
    Impl& impl = live();
    const int k = impl.clamp_top_k(top_k);
    const cv::Mat square = runtime::to_model_square(image, impl.model.info.input_size, "image");
    return impl.predict_squares({square}, k).front();
  });
}

std::vector<std::vector<Prediction>> Classifier::predict(const std::vector<cv::Mat>& images,
                                                         int top_k) const {
  return sdk::at_boundary("Classifier::predict", [&] {
    Impl& impl = live();
    const int k = impl.clamp_top_k(top_k);
    std::vector<cv::Mat> squares;
    squares.reserve(images.size());
    for (std::size_t i = 0; i < images.size(); ++i)
      squares.push_back(runtime::to_model_square(images[i], impl.model.info.input_size,
                                                 "image " + std::to_string(i)));
    return impl.predict_squares(squares, k);
  });
}

std::vector<Prediction> Classifier::predict_file(const std::string& path, int top_k) const {
  return predict_file(path, top_k, nullptr);
}

std::vector<Prediction> Classifier::predict_file(const std::string& path, int top_k, bool* more_pages) const {
  if (more_pages != nullptr) *more_pages = false;
  return sdk::at_boundary("Classifier::predict_file", [&] {
    Impl& impl = live();
    const int k = impl.clamp_top_k(top_k);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      // A loop of links, or a folder it may not enter, is not a missing file.
      if (ec && ec != std::errc::no_such_file_or_directory)
        throw Error(ErrorCode::kIo, path + ": cannot be read: " + ec.message());
      throw Error(ErrorCode::kNotFound, path + ": no such file");
    }
    if (std::filesystem::is_directory(path, ec))
      throw Error(ErrorCode::kInvalidArgument, path + ": a directory, not an image file");
    runtime::IngestOptions options;
    options.side = impl.model.info.input_size;
    std::string bytes;
    runtime::ImageRefusal refusal;
    bool pages_follow = false;
    const cv::Mat square = runtime::load_file_square(path, options, &bytes, &refusal, nullptr, nullptr, &pages_follow);
    if (square.empty()) {
      // An intact image of a kind it does not take is the caller's argument,
      // as predict(cv::Mat) calls the same pixels, not a corrupt file.
      using Kind = runtime::ImageRefusal::Kind;
      const ErrorCode code = refusal.kind == Kind::kUnreadable ? ErrorCode::kIo
                             : refusal.kind == Kind::kRefused  ? ErrorCode::kInvalidArgument
                                                               : ErrorCode::kCorrupt;
      throw Error(code, path + ": cannot be classified: " + refusal.reason);
    }
    std::vector<Prediction> out = impl.predict_squares({square}, k).front();
    // Only once the prediction stands: a call that throws reports no pages.
    if (more_pages != nullptr) *more_pages = pages_follow;
    return out;
  });
}

const std::string& Classifier::dir() const { return live().model.dir; }
const std::vector<std::string>& Classifier::labels() const { return live().model.info.labels; }
int Classifier::num_classes() const { return live().model.network->num_classes(); }
int Classifier::input_size() const { return live().model.info.input_size; }
const std::string& Classifier::encoding() const { return live().model.info.encoding; }
std::optional<double> Classifier::validation_accuracy() const {
  return live().model.info.upstream_accuracy;
}
bool Classifier::uses_cuda() const { return live().device.is_cuda(); }

}  // namespace nasoa
