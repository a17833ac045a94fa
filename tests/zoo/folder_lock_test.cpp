// Processes (and, as here, open descriptions within one process) that lock
// the same folder take turns; a folder that cannot be opened is not locked.
#include "zoo/system/folder_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include "tests/support/temp_dir.h"

namespace nasoa::zoo {
namespace {

TEST(FolderLockTest, ASecondLockOnTheFolderWaitsForTheFirst) {
  nasoa::testing::TempDir dir;
  std::optional<FolderLock> first;
  first.emplace(dir.path().string(), "test");
  ASSERT_TRUE(first->held());
  std::atomic<bool> second_held{false};
  std::thread waiter([&] {
    const FolderLock second(dir.path().string(), "test");
    second_held = second.held();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(second_held) << "the second lock did not wait";
  first.reset();
  waiter.join();
  EXPECT_TRUE(second_held);
}

TEST(FolderLockTest, AMissingFolderIsNotLocked) {
  nasoa::testing::TempDir dir;
  const FolderLock lock(dir / "missing", "test");
  EXPECT_FALSE(lock.held());
}

}  // namespace
}  // namespace nasoa::zoo
