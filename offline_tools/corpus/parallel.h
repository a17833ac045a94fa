// offline_tools/corpus/parallel.h: a fixed pool of workers over an index range.
//
// Which worker takes which index depends on timing, so whatever a job
// produces must depend on its index alone (the corpus keys its randomness by
// what is being made, never by worker).
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "zoo/system/usable_cores.h"

namespace nasoa::corpus {

inline int resolve_threads(int threads) {
  if (threads > 0) return threads;
  return nasoa::zoo::usable_cores();
}

// Calls fn(index, worker) for every index in [0, n), worker in [0, threads).
// The first exception stops the remaining jobs and is rethrown here.
inline void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t, int)>& fn) {
  const int workers = int(std::min<std::size_t>(std::size_t(std::max(1, threads)), std::max<std::size_t>(n, 1)));
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&](int worker) {
    for (std::size_t i = next++; i < n && !failed; i = next++) {
      try {
        fn(i, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace nasoa::corpus
