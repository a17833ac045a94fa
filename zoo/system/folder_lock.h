// zoo/system/folder_lock.h: an exclusive lock on a folder, so that processes
// that change what it holds take turns.
//
// The lock is flock() on the folder itself (a lock file would be left in it).
// It is released when the object goes, and by the kernel when the process
// dies, so a kill never leaves it stuck. Where the file system cannot lock a
// folder (NFS emulates flock with record locks, which a folder opened for
// reading cannot take), the work goes on without it: held() is false.
#pragma once

#include <string>

namespace nasoa::zoo {

class FolderLock {
 public:
  // Waits for the lock on `folder`. `purpose` completes the error message
  // ("cannot lock the folder to " + purpose) of Error{kIo} for a lock the
  // file system refuses for another reason than not having locks. A missing
  // or unreadable folder is not locked (held() false): the work in it will
  // say what is wrong.
  FolderLock(const std::string& folder, const std::string& purpose);
  // The same, waiting at most `wait_seconds` (> 0; the lock is retried every
  // few milliseconds; +infinity, or more than 1e9 s, waits as the constructor
  // above does). When another holder keeps it longer, the object holds
  // nothing and timed_out() is true: the caller, which knows what the wait
  // was costing, says what to do.
  FolderLock(const std::string& folder, const std::string& purpose, double wait_seconds);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

  // This process holds the lock (false where the file system has none).
  bool held() const { return fd_ >= 0; }
  // The wait limit passed with the lock still taken.
  bool timed_out() const { return timed_out_; }

 private:
  void wait(const std::string& folder, const std::string& purpose);  // the first constructor's wait

  int fd_ = -1;
  bool timed_out_ = false;
};

}  // namespace nasoa::zoo
