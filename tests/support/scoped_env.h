// tests/support/scoped_env.h: sets an environment variable for a scope and
// restores it afterwards, also when an assertion or exception leaves early,
// so that one test's HOME or XDG_STATE_HOME never leaks into the next test
// of the same process.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace nasoa::testing {

class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) saved_ = old;
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (saved_) {
      ::setenv(name_.c_str(), saved_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> saved_;
};

}  // namespace nasoa::testing
