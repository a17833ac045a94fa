#include "zoo/system/folder_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "nasoa/error.h"

namespace nasoa::zoo {

namespace {

using Clock = std::chrono::steady_clock;

// What a refused flock() means: ENOLCK and the like are a file system
// without locks (the work goes on unlocked); anything else is an error.
void refused(int& fd, int saved, const std::string& folder, const std::string& purpose) {
  ::close(fd);
  fd = -1;
  if (saved == ENOLCK || saved == EBADF || saved == EOPNOTSUPP || saved == EINVAL) return;
  throw Error(ErrorCode::kIo, folder + ": cannot lock the folder to " + purpose + ": " + std::strerror(saved));
}

}  // namespace

FolderLock::FolderLock(const std::string& folder, const std::string& purpose) { wait(folder, purpose); }

void FolderLock::wait(const std::string& folder, const std::string& purpose) {
  fd_ = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) return;
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    refused(fd_, errno, folder, purpose);
    return;
  }
}

FolderLock::FolderLock(const std::string& folder, const std::string& purpose, double wait_seconds) {
  if (!(wait_seconds > 0))
    throw Error(ErrorCode::kInternal, "FolderLock: the wait limit must be > 0, got " + std::to_string(wait_seconds));
  // No deadline to compute: a duration of infinite seconds has no value, and
  // one of more than a billion (31 years) overflows the clock's nanoseconds.
  if (wait_seconds > 1e9) {
    wait(folder, purpose);
    return;
  }
  fd_ = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) return;
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_seconds));
  // flock() has no timed wait: poll, at first often (a holder about to
  // finish), then every 50 ms, which is nothing next to what a holder that
  // keeps it longer is doing.
  auto pause = std::chrono::milliseconds(2);
  while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int saved = errno;
    if (saved == EINTR) continue;
    if (saved != EWOULDBLOCK) {
      refused(fd_, saved, folder, purpose);
      return;
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      ::close(fd_);
      fd_ = -1;
      timed_out_ = true;
      return;
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace nasoa::zoo
