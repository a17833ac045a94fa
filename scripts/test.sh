#!/usr/bin/env bash
# Sets up everything, builds the whole tree and runs the whole test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
build=$(bash "$root/scripts/configure.sh" | tail -n 1)
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 1200
