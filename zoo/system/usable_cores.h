// zoo/system/usable_cores.h: how many cores this process may really use, for
// choosing thread counts. std::thread::hardware_concurrency() counts the
// machine's online CPUs; a process pinned with taskset, or run in a
// container with a CPU limit (docker --cpus, a Kubernetes limit), gets fewer,
// and a thread team sized to the machine then waits on itself every step.
#pragma once

#include <string>

namespace nasoa::zoo {

// The cores of this process's CPU affinity mask, lowered to its cgroup CPU
// quota (cgroup v2 cpu.max or v1 cpu.cfs_quota_us / cpu.cfs_period_us, the
// tightest of its cgroup and their ancestors) rounded up; at least 1.
int usable_cores();

// The same from given inputs, so that tests run against fake trees:
// `affinity_cores` as sched_getaffinity counts them, the texts of
// /proc/self/cgroup and /proc/self/mountinfo, and `root` prefixed to every
// mount point read from mountinfo ("" on a real system). Files that are
// missing or unreadable mean no limit.
int usable_cores(int affinity_cores, const std::string& proc_self_cgroup, const std::string& proc_self_mountinfo,
                 const std::string& root);

}  // namespace nasoa::zoo
