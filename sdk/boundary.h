// sdk/boundary.h: the public API's exception boundary.
//
// Every public entry point runs its body through at_boundary(), so that what
// escapes is always nasoa::Error: c10::Error (LibTorch), cv::Exception
// (OpenCV), std::filesystem and allocation failures are translated here.
#pragma once

#include <exception>
#include <new>
#include <string>
#include <system_error>
#include <utility>

#include "nasoa/error.h"

namespace nasoa::sdk {

template <typename F>
auto at_boundary(const char* where, F&& body) -> decltype(body()) {
  try {
    return std::forward<F>(body)();
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kIo, std::string(where) + ": out of memory");
  } catch (const std::system_error& e) {
    throw Error(ErrorCode::kIo, std::string(where) + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kInternal, std::string(where) + ": " + e.what());
  }
}

}  // namespace nasoa::sdk
