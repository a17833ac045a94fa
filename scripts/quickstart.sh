#!/usr/bin/env bash
# Sets up everything, builds the tools and runs the main job on the embedded
# default: the parameter and MAC table of the reference networks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
build=$(bash "$root/scripts/configure.sh" | tail -n 1)
cmake --build "$build" --target nasoa-zoo -j "$(nproc)"
# ET-NAS-A, ET-NAS-D, ResNet-18-like and ResNet-50-like (1000 classes, 224x224).
"$build/offline_tools/nasoa-zoo" info \
  2-_32_2-11-112-1121112 \
  031-_64_1-1-221-11121 \
  020-_64_11-21-21-21 \
  10001-_64_411-2111-211111-211
