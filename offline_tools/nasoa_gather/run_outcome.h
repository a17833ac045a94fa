// offline_tools/nasoa_gather/run_outcome.h: what nasoa-gather records for a
// run whose fine-tune threw.
//
// A run that fails in a way of its own (the same plan on the same task would
// fail the same way again) is recorded all the same, without an evaluated
// epoch, so that the predictor's fit leaves it out. Left unrecorded, every
// resumed gathering would reach it again, fail again, and never gather the
// plans after it.
#pragma once

#include <torch/torch.h>

#include <exception>
#include <functional>
#include <new>
#include <ostream>
#include <string>

#include "nasoa/error.h"
#include "runtime/train/fine_tuner.h"

namespace nasoa::gather {

inline constexpr const char* kOutOfMemory = "out of memory";

// Whether a recorded stop reason is a run that ran out of memory.
inline bool failed_for_memory(const std::string& stop_reason) {
  return stop_reason.rfind(std::string("failed: ") + kOutOfMemory, 0) == 0;
}

// Calls `fine_tune` and returns its outcome, or, when it throws, the outcome
// to record:
//  - a loss that diverged before the first evaluation
//    (runtime::diverged_before_evaluation): stop reason "diverged before any
//    weights were evaluated";
//  - memory running out (std::bad_alloc, or LibTorch's
//    c10::OutOfMemoryError on a GPU): stop reason "failed: out of memory"
//    (with LibTorch's message after a colon), which a later gathering with
//    --retry-out-of-memory makes again, as it depends on what else held
//    the memory at the time;
//  - LibTorch's other errors (c10::Error: an operation this network cannot
//    do on this task), or any other exception but nasoa::Error: stop reason
//    "failed: " and the message (LibTorch's without its stack trace).
// Either failure is said on `notes` after `context` (the task, model and
// plan).
// Any other nasoa::Error (an image that can no longer be read, a setting the
// runtime refuses) is rethrown, its message after `context`: it stops the
// gathering, as it would stop every run after it. `device` is the outcome's
// device when the run threw.
inline runtime::FineTuneOutcome outcome_of_run(const std::function<runtime::FineTuneOutcome()>& fine_tune,
                                               const std::string& context, const std::string& device,
                                               std::ostream& notes) {
  runtime::FineTuneOutcome outcome;
  std::string failure;
  try {
    return fine_tune();
  } catch (const Error& e) {
    if (!runtime::diverged_before_evaluation(e)) throw Error(e.code(), context + ": " + e.what());
    outcome.stop_reason = "diverged before any weights were evaluated";
    outcome.device = device;
    return outcome;
  } catch (const c10::OutOfMemoryError& e) {
    failure = std::string(kOutOfMemory) + ": " + e.what_without_backtrace();
  } catch (const c10::Error& e) {
    failure = e.what_without_backtrace();
  } catch (const std::bad_alloc&) {
    failure = kOutOfMemory;
  } catch (const std::exception& e) {
    failure = e.what();
  }
  // One line: LibTorch puts the context of an error on lines of its own.
  for (char& c : failure)
    if (c == '\n') c = ' ';
  outcome.stop_reason = "failed: " + failure;
  outcome.device = device;
  notes << "gathering: " << context << ": failed: " << failure
        << (failed_for_memory(outcome.stop_reason)
                ? " (recorded as a failed run, which the predictor's fit leaves out; a rerun with "
                  "--retry-out-of-memory makes it again)\n"
                : " (recorded as a failed run, which the predictor's fit leaves out and a rerun does not make again)\n");
  return outcome;
}

}  // namespace nasoa::gather
