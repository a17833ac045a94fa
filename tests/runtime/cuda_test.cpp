// The GPU paths: fine-tuning on CUDA (bf16 autocast), the budget guard
// there, inference on the GPU against the CPU, and NVML's energy. They run
// where LibTorch sees a CUDA device and are skipped elsewhere: the CI
// machines have no GPU, and Debian's LibTorch (what scripts/setup.sh
// installs) is built without CUDA. On a GPU host they need a build against
// a CUDA LibTorch (docs/gpu.md). ctest reports them as skipped, not passed.
#include <gtest/gtest.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "runtime/data/batch_loader.h"
#include "runtime/energy/energy_meter.h"
#include "runtime/train/autocast.h"
#include "runtime/train/fine_tuner.h"
#include "tests/runtime/fine_tune_support.h"

namespace nasoa::runtime {
namespace {

using testing::fashion_subset;

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "LibTorch sees no CUDA device here";
    if (!testing::have_fashion_mnist())
      GTEST_SKIP() << "package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
    IngestOptions options;
    options.side = 32;
    store_ = std::make_unique<ImageStore>(fashion_subset(200), options);
  }

  FineTuneJob job(int epochs, bool cuda) { return testing::small_job(*store_, epochs, cuda); }

  std::unique_ptr<ImageStore> store_;
};

TEST_F(CudaTest, FineTunesOnTheGpuAsWellAsOnTheCpu) {
  FineTuneJob cpu = job(4, false);
  const FineTuneOutcome on_cpu = fine_tune(cpu, Limits(600, 0));
  FineTuneJob gpu = job(4, true);
  const FineTuneOutcome on_gpu = fine_tune(gpu, Limits(600, 0));
  EXPECT_EQ(on_cpu.device, "cpu");
  ASSERT_EQ(on_gpu.device.rfind("cuda:0", 0), 0u) << on_gpu.device;
  // bf16 autocast exactly where the GPU runs bf16 (compute capability 8.0+).
  const bool bf16 = cuda_bf16_usable(torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(on_gpu.device.find("bf16") != std::string::npos, bf16) << on_gpu.device;
  EXPECT_EQ(on_gpu.stop_reason, "completed");
  ASSERT_EQ(on_gpu.history.size(), 4u);
  EXPECT_GT(on_gpu.validation_accuracy, 0.6) << "chance is 1/3";
  EXPECT_LT(on_gpu.history.back().train_loss, on_gpu.history.front().train_loss);
  // Same data, seeds and regime: bf16 and other kernels move the result a
  // little, not the skill.
  EXPECT_NEAR(on_gpu.validation_accuracy, on_cpu.validation_accuracy, 0.1);
  // The weights handed back are finite.
  for (const auto& [name, tensor] : zoo::module_state(*gpu.network))
    EXPECT_TRUE(torch::isfinite(tensor).all().item<bool>()) << name;
}

TEST_F(CudaTest, TheTimeBudgetHoldsOnTheGpu) {
  FineTuneJob j = job(100000, true);
  testing::expect_stops_within_the_time_budget(j);
}

TEST_F(CudaTest, GpuInferenceAgreesWithTheCpu) {
  FineTuneJob j = job(1, false);
  fine_tune(j, Limits(600, 0));
  zoo::NetworkImpl& net = *j.network;
  net.eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({64, 3, 32, 32});
  const torch::Tensor on_cpu = torch::softmax(net.forward(x), 1);
  net.to(torch::Device(torch::kCUDA, 0));
  const torch::Tensor on_gpu = torch::softmax(net.forward(x.to(torch::kCUDA)), 1).cpu();
  // cuDNN may run float32 convolutions in TF32 (10-bit mantissa): close, not equal.
  EXPECT_LT((on_gpu - on_cpu).abs().max().item<float>(), 2e-2f);
  EXPECT_GE(torch::eq(on_gpu.argmax(1), on_cpu.argmax(1)).sum().item<std::int64_t>(), 62);
}

// Where LibTorch has no CUDA (Debian's build, a CPU-only box), a job that
// asks for the GPU runs on the CPU and says so, and bf16 is never chosen.
TEST(CudaFallbackTest, AJobAskingForCudaWhereThereIsNoneRunsOnTheCpu) {
  EXPECT_FALSE(cuda_bf16_usable(torch::Device(torch::kCPU)));
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is here: CudaTest covers it";
  if (!testing::have_fashion_mnist())
    GTEST_SKIP() << "package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  IngestOptions options;
  options.side = 32;
  const ImageStore store(fashion_subset(60), options);
  FineTuneJob j = testing::small_job(store, 1, /*cuda=*/true);
  const FineTuneOutcome out = fine_tune(j, Limits(600, 0));
  EXPECT_EQ(out.device, "cpu");
  EXPECT_EQ(out.stop_reason, "completed");
  EXPECT_GT(out.steps, 0);
}

// NVML is a discrete GPU's meter (a Jetson has none: it reads its INA3221).
TEST(CudaEnergyTest, NvmlMeasuresTheGpuWhileItWorks) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "LibTorch sees no CUDA device here";
  if (void* nvml = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL)) {
    ::dlclose(nvml);
  } else {
    GTEST_SKIP() << "no libnvidia-ml.so.1 here (not a discrete NVIDIA GPU)";
  }
  MeterOptions options;
  options.kind = MeterKind::kNvml;
  const std::unique_ptr<EnergyMeter> meter = detect_energy_meter(options);
  EXPECT_EQ(meter->kind(), MeterKind::kNvml);
  EXPECT_TRUE(meter->measured());
  EXPECT_EQ(meter->name().rfind("nvml", 0), 0u) << meter->name();

  const auto read = [&] {
    if (meter->quantity() == MeterQuantity::kPower) return meter->read_watts();
    double uj = 0;
    for (std::uint64_t c : meter->read_counters_uj()) uj += double(c);
    return uj;
  };
  const double before = read();
  const auto start = std::chrono::steady_clock::now();
  const torch::Tensor a = torch::randn({4096, 4096}, torch::Device(torch::kCUDA, 0));
  torch::Tensor c = a;
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(2)) {
    for (int i = 0; i < 20; ++i) c = torch::tanh(c.matmul(a) * 1e-3);
    torch::cuda::synchronize();
  }
  const double after = read();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (meter->quantity() == MeterQuantity::kPower) {
    EXPECT_GT(after, 5.0) << "watts of a busy GPU";
    EXPECT_LT(after, 2000.0);
  } else {
    const double watts = (after - before) * 1e-6 / seconds;
    EXPECT_GT(watts, 5.0) << "mean watts of a busy GPU over " << seconds << " s";
    EXPECT_LT(watts, 2000.0);
  }
}

}  // namespace
}  // namespace nasoa::runtime
