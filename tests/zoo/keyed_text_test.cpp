// keyed_value against files laid out as the kernel and the NVIDIA driver write them.
#include "zoo/system/keyed_text.h"

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace {

using nasoa::zoo::keyed_value;

TEST(KeyedTextTest, ReadsTheFieldsOfProcFiles) {
  nasoa::testing::TempDir dir;
  dir.write("status", "Name:\tnasoa-adapt\nVmHWM:\t  262144 kB\nVmRSS:\t  131072 kB\n");
  dir.write("cpuinfo",
            "processor\t: 0\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Processor\n\n"
            "processor\t: 1\nmodel name\t: Another\n");
  dir.write("information", "Model: \t\t NVIDIA H200\nIRQ:   42\nGPU UUID: \t GPU-1\n");
  EXPECT_EQ(keyed_value(dir / "status", "VmRSS"), "131072 kB");
  EXPECT_EQ(keyed_value(dir / "status", "VmHWM"), "262144 kB");
  EXPECT_EQ(keyed_value(dir / "cpuinfo", "model name"), "Intel(R) Xeon(R) Processor") << "the first one";
  EXPECT_EQ(keyed_value(dir / "cpuinfo", "model"), "85") << "a key is matched whole, not as a prefix";
  EXPECT_EQ(keyed_value(dir / "information", "Model"), "NVIDIA H200");
}

TEST(KeyedTextTest, WhatTheFileDoesNotSayIsUnknown) {
  nasoa::testing::TempDir dir;
  dir.write("cpuinfo", "Hardware\t:\nmodel name\nVmRSS 12 kB\n");
  EXPECT_EQ(keyed_value(dir / "cpuinfo", "Hardware"), std::nullopt) << "an empty value";
  EXPECT_EQ(keyed_value(dir / "cpuinfo", "model name"), std::nullopt) << "no colon";
  EXPECT_EQ(keyed_value(dir / "cpuinfo", "VmRSS"), std::nullopt);
  EXPECT_EQ(keyed_value(dir / "missing", "VmRSS"), std::nullopt);
}

}  // namespace
