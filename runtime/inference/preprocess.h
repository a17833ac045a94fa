// runtime/inference/preprocess.h: images into a network's input, as training sees them.
//
// An image goes through the same conversion as training ingestion
// (runtime/data/image_store.h: to_rgb8, then fit_square to the model's input
// size), then is scaled to [0,1] and normalised with the model's mean and std.
#pragma once

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include <array>
#include <vector>

namespace nasoa::runtime {

// `image` as cv::imread/imdecode give it (1-4 channels, BGR(A) order, 8- or
// 16-bit unsigned, or float in [0,1]) to a side x side RGB uint8 square.
// Throws Error{kInvalidArgument} for an empty image, an unsupported channel
// count or a signed integer depth; `what` names the image in the message.
cv::Mat to_model_square(const cv::Mat& image, int side, const std::string& what);

// side x side RGB uint8 squares to a normalised [N, 3, side, side] float32
// tensor on the CPU.
torch::Tensor squares_to_tensor(const std::vector<cv::Mat>& squares, const std::array<float, 3>& mean,
                                const std::array<float, 3>& std);

}  // namespace nasoa::runtime
