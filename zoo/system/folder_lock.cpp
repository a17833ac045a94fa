#include "zoo/system/folder_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "nasoa/error.h"

namespace nasoa::zoo {

FolderLock::FolderLock(const std::string& folder, const std::string& purpose) {
  fd_ = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) return;
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int saved = errno;
    ::close(fd_);
    fd_ = -1;
    if (saved == ENOLCK || saved == EBADF || saved == EOPNOTSUPP || saved == EINVAL) return;
    throw Error(ErrorCode::kIo, folder + ": cannot lock the folder to " + purpose + ": " + std::strerror(saved));
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace nasoa::zoo
