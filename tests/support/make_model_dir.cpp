// Test helper: a freshly initialised model directory and a folder of images
// for the nasoa-classify CLI test.
// Usage: nasoa_test_make_model_dir MODEL_DIR IMAGE_DIR LABEL...
//        nasoa_test_make_model_dir --cuda-available
//
// The second form prints 1 when LibTorch reaches a CUDA device and 0 when
// not, so that a CLI test knows which answer to require of a tool asked for
// CUDA without asking the tool under test.
//
// IMAGE_DIR gets a.png (BGR), sub/b.jpg (BGR), sub/c.png (grey),
// sub/deeper/d.png (BGRA) and notes.txt (not an image, to be ignored).
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "nasoa/error.h"
#include "runtime/inference/model_dir.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--cuda-available") {
    std::cout << (torch::cuda::is_available() ? 1 : 0) << '\n';
    return 0;
  }
  if (argc < 5) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR IMAGE_DIR LABEL LABEL...\n";
    return 2;
  }
  try {
    torch::manual_seed(1);
    nasoa::runtime::ModelDirInfo info;
    for (int i = 3; i < argc; ++i) info.labels.push_back(argv[i]);
    info.input_size = 32;
    info.provenance = {"nasoa_test_make_model_dir", "nasoa_test_make_model_dir", 1,
                       "2026-01-01T00:00:00Z", "none: freshly initialised"};
    nasoa::zoo::Network net(nasoa::Encoding::parse("2-_8_1-2"), int(info.labels.size()));
    net->eval();
    nasoa::runtime::save_model_dir(argv[1], net, info);

    const fs::path images = argv[2];
    fs::create_directories(images / "sub/deeper");
    cv::RNG rng(7);
    cv::Mat bgr(40, 60, CV_8UC3), gray(50, 30, CV_8UC1), bgra(36, 36, CV_8UC4);
    for (cv::Mat* m : {&bgr, &gray, &bgra}) rng.fill(*m, cv::RNG::UNIFORM, 0, 255);
    bool ok = cv::imwrite((images / "a.png").string(), bgr) && cv::imwrite((images / "sub/b.jpg").string(), bgr) &&
              cv::imwrite((images / "sub/c.png").string(), gray) &&
              cv::imwrite((images / "sub/deeper/d.png").string(), bgra);
    std::ofstream(images / "notes.txt") << "not an image\n";
    if (!ok) throw std::runtime_error("cv::imwrite failed under " + images.string());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << argv[0] << ": " << e.what() << '\n';
    return 1;
  }
}
