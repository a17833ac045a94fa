#!/usr/bin/env bash
# Configures the build tree (default: build/, or $NASOA_BUILD_DIR, relative to
# the repository root), once.
# A configure that failed leaves a cache but no build file: that tree is
# configured again, not taken as done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${NASOA_BUILD_DIR:-$root/build}
# A relative folder is the repository root's, whichever folder the script
# that called this one was started from.
case $build in /*) ;; *) build=$root/$build ;; esac
generator=()
if command -v ninja > /dev/null; then generator=(-G Ninja); fi
if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
fi
echo "$build"
