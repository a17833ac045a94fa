#!/usr/bin/env bash
# Drives nasoa-corpus as a user would, at the tiny scale: exit codes and messages.
# Usage: nasoa_corpus_test.sh PATH/TO/nasoa-corpus WORKDIR
set -u
tool=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/check.sh"

if [ ! -d /usr/share/openclipart/png ] || [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "openclipart-png or dataset-fashion-mnist is not installed (scripts/setup.sh installs them)"
  exit 77
fi

check "--help exits 0 and shows usage" bash -c "out=\$('$tool' --help) && grep -q Usage <<< \"\$out\""

"$tool" --out '' --scale tiny > /dev/null 2> "$work/empty.err"
check "an empty --out is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--out is an empty path' '$work/empty.err'"

"$tool" --out "$work/c" --scale tiny --clipart "$work/no-clipart" > "$work/missing.out" 2> "$work/missing.err"
check "a missing --clipart folder exits 1" test $? -eq 1
check "... naming the folder" grep -q "$work/no-clipart" "$work/missing.err"
check "... and the package that provides it" grep -q "openclipart-png" "$work/missing.err"
check "... before anything is written" test ! -e "$work/c"

"$tool" --out "$work/c" --scale tiny --threads 2 > "$work/build.out" 2> "$work/build.err"
check "a tiny corpus builds" test $? -eq 0
check "... and says what it wrote" grep -q "eval: 4 tasks" "$work/build.out"
check "... with corpus.json last" test -s "$work/c/corpus.json"
check "... listing skipped clip-art on stderr" grep -q "^skipped .*above the cap" "$work/build.err"

"$tool" --out "$work/c" --scale tiny --threads 1 > "$work/again.out" 2>&1
check "the same options again exit 0" test $? -eq 0
check "... doing nothing" grep -q "nothing to do" "$work/again.out"

"$tool" --out "$work/c" --scale tiny --seed 2 > "$work/other.out" 2> "$work/other.err"
check "other options exit 1" test $? -eq 1
check "... naming the option and --force" grep -q "seed 2 (it was built with 1).*--force" "$work/other.err"

# Latin-1 names (not UTF-8) in a source folder, a font's file name and a
# file that is not a font: corpus.json is JSON, which must be UTF-8, and the
# build must not fail at its very end over a name. The bytes are kept as \xHH.
e=$(printf '\351')  # é in Latin-1
dejavu=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [ -f "$dejavu" ]; then
  mkdir -p "$work/fonts-$e"
  ln -s "$dejavu" "$work/fonts-$e/DejaVuSans-caf$e.ttf"
  echo "not a font" > "$work/fonts-$e/caf$e.ttf"
  ln -s /usr/share/datasets/fashion-mnist "$work/fashion-$e"
  latin1=(--out "$work/latin1" --scale tiny --threads 2 --fonts "$work/fonts-$e" --fashion "$work/fashion-$e")
  "$tool" "${latin1[@]}" > "$work/latin1.out" 2> "$work/latin1.err"
  check "Latin-1 folder and font names build a corpus" test $? -eq 0
  check "... whose corpus.json is UTF-8 JSON keeping the bytes as \xHH" python3 -c "
import json, sys
r = json.load(open(sys.argv[1], encoding='utf-8'))
assert r['options']['fashion'].endswith(r'fashion-\xe9'), r['options']['fashion']
assert r'DejaVuSans-caf\xe9.ttf' in r['sources']['fonts']['faces'], r['sources']['fonts']['faces']
assert any(u['path'].endswith(r'caf\xe9.ttf') for u in r['sources']['fonts']['unused']), r['sources']['fonts']['unused']
" "$work/latin1/corpus.json"
  "$tool" "${latin1[@]}" > "$work/latin1-again.out" 2>&1
  check "... and the same options again do nothing" grep -q "nothing to do" "$work/latin1-again.out"
else
  echo "skipped the Latin-1 names check: $dejavu is not installed (fonts-dejavu-core)"
fi

"$tool" --out "$work/c" --scale huge > /dev/null 2>&1
rc=$?
check "an unknown --scale is a usage error (not a failure, not a crash)" test $rc -gt 1 -a $rc -lt 128

finish
