// What the sample programs and the offline tools share on the command line:
// one exit status for bad arguments, a check for real-valued options, and
// error messages without LibTorch's stack traces.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "nasoa/adapter.h"
#include "nasoa/error.h"

namespace nasoa_samples {

// Options that parse but cannot be used (a companion option missing, an
// empty range, an output path inside an input): the program says why and
// exits 2 before any work, as for an option that does not parse.
class BadArguments : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `message` without the C++ stack trace that LibTorch's errors (c10::Error)
// append to what() from the line "Exception raised from ..." on: twenty
// lines and more of frames that tell a user nothing. Cut by its text, since
// this header builds without LibTorch's headers (the samples use the public
// API alone); c10::Error::what_without_backtrace() gives the same where
// LibTorch is at hand.
inline std::string without_backtrace(const std::string& message) {
  // c10's errors end in "Exception raised from ..." and frames; its enforce
  // failures (the CPU allocator's "can't allocate memory") in frames alone.
  std::size_t at = std::string::npos;
  for (const std::string marker : {"Exception raised from ", "frame #0"}) {
    std::size_t found = message.find('\n' + marker);
    if (found == std::string::npos && message.rfind(marker, 0) == 0) found = 0;
    at = std::min(at, found);
  }
  if (at == std::string::npos) return message;
  const std::string kept = message.substr(0, at);
  return kept.empty() ? "LibTorch error (no message)" : kept;
}

// Runs a library's check of what the command line gave (option values, an
// encoding) before any work: what it refuses as an invalid argument or
// encoding is a bad argument, its message after `context`.
template <typename Check>
auto checking_arguments(Check&& check, const std::string& context = "") -> decltype(check()) {
  try {
    return check();
  } catch (const nasoa::Error& e) {
    if (e.code() != nasoa::ErrorCode::kInvalidArgument && e.code() != nasoa::ErrorCode::kInvalidEncoding) throw;
    throw BadArguments(context + e.what());
  }
}

// The C++ API's option names in `message` replaced by the command-line flags
// that set them ({"AdapterOptions::threads", "--threads"}, ...), so that a
// program's user reads their own terms.
using FlagNames = std::vector<std::pair<std::string, std::string>>;
inline std::string in_flag_terms(std::string message, const FlagNames& flags) {
  for (const auto& [api, flag] : flags)
    for (std::size_t at = message.find(api); at != std::string::npos; at = message.find(api, at + flag.size()))
      message.replace(at, api.size(), flag);
  return message;
}

// The Adapter's options and the budget's fields as the sample programs'
// flags name them (those a program lacks never reach its messages).
inline const FlagNames kAdapterFlagNames = {
    {"AdapterOptions::threads", "--threads"},         {"AdapterOptions::estimate_watts", "--watts"},
    {"AdapterOptions::device_profile", "--profile"},  {"AdapterOptions::state_dir", "--state"},
    {"AdapterOptions::min_experience", "--min-experience"},
    {"AdapterOptions::checkpoint_interval_seconds", "--checkpoint-every"},
    {"Budget::memory_mib", "--memory"},               {"Budget::joules", "--energy"},
    {"Budget::seconds", "--budget"}};

// An Adapter for `options`, or nothing when the Adapter refuses them (more
// threads than the cores, say): a usage error, said on stderr after
// `program` in the terms of `flags`, for which the caller exits 2.
inline std::optional<nasoa::Adapter> make_adapter(const char* program, const nasoa::Zoo& zoo,
                                                  const nasoa::AdapterOptions& options, const FlagNames& flags = {}) {
  try {
    return std::optional<nasoa::Adapter>(std::in_place, zoo, options);
  } catch (const nasoa::Error& e) {
    if (e.code() != nasoa::ErrorCode::kInvalidArgument) throw;
    std::cerr << program << ": " << in_flag_terms(e.what(), flags) << '\n';
    return std::nullopt;
  }
}

// Whether everything written to standard output (std::cout and stdio) got
// there. Output lost to a full disk or a closed pipe is a failure, not a
// success: checked before a program exits 0.
inline bool standard_output_written() {
  std::cout.flush();
  return std::cout.good() && std::fflush(stdout) == 0 && !std::ferror(stdout);
}

// Runs a program's work and turns what it throws into the exit status and
// message every nasoa program gives: BadArguments exits 2 with its message,
// nasoa::Error 1 naming its code, any other exception 1 (each message
// without a LibTorch stack trace), and work that succeeded but could not
// write its standard output 1. `program` starts
// each message ("nasoa-zoo").
template <typename Work>
int run_reporting_errors(const char* program, Work&& work) {
  try {
    const int status = work();
    if (status == 0 && !standard_output_written()) {
      std::cerr << program << ": cannot write to standard output\n";
      return 1;
    }
    return status;
  } catch (const BadArguments& e) {
    std::cerr << program << ": " << e.what() << '\n';
    return 2;
  } catch (const nasoa::Error& e) {
    std::cerr << program << ": error (" << nasoa::to_string(e.code()) << "): " << without_backtrace(e.what()) << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << without_backtrace(e.what()) << '\n';
    return 1;
  }
}

// Parses the command line. Returns the status to exit with when the program
// should stop here: 0 after --help or --version, 2 on bad arguments (with
// CLI11's message on stderr); nothing when it should go on. Every program
// exits 0 done, 1 failed, 2 bad arguments, rather than with CLI11's own
// codes (105, 106, ...), so that scripts can tell a usage error apart.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

// A check for real-valued options. CLI11's own number checks (PositiveNumber,
// NonNegativeNumber, Range) compare with < and >, so "nan" passes all of them
// and "inf" the one-sided ones; a NaN budget then reads as no budget at all.
// This one takes only finite numbers within the bounds: `least` is the lower bound, excluded when `strictly`; `most` the upper one,
// always included.
inline CLI::Validator finite_number(double least, bool strictly,
                                    double most = std::numeric_limits<double>::max()) {
  auto show = [](double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", v);
    return std::string(text);
  };
  std::string range = (strictly ? "> " : ">= ") + show(least);
  if (most < std::numeric_limits<double>::max()) range += " and <= " + show(most);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return "not a number: " + text;
        const bool above = strictly ? v > least : v >= least;
        if (!std::isfinite(v) || !above || !(v <= most))
          return "expected a finite number " + range + ", got " + text;
        return {};
      },
      "NUMBER " + range);
}

// A check for whole-number options that must not be negative. CLI11's
// NonNegativeNumber names its range up to the largest double, a number of
// 309 digits, in its message.
inline CLI::Validator non_negative_integer() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
          return "expected a whole number >= 0, got '" + text + "'";
        return {};
      },
      "INT >= 0");
}

// A check for path and name options given explicitly empty (--out ""),
// which a program would otherwise take for the option left out; `hint`
// follows "is empty; " in the message.
inline CLI::Validator non_empty(const std::string& hint = "name one, or leave the option out") {
  return CLI::Validator(
      [hint](std::string& text) -> std::string { return text.empty() ? "is empty; " + hint : ""; }, "");
}

// A check for comma-separated list options (->delimiter(',')). CLI11 drops
// the empty items of "0.1,,0.3" but passes a value given empty ("--frozen
// ''") through, which reads as 0 for a number and as a name "" otherwise.
inline CLI::Validator list_values() {
  return non_empty("give values separated by commas, or leave the option out");
}

}  // namespace nasoa_samples
