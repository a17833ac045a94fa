#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, builds the consumer project
# against it, and runs the consumer on a bundle made by the installed nasoa-zoo.
# Usage: run.sh BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR
set -euo pipefail
build=$1 source=$2 work=$3
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work.install.log"
test -f "$work/prefix/include/nasoa/nasoa.h"
test -f "$work/prefix/lib/cmake/nasoa/nasoaConfig.cmake" || test -f "$work"/prefix/lib/*/cmake/nasoa/nasoaConfig.cmake
# No LibTorch header may leak into the public API.
if grep -rl "torch/" "$work/prefix/include/nasoa"; then echo "a public header includes LibTorch"; exit 1; fi

cmake -S "$source" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release > "$work.configure.log"
cmake --build "$work/build" > "$work.build.log"
"$work/prefix/bin/nasoa-zoo" create --out "$work/zoo" --name consumer --classes 3 --input 32 \
  --encoding 2-_8_1-2 > /dev/null
"$work/build/consumer" "$work/zoo" | tee "$work.run.log"
grep -q "opened 'consumer'" "$work.run.log"
grep -q "^2-_8_1-2 " "$work.run.log"
grep -q "classifier refused a missing model dir" "$work.run.log"
grep -q "caught invalid-encoding" "$work.run.log"
test -x "$work/prefix/bin/nasoa-classify"
echo "installed package: consumer built and ran"
