#!/usr/bin/env bash
# Configures the build tree (default: build/, or $NASOA_BUILD_DIR), once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${NASOA_BUILD_DIR:-$root/build}
generator=()
if command -v ninja > /dev/null; then generator=(-G Ninja); fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
fi
echo "$build"
