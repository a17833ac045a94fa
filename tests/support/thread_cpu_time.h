// tests/support/thread_cpu_time.h: the calling thread's CPU time.
//
// On a shared machine it is closer to what the work costs than the wall
// clock: a thread the scheduler holds back accrues none.
#pragma once

#include <time.h>

namespace nasoa::testing {

inline double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

}  // namespace nasoa::testing
