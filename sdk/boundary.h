// sdk/boundary.h: the public API's exception boundary.
//
// Every public entry point runs its body through at_boundary(), so that what
// escapes is always nasoa::Error: c10::Error (LibTorch), cv::Exception
// (OpenCV), std::filesystem and allocation failures are translated here.
// What is not a std::exception (an app's own exception thrown from its
// progress callback) passes through unchanged.
#pragma once

#include <exception>
#include <utility>

#include "nasoa/error.h"

namespace nasoa::sdk {

// Called in a catch block: throws the nasoa::Error for the exception in
// flight. Running out of memory is kOutOfMemory whichever allocator ran out
// (LibTorch's CPU or CUDA allocator, OpenCV's, operator new); I/O failures
// of the standard library are kIo; anything else is kInternal, with
// LibTorch's message stripped of its C++ backtrace.
[[noreturn]] void rethrow_as_error(const char* where);

template <typename F>
auto at_boundary(const char* where, F&& body) -> decltype(body()) {
  try {
    return std::forward<F>(body)();
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    rethrow_as_error(where);
  }
}

}  // namespace nasoa::sdk
