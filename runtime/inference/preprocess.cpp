#include "runtime/inference/preprocess.h"

#include <string>

#include "nasoa/error.h"
#include "runtime/data/image_store.h"

namespace nasoa::runtime {

cv::Mat to_model_square(const cv::Mat& image, int side, const std::string& what) {
  if (image.empty()) throw Error(ErrorCode::kInvalidArgument, what + ": empty image");
  if (image.dims != 2)
    throw Error(ErrorCode::kInvalidArgument, what + ": a " + std::to_string(image.dims) +
                                                 "-dimensional Mat, not an image");
  if (const std::string why = unsupported_pixels(image); !why.empty())
    throw Error(ErrorCode::kInvalidArgument, what + ": " + why);
  // The background under transparent pixels is the one training composites onto.
  return fit_square(to_rgb8(image, IngestOptions{}.background), side);
}

torch::Tensor squares_to_tensor(const std::vector<cv::Mat>& squares, const std::array<float, 3>& mean,
                                const std::array<float, 3>& std) {
  if (squares.empty()) return torch::empty({0, 3, 0, 0});
  const int side = squares.front().rows;
  torch::Tensor batch = torch::empty({static_cast<std::int64_t>(squares.size()), 3, side, side});
  float* out = batch.data_ptr<float>();
  const std::size_t plane = std::size_t(side) * side;
  for (std::size_t n = 0; n < squares.size(); ++n) {
    const cv::Mat& sq = squares[n];
    float* image = out + n * 3 * plane;
    for (int y = 0; y < side; ++y) {
      const cv::Vec3b* row = sq.ptr<cv::Vec3b>(y);
      for (int x = 0; x < side; ++x)
        for (std::size_t c = 0; c < 3; ++c)
          image[c * plane + std::size_t(y) * side + x] = (row[x][int(c)] / 255.0f - mean[c]) / std[c];
    }
  }
  return batch;
}

}  // namespace nasoa::runtime
