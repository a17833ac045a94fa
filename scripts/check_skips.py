#!/usr/bin/env python3
"""Fails when a test skipped that should have run.

setup.sh installs every data package the tests read, so a test that skipped
for want of one means a broken set-up behind a green run. Only the tests that
need something set-up cannot give may skip: a GPU, or a machine setting (the
heap test where the environment tunes malloc, the swap test where TMPDIR's
file system cannot exchange folders, the address-space test under a hard
RLIMIT_AS).

Usage: check_skips.py JUNIT [--what PREFIX]
  JUNIT is ctest's --output-junit. A skip shows there as a skipped case (a
  test per GoogleTest case, as gtest_discover_tests registers them) or as
  GoogleTest's "[  SKIPPED ]" lines in a passed case's output (an executable
  run whole, as the cross-compiled tree runs them under the emulator: ctest
  passes it when its cases skip). For the second, ctest must keep the whole
  output of passed tests (--test-output-size-passed).
"""
import argparse
import os
import re
import sys
import xml.etree.ElementTree as ET

MACHINE_BOUND = re.compile(r"(Cuda|CudaEnergy)Test\.|HeapPolicy\.FreedBlocksAreReused|"
                           r"ModelDirTest\.OpensWholeModelsWhileSavesSwapNewOnesIn$|"
                           r"ClassifierTest\.RunningOutOfMemoryIsOutOfMemory$")


def skipped_in(junit):
    names = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("skipped") is not None or case.get("status") in ("notrun", "disabled"):
            names.append(case.get("name") or "")
        # "[  SKIPPED ] Suite.Name (N ms)" as each skips, the names again at
        # the end; the count line ("2 tests, listed below:") has no dot.
        for out in case.iter("system-out"):
            names += re.findall(r"^\[  SKIPPED \] (\S+\.\S+)", out.text or "", re.MULTILINE)
    return list(dict.fromkeys(names))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit", metavar="JUNIT")
    parser.add_argument("--what", default="test", help="the prefix of the printed lines")
    args = parser.parse_args()
    if not os.path.isfile(args.junit):
        sys.exit(f"{args.what}: ctest wrote no {args.junit} (its --output-junit needs CMake 3.21 or newer)")
    skipped = skipped_in(args.junit)
    unexpected = [name for name in skipped if not MACHINE_BOUND.match(name)]
    if unexpected:
        print(f"{args.what}: these tests skipped although set-up installed what they need:\n  " +
              "\n  ".join(unexpected))
        return 1
    print(f"{args.what}: {len(skipped)} skipped, all of them for want of a GPU or for the machine's settings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
