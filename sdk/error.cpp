#include "nasoa/error.h"

namespace nasoa {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid-argument";
    case ErrorCode::kInvalidEncoding: return "invalid-encoding";
    case ErrorCode::kNotFound: return "not-found";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kCorrupt: return "corrupt";
    case ErrorCode::kUnsupportedVersion: return "unsupported-version";
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kOutOfMemory: return "out-of-memory";
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

// Out of line so that the vtable and typeinfo live in one exported place and
// `catch (const nasoa::Error&)` works across shared-library boundaries.
Error::~Error() = default;

}  // namespace nasoa
