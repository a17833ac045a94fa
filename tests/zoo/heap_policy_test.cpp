#include "zoo/system/heap_policy.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

extern char** environ;

namespace nasoa::zoo {
namespace {

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

TEST(HeapPolicy, TheEnvironmentsOwnTuningWins) {
  const char* plain[] = {"HOME=/root", "OMP_WAIT_POLICY=PASSIVE", "XMALLOC_X=1", nullptr};
  const char* tunables[] = {"HOME=/root", "GLIBC_TUNABLES=glibc.malloc.trim_threshold=0", nullptr};
  const char* malloc_variable[] = {"MALLOC_ARENA_MAX=2", nullptr};
  const char* other_tunables[] = {"GLIBC_TUNABLES=glibc.pthread.rseq=0", nullptr};
  const char* empty[] = {nullptr};
  EXPECT_FALSE(environment_tunes_heap(plain));
  EXPECT_FALSE(environment_tunes_heap(empty));
  EXPECT_FALSE(environment_tunes_heap(nullptr));
  EXPECT_TRUE(environment_tunes_heap(tunables));
  EXPECT_TRUE(environment_tunes_heap(malloc_variable));
  EXPECT_FALSE(environment_tunes_heap(other_tunables)) << "tunables of other parts of glibc";
}

#if defined(__GLIBC__)
// A training step's pattern: eight 4 MiB blocks (activations, gradients)
// allocated, written and freed; `steps` of them after one that faults the
// pages in, and the minor page faults those took.
long faults_of_steps(int steps) {
  constexpr std::size_t kBlock = 4u << 20;
  auto step = [&] {
    char* blocks[8];
    for (char*& b : blocks) {
      b = static_cast<char*>(std::malloc(kBlock));
      if (!b) std::abort();
      std::memset(b, 1, kBlock);
    }
    for (int i = 7; i >= 0; --i) std::free(blocks[i]);
  };
  step();
  const long before = minor_faults();
  for (int i = 0; i < steps; ++i) step();
  return minor_faults() - before;
}

TEST(HeapPolicy, FreedBlocksAreReusedWithoutFaultingPagesInAgain) {
  if (environment_tunes_heap(environ)) GTEST_SKIP() << "the environment tunes the heap; it is left alone";
  if (keeping_freed_memory()) GTEST_SKIP() << "earlier work in this process set the heap already";
  // Faults counted per page: transparent huge pages would fault 2 MiB at a
  // time (this process and the child it forks).
  prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  const long pages_per_step = long((32u << 20) / std::size_t(sysconf(_SC_PAGESIZE)));
  // The same steps with glibc's defaults, in a child process forked before
  // the settings change: it shows that the pattern is one that faults.
  int pipe_ends[2];
  ASSERT_EQ(pipe(pipe_ends), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const long faults = faults_of_steps(20);
    const ssize_t written = write(pipe_ends[1], &faults, sizeof faults);
    _exit(written == sizeof faults ? 0 : 1);
  }
  close(pipe_ends[1]);
  long default_faults = -1;
  EXPECT_EQ(read(pipe_ends[0], &default_faults, sizeof default_faults), ssize_t(sizeof default_faults));
  close(pipe_ends[0]);
  int status = 0;
  waitpid(child, &status, 0);

  EXPECT_FALSE(keeping_freed_memory()) << "asking sets nothing";
  EXPECT_TRUE(would_keep_freed_memory()) << "the environment leaves the heap to us";
  EXPECT_FALSE(keeping_freed_memory()) << "asking what would happen sets nothing";
  ASSERT_TRUE(keep_freed_memory_for_reuse());
  EXPECT_TRUE(would_keep_freed_memory());
  EXPECT_TRUE(keeping_freed_memory());
  EXPECT_TRUE(keep_freed_memory_for_reuse()) << "a second call keeps the settings";
  const long kept_faults = faults_of_steps(20);
  // 20 steps write 20 x 32 MiB: the defaults fault most of those pages in
  // again, the kept heap less than one step's.
  EXPECT_GT(default_faults, 5 * pages_per_step);
  EXPECT_LT(kept_faults, pages_per_step) << "with glibc's defaults: " << default_faults;
  give_back_freed_memory();
}
#endif

}  // namespace
}  // namespace nasoa::zoo
