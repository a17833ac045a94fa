// Processes (and, as here, open descriptions within one process) that lock
// the same folder take turns; a folder that cannot be opened is not locked.
#include "zoo/system/folder_lock.h"
#include "zoo/system/writer_lock.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <chrono>
#include <limits>
#include <optional>
#include <thread>

#include "nasoa/error.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"

namespace nasoa::zoo {
namespace {

// Whether another open description of the folder could take the lock now.
bool lockable_now(const std::string& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool taken = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);  // releases what it took
  return taken;
}

// What a second lock on `folder` (with a wait limit of `wait` seconds, or
// none) did, taken in another thread while this one holds the first for
// `hold` and then releases it. It notes whether the first was already
// released when it got its own: a correct lock passes however the threads
// are scheduled; one that does not wait fails whenever the waiter reaches it
// within `hold` (a look after a sleep would pass it whenever the waiter was
// slow).
struct SecondLock {
  bool held = false, timed_out = true, taken_after_release = false;
};
SecondLock second_lock_while_the_first_is_held(const std::string& folder, std::optional<double> wait,
                                               std::chrono::milliseconds hold) {
  std::optional<FolderLock> first;
  first.emplace(folder, "test");
  EXPECT_TRUE(first->held());
  EXPECT_FALSE(lockable_now(folder)) << "the first lock is not exclusive";
  std::atomic<bool> released{false};
  SecondLock out;
  std::thread waiter([&] {
    const FolderLock second = wait ? FolderLock(folder, "test", *wait) : FolderLock(folder, "test");
    out.held = second.held();
    out.timed_out = second.timed_out();
    out.taken_after_release = released.load();
  });
  std::this_thread::sleep_for(hold);
  released = true;
  first.reset();
  waiter.join();
  return out;
}

TEST(FolderLockTest, ASecondLockOnTheFolderWaitsForTheFirst) {
  nasoa::testing::TempDir dir;
  const std::string folder = dir.path().string();
  const SecondLock second = second_lock_while_the_first_is_held(folder, std::nullopt, std::chrono::milliseconds(100));
  EXPECT_TRUE(second.held);
  EXPECT_TRUE(second.taken_after_release) << "the second lock did not wait for the first";
  EXPECT_TRUE(lockable_now(folder)) << "a lock outlived its object";
}

TEST(FolderLockTest, ALimitedWaitEndsWithoutTheLockWhileAnotherHoldsIt) {
  nasoa::testing::TempDir dir;
  const std::string folder = dir.path().string();
  const FolderLock first(folder, "test");
  ASSERT_TRUE(first.held());
  const auto started = std::chrono::steady_clock::now();
  const FolderLock second(folder, "test", 0.2);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_FALSE(second.held());
  EXPECT_TRUE(second.timed_out());
  EXPECT_GE(waited, 0.2) << "gave up before its limit";
  EXPECT_TRUE(first.held());
  EXPECT_FALSE(lockable_now(folder)) << "the waiter's giving up released the holder's lock";
}

TEST(FolderLockTest, ALimitedWaitTakesTheLockOnceItIsReleased) {
  nasoa::testing::TempDir dir;
  const std::string folder = dir.path().string();
  const SecondLock second = second_lock_while_the_first_is_held(folder, 60.0, std::chrono::milliseconds(100));
  EXPECT_TRUE(second.held);
  EXPECT_FALSE(second.timed_out);
  EXPECT_TRUE(second.taken_after_release) << "the second lock did not wait for the first";
  EXPECT_TRUE(lockable_now(folder)) << "a lock outlived its object";
}

TEST(FolderLockTest, AnEndlessLimitWaitsAsLongAsItTakes) {
  nasoa::testing::TempDir dir;
  // Infinite, and too many seconds for the clock's nanoseconds.
  for (const double wait : {std::numeric_limits<double>::infinity(), 1e12}) {
    const SecondLock second =
        second_lock_while_the_first_is_held(dir.path().string(), wait, std::chrono::milliseconds(300));
    EXPECT_TRUE(second.held) << wait << " s: the wait gave up";
    EXPECT_FALSE(second.timed_out) << wait;
    EXPECT_TRUE(second.taken_after_release) << wait << " s: the second lock did not wait for the first";
  }
}

TEST(FolderLockTest, AnUnlockedFolderIsTakenAtOnceWithALimit) {
  nasoa::testing::TempDir dir;
  const FolderLock lock(dir.path().string(), "test", 0.01);
  EXPECT_TRUE(lock.held());
  EXPECT_FALSE(lock.timed_out());
  EXPECT_FALSE(lockable_now(dir.path().string()));
}

TEST(FolderLockTest, AMissingFolderIsNotLocked) {
  nasoa::testing::TempDir dir;
  const FolderLock lock(dir / "missing", "test");
  EXPECT_FALSE(lock.held());
}

TEST(WriterLockTest, ASecondWriterIsRefusedNamingTheOutputAndTheHolder) {
  nasoa::testing::TempDir dir;
  const std::string lock = dir / "model.lock";
  std::optional<WriterLock> first;
  first.emplace(lock, "out/model");
  EXPECT_TRUE(first->held());
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { WriterLock second(lock, "out/model"); },
                                                ErrorCode::kInvalidArgument,
                                                {"out/model is being written by another process",
                                                 "pid " + std::to_string(::getpid())}));
  // Released, the file is gone and the next writer takes it.
  first.reset();
  EXPECT_FALSE(std::filesystem::exists(lock));
  EXPECT_TRUE(WriterLock(lock, "out/model").held());
  // A lock file a killed writer left (no holder) is taken.
  { std::ofstream(lock) << "999999\n"; }
  EXPECT_TRUE(WriterLock(lock, "out/model").held());
}

TEST(WriterLockTest, AFolderThatCannotHoldTheFileIsAnIoError) {
  nasoa::testing::TempDir dir;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { WriterLock lock(dir / "missing/model.lock", "missing/model"); },
                                           ErrorCode::kIo, "missing/model.lock"));
}

}  // namespace
}  // namespace nasoa::zoo
