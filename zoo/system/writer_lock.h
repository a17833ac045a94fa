// zoo/system/writer_lock.h: one writer at a time for an output that has no
// folder of its own to lock while it is made (a model directory being
// trained into, with its checkpoint beside it).
//
// A lock file beside the output, held with flock() for the writer's whole
// run and removed when the run ends. The kernel releases it when the process
// dies, so a kill never leaves the output locked (the file stays, unlocked,
// and the next writer takes it). Where the file system has no locks, nothing
// is held and the run goes on, as with FolderLock.
#pragma once

#include <string>

namespace nasoa::zoo {

class WriterLock {
 public:
  // Takes the lock file `lock_path` (created when missing) without waiting.
  // Throws Error{kInvalidArgument} naming `what` (the output, as the caller
  // knows it) and the holder's process id when another writer holds it, and
  // Error{kIo} when the file cannot be created or locked.
  WriterLock(const std::string& lock_path, const std::string& what);
  // Removes the lock file, then releases the lock.
  ~WriterLock();
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

  bool held() const { return fd_ >= 0; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace nasoa::zoo
