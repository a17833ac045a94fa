#!/usr/bin/env bash
# Sets up everything, builds the whole tree and runs the whole test suite; then
# cross-compiles for aarch64 (Jetson) and runs the light tests under qemu
# (scripts/cross_test.sh). NASOA_SKIP_CROSS=1 skips the cross part.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
build=$(bash "$root/scripts/configure.sh" | tail -n 1)
cmake --build "$build" -j "$(nproc)"
(cd "$build" && ctest --output-on-failure -j "$(nproc)" --timeout 1200)

if [ "${NASOA_SKIP_CROSS:-0}" = "1" ]; then
  echo "test: cross build skipped (NASOA_SKIP_CROSS=1)"
  exit 0
fi
# The cross compiler takes glibc and libstdc++ from this host's aarch64
# packages, and the sysroot it builds is Debian 12's: on another release
# the programs would need newer symbol versions than that sysroot has.
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
if [ -z "${NASOA_SYSROOT:-}" ] && [ "$codename" != "bookworm" ]; then
  echo "test: cross build skipped: its Debian 12 sysroot matches only a Debian 12 host's cross compiler" \
       "(this is '${codename:-unknown}'); set NASOA_SYSROOT to an arm64 rootfs of this release to run it"
  exit 0
fi
bash "$root/scripts/cross_test.sh"
