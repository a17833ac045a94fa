#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, builds the consumer project
# against it, and runs the consumer on a bundle made by the installed nasoa-zoo.
# Usage: run.sh BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR [CMAKE_ARG...] [-- EMULATOR...]
#   CMAKE_ARGs go to the consumer's configure step (a cross build passes its
#   -DCMAKE_TOOLCHAIN_FILE and sysroot); the EMULATOR command (qemu-aarch64-static
#   -L SYSROOT, say) runs the installed tool and the consumer when they are
#   built for another architecture.
set -euo pipefail
build=$1 source=$2 work=$3
shift 3
cmake_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmake_args+=("$1"); shift; done
if [ $# -gt 0 ]; then shift; fi   # the "--"
emulator=("$@")

rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work.install.log"
test -f "$work/prefix/include/nasoa/nasoa.h"
config=$(find "$work/prefix" -path "*/cmake/nasoa/nasoaConfig.cmake" | head -n 1)
test -f "$config"
# No LibTorch header may leak into the public API.
if grep -rl "torch/" "$work/prefix/include/nasoa"; then echo "a public header includes LibTorch"; exit 1; fi

# nasoa_DIR as well as the prefix: a cross toolchain searches packages only
# inside its sysroot (CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY), and this prefix
# is outside it; nasoa_DIR is taken as it is.
cmake -S "$source" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -Dnasoa_DIR="$(dirname "$config")" -DCMAKE_BUILD_TYPE=Release \
  "${cmake_args[@]}" > "$work.configure.log"
cmake --build "$work/build" > "$work.build.log"
"${emulator[@]}" "$work/prefix/bin/nasoa-zoo" create --out "$work/zoo" --name consumer --classes 3 --input 32 \
  --encoding 2-_8_1-2 > /dev/null
"${emulator[@]}" "$work/build/consumer" "$work/zoo" | tee "$work.run.log"
grep -q "opened 'consumer'" "$work.run.log"
grep -q "^2-_8_1-2 " "$work.run.log"
grep -q "classifier refused a missing model dir" "$work.run.log"
grep -q "caught invalid-encoding" "$work.run.log"
test -x "$work/prefix/bin/nasoa-classify"
# The installed programs start as installed: they find libnasoa by their RPATH.
env -u LD_LIBRARY_PATH "${emulator[@]}" "$work/prefix/bin/nasoa-classify" --help > /dev/null
echo "installed package: consumer built and ran${emulator:+ under ${emulator[0]}}"
