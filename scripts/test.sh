#!/usr/bin/env bash
# Sets up everything, builds the whole tree and runs the whole test suite; then
# cross-compiles for aarch64 (Jetson) and runs the light tests under qemu
# (scripts/cross_test.sh). NASOA_SKIP_CROSS=1 skips the cross part.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
build=$(bash "$root/scripts/configure.sh" | tail -n 1)
cmake --build "$build" -j "$(nproc)"
results=$build/ctest-results.xml
(cd "$build" && ctest --output-on-failure -j "$(nproc)" --timeout 1200 --output-junit "$results")
# A test that skipped for want of what setup.sh installs fails the run.
python3 "$root/scripts/check_skips.py" "$results"

if [ "${NASOA_SKIP_CROSS:-0}" = "1" ]; then
  echo "test: cross build skipped (NASOA_SKIP_CROSS=1)"
  exit 0
fi
# The cross compiler takes glibc and libstdc++ from this host's aarch64
# packages, and the sysroot it builds is Debian 12's: on another release
# the programs would need newer symbol versions than that sysroot has.
# Debian 12 builds its aarch64 cross compiler for amd64 hosts (an arm64
# host runs the native suite above, which is the aarch64 build).
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
if [ "$arch" != amd64 ] && [ "$arch" != x86_64 ]; then
  echo "test: cross build skipped: it runs on amd64 hosts (this is $arch; the native build above is the target's)"
  exit 0
fi
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
if [ -z "${NASOA_SYSROOT:-}" ] && [ "$codename" != "bookworm" ]; then
  echo "test: cross build skipped: its Debian 12 sysroot matches only a Debian 12 host's cross compiler" \
       "(this is '${codename:-unknown}'); set NASOA_SYSROOT to an arm64 rootfs of this release to run it"
  exit 0
fi
bash "$root/scripts/cross_test.sh"
