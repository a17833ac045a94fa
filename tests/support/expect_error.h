// One check for "this call is refused with this error": the code and a piece
// of the message that names what is at fault. Use it as
//   EXPECT_TRUE(nasoa::testing::throws_error([&] { f(); }, ErrorCode::kX, "needle"));
// so that a failure reports the test's own line, the code and the message.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

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

// The same check with several pieces of the message, each of which must
// appear. When `what` is given, the message of a nasoa::Error the call throws
// is stored there whatever the outcome, for checks of some other property of
// the message (its length, a byte it must not hold):
//   std::string what;
//   EXPECT_TRUE(nasoa::testing::throws_error_with([&] { f(); }, ErrorCode::kX, {"a", "b"}, &what));
//   EXPECT_LT(what.size(), 400u) << what;
inline ::testing::AssertionResult throws_error_with(const std::function<void()>& call, ErrorCode code,
                                                    const std::vector<std::string>& needles,
                                                    std::string* what = nullptr) {
  try {
    call();
  } catch (const Error& e) {
    const std::string message = e.what();
    if (what != nullptr) *what = message;
    if (e.code() != code)
      return ::testing::AssertionFailure() << "error code " << to_string(e.code()) << ", expected "
                                           << to_string(code) << ": " << message;
    for (const std::string& needle : needles)
      if (message.find(needle) == std::string::npos)
        return ::testing::AssertionFailure() << "the message lacks '" << needle << "': " << message;
    return ::testing::AssertionSuccess();
  }
  ::testing::AssertionResult accepted = ::testing::AssertionFailure();
  accepted << "accepted; expected " << to_string(code) << " mentioning";
  for (const std::string& needle : needles) accepted << " '" << needle << "'";
  return accepted;
}

}  // namespace nasoa::testing
