// How the offline tools report failures: nasoa-gather records a run that
// fails in LibTorch or runs out of memory and goes on (a resume must not
// meet it again), and every tool's error message is free of LibTorch's
// stack trace. Neither failure can be caused on purpose through a tool's
// command line, so the code that handles them is driven directly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <new>
#include <sstream>
#include <string>

#include "nasoa/error.h"
#include "offline_tools/nasoa_gather/run_outcome.h"
#include "samples/common/command_line.h"
#include "samples/common/text_file.h"

namespace {

using nasoa::Error;
using nasoa::ErrorCode;
using nasoa::runtime::FineTuneOutcome;

const std::string kContext = "task 'a', model 'm', lr 0.1, frozen 0, epochs 1";

// The exception LibTorch throws for a failed check, stack trace and all.
c10::Error libtorch_error() {
  try {
    TORCH_CHECK(false, "Expected more than 1 value per channel when training");
  } catch (const c10::Error& e) {
    return e;
  }
  return c10::Error("unreachable", "");
}

TEST(GatherRunOutcomeTest, ALibTorchErrorIsAFailedRunNamedWithItsContextAndWithoutAStackTrace) {
  const c10::Error thrown = libtorch_error();
  ASSERT_NE(std::string(thrown.what()).find("Exception raised from"), std::string::npos)
      << "LibTorch's errors no longer carry a stack trace; this test needs one";
  std::ostringstream notes;
  const FineTuneOutcome outcome =
      nasoa::gather::outcome_of_run([&]() -> FineTuneOutcome { throw thrown; }, kContext, "cpu", notes);
  EXPECT_EQ(outcome.stop_reason, "failed: Expected more than 1 value per channel when training");
  EXPECT_LT(outcome.validation_accuracy, 0);
  EXPECT_TRUE(outcome.history.empty()) << "a failed run has no evaluated epoch: the fit leaves it out";
  EXPECT_EQ(outcome.device, "cpu");
  EXPECT_NE(notes.str().find(kContext + ": failed: Expected more than 1 value"), std::string::npos) << notes.str();
  EXPECT_EQ(notes.str().find("Exception raised from"), std::string::npos) << notes.str();
  EXPECT_EQ(notes.str().find("frame #"), std::string::npos) << notes.str();
}

TEST(GatherRunOutcomeTest, RunningOutOfMemoryIsAFailedRun) {
  std::ostringstream notes;
  const FineTuneOutcome outcome = nasoa::gather::outcome_of_run(
      []() -> FineTuneOutcome { throw std::bad_alloc(); }, kContext, "cuda:0", notes);
  EXPECT_EQ(outcome.stop_reason, "failed: out of memory");
  EXPECT_EQ(outcome.device, "cuda:0");
  EXPECT_NE(notes.str().find(kContext), std::string::npos) << notes.str();
  EXPECT_TRUE(nasoa::gather::failed_for_memory(outcome.stop_reason));
  // The note says how to make it again: what else held the memory may be gone.
  EXPECT_NE(notes.str().find("--retry-out-of-memory"), std::string::npos) << notes.str();

  // LibTorch's allocator says so with an error of its own, a c10::Error.
  std::ostringstream gpu_notes;
  const FineTuneOutcome gpu = nasoa::gather::outcome_of_run(
      []() -> FineTuneOutcome {
        throw c10::OutOfMemoryError(c10::SourceLocation{__func__, __FILE__, static_cast<std::uint32_t>(__LINE__)},
                                    "CUDA out of memory. Tried to allocate 2.00 GiB");
      },
      kContext, "cuda:0", gpu_notes);
  EXPECT_EQ(gpu.stop_reason, "failed: out of memory: CUDA out of memory. Tried to allocate 2.00 GiB");
  EXPECT_TRUE(nasoa::gather::failed_for_memory(gpu.stop_reason));
  EXPECT_NE(gpu_notes.str().find("--retry-out-of-memory"), std::string::npos) << gpu_notes.str();
  // Any other failure would fail the same way again.
  std::ostringstream other_notes;
  const FineTuneOutcome other = nasoa::gather::outcome_of_run(
      []() -> FineTuneOutcome { throw libtorch_error(); }, kContext, "cpu", other_notes);
  EXPECT_FALSE(nasoa::gather::failed_for_memory(other.stop_reason));
  EXPECT_EQ(other_notes.str().find("--retry-out-of-memory"), std::string::npos) << other_notes.str();
}

TEST(GatherRunOutcomeTest, DivergenceIsRecordedAndOtherErrorsStopTheGatheringNamingTheRun) {
  std::ostringstream notes;
  const FineTuneOutcome fine = nasoa::gather::outcome_of_run(
      [] {
        FineTuneOutcome o;
        o.stop_reason = "completed";
        o.validation_accuracy = 0.5;
        return o;
      },
      kContext, "cpu", notes);
  EXPECT_EQ(fine.stop_reason, "completed");
  EXPECT_DOUBLE_EQ(fine.validation_accuracy, 0.5);
  // fine_tune's own error for a loss that diverged before any evaluation.
  const FineTuneOutcome diverged = nasoa::gather::outcome_of_run(
      []() -> FineTuneOutcome {
        throw Error(ErrorCode::kInvalidArgument,
                    "training diverged: the loss is NaN, before any weights were evaluated; lower the learning rate");
      },
      kContext, "cpu", notes);
  EXPECT_EQ(diverged.stop_reason, "diverged before any weights were evaluated");
  EXPECT_TRUE(notes.str().empty()) << "a success or a divergence is no failure to report: " << notes.str();
  try {
    nasoa::gather::outcome_of_run([]() -> FineTuneOutcome { throw Error(ErrorCode::kIo, "x.png: cannot read"); },
                                  kContext, "cpu", notes);
    ADD_FAILURE() << "an error of the request was recorded as the run's outcome";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_EQ(std::string(e.what()), kContext + ": x.png: cannot read");
  }
}

TEST(CommandLineTest, ErrorMessagesLoseLibTorchsStackTrace) {
  const c10::Error thrown = libtorch_error();
  EXPECT_EQ(nasoa_samples::without_backtrace(thrown.what()), thrown.what_without_backtrace());
  EXPECT_EQ(nasoa_samples::without_backtrace("x.png: cannot read"), "x.png: cannot read");
  // An enforce failure (the CPU allocator's) carries frames alone.
  EXPECT_EQ(nasoa_samples::without_backtrace("[enforce fail at alloc_cpu.cpp:75] data. DefaultCPUAllocator: can't "
                                             "allocate memory\nframe #0: c10::ThrowEnforceNotMet(...) + 0x3a\n"
                                             "frame #1: ...\n"),
            "[enforce fail at alloc_cpu.cpp:75] data. DefaultCPUAllocator: can't allocate memory");
  // What a tool prints for a LibTorch error that reaches its top level.
  ::testing::internal::CaptureStderr();
  const int status = nasoa_samples::run_reporting_errors("nasoa-tool", [&]() -> int { throw thrown; });
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(status, 1);
  EXPECT_EQ(printed, "nasoa-tool: error: Expected more than 1 value per channel when training\n");
}

TEST(CommandLineTest, SkippedFilesAreListedUpToALimit) {
  std::vector<nasoa::SkippedFile> skipped;
  for (int i = 0; i < 12; ++i) skipped.push_back({"class/" + std::to_string(i) + ".png", "not an image"});
  skipped[0].path = "class/line\nbreak.png";
  const std::vector<std::string> lines = nasoa_samples::skipped_lines(skipped);
  ASSERT_EQ(lines.size(), 11u);
  EXPECT_EQ(lines[0], "skipped class/line\\nbreak.png: not an image") << "a path must stay on its line";
  EXPECT_EQ(lines[9], "skipped class/9.png: not an image");
  EXPECT_EQ(lines[10], "and 2 more skipped files");
  EXPECT_TRUE(nasoa_samples::skipped_lines({}).empty());
}

}  // namespace
