#include "zoo/system/heap_policy.h"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string_view>

extern char** environ;

namespace nasoa::zoo {
bool environment_tunes_heap(const char* const* environment) {
  for (const char* const* e = environment; e && *e; ++e) {
    const std::string_view entry(*e);
    // MALLOC_ARENA_MAX, MALLOC_TRIM_THRESHOLD_ and the other MALLOC_*
    // variables glibc reads, and the malloc tunables that replace them.
    if (entry.rfind("MALLOC_", 0) == 0) return true;
    if (entry.rfind("GLIBC_TUNABLES=", 0) == 0 && entry.find("glibc.malloc.") != std::string_view::npos) return true;
  }
  return false;
}

namespace {
std::once_flag once;
std::atomic<bool> applied{false};
std::atomic<bool> attempted{false};
}  // namespace

bool keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  std::call_once(once, [] {
    if (environment_tunes_heap(environ)) return;
    // The most glibc accepts for the threshold: 32 MiB on 64-bit systems,
    // 512 KiB on 32-bit ones; larger blocks keep their own mappings. It is
    // set first and alone decides: a trim threshold set without it would
    // stop glibc from raising the mmap threshold itself (5x slower, measured).
    const int mmap_threshold = sizeof(void*) >= 8 ? 32 << 20 : 512 << 10;
    if (mallopt(M_MMAP_THRESHOLD, mmap_threshold) != 1) return;
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);
    applied = true;
  });
  // Only once the outcome is settled: set at the start, a concurrent
  // would_keep_freed_memory() could read the attempt without its result.
  attempted = true;
  return applied;
#else
  return false;
#endif
}

bool keeping_freed_memory() { return applied; }

bool would_keep_freed_memory() {
#if defined(__GLIBC__)
  if (attempted) return applied;
  return !environment_tunes_heap(environ);
#else
  return false;
#endif
}

void give_back_freed_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace nasoa::zoo
