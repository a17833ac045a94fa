#!/usr/bin/env bash
# Drives nasoa-profile as a user would: --help, a profile of a tiny bundle made
# with nasoa-zoo, the JSON it writes, and its failures.
# Usage: nasoa_profile_test.sh PATH/TO/nasoa-profile PATH/TO/nasoa-zoo WORKDIR
set -u
tool=$1
zoo_tool=$2
work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/check.sh"

check "--help exits 0 and shows usage" bash -c "out=\$('$tool' --help) && grep -q Usage <<< \"\$out\""
check "--help lists --batch" bash -c "'$tool' --help | grep -q -- --batch"
check "a missing --out is a usage error" bash -c "'$tool' --zoo '$work' 2>/dev/null; rc=\$?; test \$rc -gt 1 -a \$rc -lt 128"

"$zoo_tool" create --out "$work/zoo" --name cli-profile --classes 3 --input 32 \
  --encoding 020-_16_11-21 --encoding 2-_8_1-2 --seed 1 > /dev/null
check "the tiny bundle exists" test -f "$work/zoo/MANIFEST"

"$tool" --zoo "$work/zoo" --out "$work/profile.json" --batch 2,4 --repeat 2 --warmup 1 --threads 1 \
  2> "$work/run.err"
check "a profile run exits 0" test $? -eq 0
check "the profile is written" test -s "$work/profile.json"
check "the profile is valid JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/profile.json"
check "the profile names both models" python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
names = [m["name"] for m in p["models"]]
assert names == ["020-_16_11-21", "2-_8_1-2"], names
assert p["settings"]["batch_sizes"] == [2, 4]
for m in p["models"]:
    assert len(m["training"]) == 2 * (m["num_stages"] + 1)
    assert all(c["step_seconds"] > 0 for c in m["training"])
' "$work/profile.json"
check "a progress line per model on stderr" test "$(grep -c '^nasoa-profile: \[[12]/2\]' "$work/run.err")" -eq 2
check "no temporary file is left beside the profile" bash -c "test \$(ls '$work' | grep -c profile) -eq 1"

"$tool" --zoo "$work/zoo" --out "$work/one.json" --batch 2 --repeat 1 --warmup 0 --models 2-_8_1-2 2>/dev/null
check "--models profiles only those" python3 -c '
import json, sys
assert [m["name"] for m in json.load(open(sys.argv[1]))["models"]] == ["2-_8_1-2"]' "$work/one.json"

"$tool" --zoo "$work/absent" --out "$work/absent.json" 2> "$work/absent.err"
check "a missing bundle exits 1" test $? -eq 1
check "a missing bundle says why" grep -q "no such bundle" "$work/absent.err"
check "a failed run writes nothing" test ! -e "$work/absent.json"

"$tool" --zoo "$work/zoo" --out "$work/bad.json" --models nope 2> "$work/nope.err"
check "an unknown model is a bad argument (exit 2), said before any measuring" test $? -eq 2
check "an unknown model is named, with the bundle's" bash -c \
  "grep -q \"'nope' is not a model of the bundle\" '$work/nope.err' && grep -q '2-_8_1-2' '$work/nope.err' && test ! -e '$work/bad.json'"
check "a bad batch list is a usage error" bash -c "'$tool' --zoo '$work/zoo' --out '$work/x.json' --batch 0 2>/dev/null; rc=\$?; test \$rc -gt 1 -a \$rc -lt 128"
"$tool" --zoo "$work/zoo" --out "$work/twice.json" --batch 4,4 2> "$work/twice.err"
check "a batch size given twice is a bad argument, named, before measuring" \
  bash -c "test $? -eq 2 && grep -q 'batch size 4 is listed twice' '$work/twice.err' && test ! -e '$work/twice.json'"
cp "$work/zoo/MANIFEST" "$work/manifest.before"
"$tool" --zoo "$work/zoo" --out "$work/zoo/MANIFEST" --batch 2 2> "$work/inside.err"
check "a profile written into the bundle is refused, and the bundle is untouched" \
  bash -c "test $? -eq 2 && grep -q 'inside the zoo bundle' '$work/inside.err' && cmp -s '$work/zoo/MANIFEST' '$work/manifest.before'"
"$tool" --zoo "$work/zoo" --out '' 2> "$work/empty.err"
check "an empty --out is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--out is an empty path' '$work/empty.err'"

finish
