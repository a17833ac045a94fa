#!/usr/bin/env bash
# Cross-compiles nasoa for aarch64 (Jetson) and runs the light tests under qemu.
#
# Installs what is missing (the aarch64 cross compilers, mmdebstrap and
# qemu-user-static), builds or reuses the Debian arm64 sysroot
# (scripts/make_arm64_sysroot.sh), configures build-aarch64/ (or
# $NASOA_CROSS_BUILD_DIR) with toolchains/jetson.toolchain.cmake, builds the
# libraries, nasoa-zoo, the samples and the tests, and runs `ctest -L emulated`:
# the zoo unit tests except NetworkTest, the public-API tests, the CLI test and
# the installed-package consumer (cmake --install of this tree, the consumer
# cross-compiled against it, run on a bundle the installed nasoa-zoo made, both
# under qemu). No binfmt registration is needed: ctest and the test scripts run
# qemu explicitly through CMAKE_CROSSCOMPILING_EMULATOR.
#
# Environment: NASOA_CROSS_BUILD_DIR (build folder), NASOA_JETSON (orin, xavier
# or nano; default orin), NASOA_SYSROOT (use this target rootfs instead of
# building the Debian one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${NASOA_CROSS_BUILD_DIR:-$root/build-aarch64}
case $build in /*) ;; *) build=$root/$build ;; esac  # relative: the repository root's, as for configure.sh
jobs=$(nproc)
start=$SECONDS

# The host tools (cmake, protoc, python3) and the test data come from
# scripts/setup.sh's list (idempotent: about a second when all is there);
# then what the cross build needs beyond it.
bash "$root/scripts/setup.sh"
packages=(g++-aarch64-linux-gnu mmdebstrap qemu-user-static)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "cross_test: installing ${missing[*]}"
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

sysroot=${NASOA_SYSROOT:-}
if [ -z "$sysroot" ]; then
  sysroot=$(bash "$root/scripts/make_arm64_sysroot.sh" | tail -n 1)
fi
echo "cross_test: sysroot $sysroot ($((SECONDS - start)) s)"

generator=()
if command -v ninja > /dev/null; then generator=(-G Ninja); fi
# Configure once; a later run reuses the tree. A new sysroot (the script
# that makes it changed) means a fresh cache: CMake keeps the library and
# header paths it found in the old one, which is deleted, and never looks
# again.
mkdir -p "$build"
if [ -f "$build/CMakeCache.txt" ] && [ "$(cat "$build/.nasoa-sysroot" 2> /dev/null)" != "$sysroot" ]; then
  echo "cross_test: the sysroot changed; configuring $build afresh"
  rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
fi
# The benchmarks are never run emulated: not built.
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DNASOA_BUILD_BENCH=OFF \
  -DCMAKE_TOOLCHAIN_FILE="$root/toolchains/jetson.toolchain.cmake" \
  -DNASOA_SYSROOT="$sysroot" -DNASOA_JETSON="${NASOA_JETSON:-orin}" > "$build/configure.log" \
  || { cat "$build/configure.log"; exit 1; }
echo "$sysroot" > "$build/.nasoa-sysroot"
# The toolchain file sets the emulator only when it finds qemu.
if ! grep -q "^NASOA_QEMU_AARCH64:FILEPATH=/" "$build/CMakeCache.txt"; then
  echo "cross_test: no qemu-aarch64 found; cannot run the tests" >&2
  exit 1
fi
echo "cross_test: configured $build ($((SECONDS - start)) s)"

cmake --build "$build" -j "$jobs"
echo "cross_test: built ($((SECONDS - start)) s)"

# The heavy NetworkTest cases (label "heavy") are left to native runs; under
# qemu's roughly hundredfold slowdown they alone would take most of an hour.
# Each GoogleTest executable runs whole here, as one ctest test that passes
# when its cases skip: their skips are read from its whole output.
results=$build/emulated-results.xml
ctest --test-dir "$build" -L emulated --output-on-failure -j "$jobs" --timeout 1200 \
  --output-junit "$results" --test-output-size-passed 10000000
python3 "$root/scripts/check_skips.py" "$results" --what cross_test
echo "cross_test: emulated tests passed ($((SECONDS - start)) s)"

# The device's main job, emulated: nasoa-adapt on a tiny real task with a small
# budget must produce a model that the emulated nasoa-classify loads.
qemu=$(sed -n 's/^NASOA_QEMU_AARCH64:FILEPATH=//p' "$build/CMakeCache.txt")
run() { "$qemu" -L "$sysroot" "$@"; }
job="$build/emulated_adapt"
rm -rf "$job" && mkdir -p "$job"
python3 "$root/tests/support/fashion_task.py" "$job/task" 8 0,1
run "$build/offline_tools/nasoa-zoo" create --out "$job/zoo" --name emulated --classes 2 --input 16 \
  --encoding 2-_8_1-2 > /dev/null
OMP_WAIT_POLICY=PASSIVE run "$build/samples/nasoa-adapt" --zoo "$job/zoo" --data "$job/task" \
  --budget 120 --epochs 2 --batch 4 --out "$job/model" --report "$job/report.json" --state "$job/state" --quiet
run "$build/samples/nasoa-classify" --model "$job/model" "$job/task" > "$job/classified.tsv"
test "$(wc -l < "$job/classified.tsv")" -eq 16
echo "cross_test: nasoa-adapt ran emulated and its model classified 16 images ($((SECONDS - start)) s in all)"
