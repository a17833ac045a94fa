// One check for "this call is refused with this error": the code and a piece
// of the message that names what is at fault. Use it as
//   EXPECT_TRUE(nasoa::testing::throws_error([&] { f(); }, ErrorCode::kX, "needle"));
// so that a failure reports the test's own line, the code and the message.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "nasoa/error.h"

namespace nasoa::testing {

inline ::testing::AssertionResult throws_error(const std::function<void()>& call, ErrorCode code,
                                               const std::string& needle) {
  try {
    call();
  } catch (const Error& e) {
    if (e.code() != code)
      return ::testing::AssertionFailure() << "error code " << to_string(e.code()) << ", expected "
                                           << to_string(code) << ": " << e.what();
    if (std::string(e.what()).find(needle) == std::string::npos)
      return ::testing::AssertionFailure() << "the message lacks '" << needle << "': " << e.what();
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "accepted; expected " << to_string(code) << " mentioning '" << needle
                                       << "'";
}

}  // namespace nasoa::testing
