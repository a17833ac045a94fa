// nasoa/error.h: the one exception type of the public API.
//
// Every public function that can fail throws nasoa::Error and nothing else:
// LibTorch, OpenCV and protobuf failures are caught at the API boundary and
// translated. The message names the offending input (file, field, value) and
// what was expected, written for the person who has to fix that input. The
// one exception: what a callback of the caller's throws (Adapter::fine_tune's
// progress callback) reaches the caller unchanged, so that an app can stop a
// run with an exception of its own and catch exactly that.
#pragma once

#include <stdexcept>
#include <string>

#include "nasoa/export.h"

namespace nasoa {

enum class ErrorCode {
  kInvalidArgument,     // a parameter value outside its documented range
  kInvalidEncoding,     // an architecture string that is not a buildable network
  kNotFound,            // a file, directory or named item that does not exist
  kIo,                  // reading or writing failed (permissions, disk full, ...)
  kCorrupt,             // content fails its checksum, is truncated or malformed
  kUnsupportedVersion,  // written by a newer (or unknown) format version
  kInternal,            // a bug in nasoa; please report it
  kOutOfMemory,         // host or GPU memory ran out (LibTorch's, OpenCV's or
                        // the C++ allocator): a smaller batch, input or model,
                        // or Budget::memory_mib, may fit; the message says
                        // what was being allocated where it is known
};

// Stable lower-case name of a code, e.g. "invalid-encoding".
NASOA_API const char* to_string(ErrorCode code) noexcept;

class NASOA_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ~Error() override;

  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace nasoa
