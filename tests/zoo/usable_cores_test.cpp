// usable_cores against fake /proc and cgroup trees of each layout.
#include "zoo/system/usable_cores.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/temp_dir.h"

namespace {

using nasoa::zoo::usable_cores;

// mountinfo lines as the kernel writes them.
const std::string kV2Mount = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
const std::string kV1Mounts =
    "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n";

TEST(UsableCoresTest, WithoutACgroupLimitItIsTheAffinityMask) {
  nasoa::testing::TempDir dir;
  dir.write("sys/fs/cgroup/app/cpu.max", "max 100000\n");
  EXPECT_EQ(usable_cores(6, "0::/app\n", kV2Mount, dir.path().string()), 6);
  // No cgroup files at all, or nothing mounted: the mask.
  EXPECT_EQ(usable_cores(3, "0::/\n", "", dir.path().string()), 3);
  EXPECT_EQ(usable_cores(0, "", "", ""), 1) << "at least one core";
}

TEST(UsableCoresTest, ACgroupV2QuotaRoundsUpAndTheTightestAncestorWins) {
  nasoa::testing::TempDir dir;
  dir.write("sys/fs/cgroup/cpu.max", "max 100000\n");
  dir.write("sys/fs/cgroup/user/cpu.max", "350000 100000\n");  // 3.5 cores
  dir.write("sys/fs/cgroup/user/app/cpu.max", "max 100000\n");
  EXPECT_EQ(usable_cores(16, "0::/user/app\n", kV2Mount, dir.path().string()), 4);
  dir.write("sys/fs/cgroup/user/app/cpu.max", "50000 100000\n");  // half a core
  EXPECT_EQ(usable_cores(16, "0::/user/app\n", kV2Mount, dir.path().string()), 1);
  // A mask narrower than the quota.
  EXPECT_EQ(usable_cores(1, "0::/user\n", kV2Mount, dir.path().string()), 1);
}

TEST(UsableCoresTest, InAContainerTheMountTopIsTheContainersCgroup) {
  // docker --cpus=2 with a private cgroup namespace shows its cgroup as "/";
  // without one, /proc/self/cgroup names a path the mount does not hold.
  nasoa::testing::TempDir dir;
  dir.write("sys/fs/cgroup/cpu.max", "200000 100000\n");
  EXPECT_EQ(usable_cores(16, "0::/\n", kV2Mount, dir.path().string()), 2);
  EXPECT_EQ(usable_cores(16, "0::/system.slice/docker-1a2b.scope\n", kV2Mount, dir.path().string()), 2);
}

TEST(UsableCoresTest, ACgroupV1QuotaIsRead) {
  nasoa::testing::TempDir dir;
  const std::string cgroup = "12:cpuset:/\n11:cpu,cpuacct:/kubepods/pod1\n0::/\n";
  dir.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  dir.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  dir.write("sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_quota_us", "150000\n");
  dir.write("sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(usable_cores(8, cgroup, kV1Mounts, dir.path().string()), 2);
  dir.write("sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_quota_us", "-1\n");
  EXPECT_EQ(usable_cores(8, cgroup, kV1Mounts, dir.path().string()), 8) << "-1 is no limit";
}

TEST(UsableCoresTest, DamagedFilesMeanNoLimit) {
  nasoa::testing::TempDir dir;
  for (const std::string text : {"", "garbage\n", "0 100000\n", "100000 0\n", "-5 100000\n", "1e400 1\n"}) {
    dir.write("sys/fs/cgroup/cpu.max", text);
    EXPECT_EQ(usable_cores(4, "0::/\n", kV2Mount, dir.path().string()), 4) << "cpu.max: " << text;
  }
  EXPECT_EQ(usable_cores(4, "not a cgroup line\n", "not mountinfo\n", dir.path().string()), 4);
}

}  // namespace
