#include "zoo/system/writer_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "nasoa/error.h"

namespace nasoa::zoo {

WriterLock::WriterLock(const std::string& lock_path, const std::string& what) : path_(lock_path) {
  // A holder removes the file before releasing it: a lock taken on a file
  // that is no longer (or no longer the one) at the path protects nothing,
  // and is taken again on the file now there.
  for (;;) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      throw Error(ErrorCode::kIo, path_ + ": cannot create the lock file of " + what + ": " + std::strerror(errno));
    int rc;
    while ((rc = ::flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
      const int saved = errno;
      if (saved == EWOULDBLOCK) {
        char holder[32] = {};
        const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
        ::close(fd);
        std::string pid = n > 0 ? std::string(holder, std::size_t(n)) : "";
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
        throw Error(ErrorCode::kInvalidArgument,
                    what + " is being written by another process" + (pid.empty() ? "" : " (pid " + pid + ")") +
                        "; wait for it to finish, or write elsewhere (lock " + path_ + ")");
      }
      ::close(fd);
      if (saved == ENOLCK || saved == EOPNOTSUPP || saved == EINVAL) return;  // no locks here: unlocked
      throw Error(ErrorCode::kIo, path_ + ": cannot lock " + what + ": " + std::strerror(saved));
    }
    struct stat held {}, there {};
    if (::fstat(fd, &held) == 0 && ::stat(path_.c_str(), &there) == 0 && held.st_dev == there.st_dev &&
        held.st_ino == there.st_ino) {
      fd_ = fd;
      break;
    }
    ::close(fd);  // removed by the writer before us as we took it: take the new one
  }
  // Who holds it, for the message another writer gets.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

WriterLock::~WriterLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);
}

}  // namespace nasoa::zoo
