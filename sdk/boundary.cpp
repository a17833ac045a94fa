// The translation behind sdk/boundary.h, compiled once: it needs LibTorch's
// and OpenCV's exception types, which the API's other files need not see.
#include "sdk/boundary.h"

#include <c10/util/Exception.h>

#include <new>
#include <opencv2/core.hpp>
#include <string>
#include <system_error>

namespace nasoa::sdk {
namespace {

// LibTorch's CPU allocator ("can't allocate memory"), its tensor metadata
// ("Could not allocate memory for ...") and older CUDA builds ("CUDA out of
// memory") report failure as a plain c10::Error.
bool says_out_of_memory(const std::string& message) {
  return message.find("allocate memory") != std::string::npos ||
         message.find("out of memory") != std::string::npos;
}

// The first line: LibTorch's messages can go on with call sites.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

void rethrow_as_error(const char* where) {
  const std::string at = std::string(where) + ": ";
  try {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kOutOfMemory, at + "out of memory");
  } catch (const c10::OutOfMemoryError& e) {
    throw Error(ErrorCode::kOutOfMemory, at + "out of memory: " + first_line(e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    const std::string message = first_line(e.what_without_backtrace());
    if (says_out_of_memory(message)) throw Error(ErrorCode::kOutOfMemory, at + "out of memory: " + message);
    throw Error(ErrorCode::kInternal, at + message);
  } catch (const cv::Exception& e) {
    if (e.code == cv::Error::StsNoMem) throw Error(ErrorCode::kOutOfMemory, at + "out of memory: " + e.err);
    throw Error(ErrorCode::kInternal, at + e.what());
  } catch (const std::system_error& e) {
    throw Error(ErrorCode::kIo, at + e.what());
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kInternal, at + e.what());
  }
}

}  // namespace nasoa::sdk
