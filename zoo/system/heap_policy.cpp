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
    // variables glibc reads, and the tunables that replace them.
    if (entry.rfind("GLIBC_TUNABLES=", 0) == 0 || entry.rfind("MALLOC_", 0) == 0) return true;
  }
  return false;
}

namespace {
std::once_flag once;
std::atomic<bool> applied{false};
}  // namespace

bool keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  std::call_once(once, [] {
    if (environment_tunes_heap(environ)) return;
    // 32 MiB is the most glibc accepts for the threshold on 64-bit systems;
    // larger blocks (rare here) keep their own mappings.
    bool all = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
    all = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && all;
    all = mallopt(M_TOP_PAD, 64 << 20) == 1 && all;
    applied = all;
  });
  return applied;
#else
  return false;
#endif
}

bool keeping_freed_memory() { return applied; }

void give_back_freed_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace nasoa::zoo
