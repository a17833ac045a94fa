// Test entry point: LibTorch's thread count is set explicitly (Debian's build
// starts with one) and seeds are fixed so that every run is the same.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  torch::manual_seed(20211011);
  return RUN_ALL_TESTS();
}
