#!/usr/bin/env bash
# Drives nasoa-zoo as a user would: every subcommand, its --help, its exit codes.
# Usage: nasoa_zoo_test.sh PATH/TO/nasoa-zoo WORKDIR
set -u
tool=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/check.sh"

for sub in info create inspect verify; do
  check "$sub --help exits 0 and shows usage" bash -c "out=\$('$tool' $sub --help) && grep -q Usage <<< \"\$out\""
done

# info: the reference table, exactly.
cat > "$work/expected_info.tsv" <<'TSV'
encoding	parameters	macs
2-_32_2-11-112-1121112	2615320	229113856
031-_64_1-1-221-11121	15235528	1551151104
020-_64_11-21-21-21	11708744	1880305664
10001-_64_411-2111-211111-211	25576264	4155416576
TSV
"$tool" info 2-_32_2-11-112-1121112 031-_64_1-1-221-11121 020-_64_11-21-21-21 \
  10001-_64_411-2111-211111-211 > "$work/info.tsv"
check "info prints the reference table" diff "$work/expected_info.tsv" "$work/info.tsv"

"$tool" info 020-a02_64_1 > "$work/bad.out" 2> "$work/bad.err"
check "info exits 2 on an invalid encoding" test $? -eq 2
check "info names the rule on stderr" grep -q "redundant residual" "$work/bad.err"

# A valid encoding whose counts do not fit 64 bits is a failed operation (1),
# not an invalid encoding (2).
"$tool" info --classes 1000000 --input 65536 02020202020202020-_4096_44 > /dev/null 2> "$work/overflow.err"
check "info exits 1 when a valid encoding's counts overflow" test $? -eq 1

"$tool" info --classes 10 --input 32 2-_8_1 > "$work/small.tsv"
check "info honours --classes and --input" grep -q $'^2-_8_1\t' "$work/small.tsv"

# create, inspect, verify.
check "create writes a bundle" "$tool" create --out "$work/zoo" --name cli --classes 5 --input 32 \
  --encoding 020-_16_11-21 --encoding 2-_8_1-2 --seed 3
check "create --out with a trailing slash writes the bundle there" bash -c \
  "'$tool' create --out '$work/slash/' --name cli --classes 5 --input 32 --encoding 2-_8_1 > /dev/null && '$tool' verify '$work/slash' > /dev/null"
mv "$work/slash" "$work/slash-moved" && mkdir -p "$work/.slash.old" && cp -r "$work/slash-moved/." "$work/.slash.old/"
"$tool" verify "$work/slash" > /dev/null 2> "$work/aside.err"
check "a bundle left aside by an interrupted replacement is named when the bundle is missing" bash -c \
  "[ $? -eq 1 ] && grep -q '.slash.old holds the bundle' '$work/aside.err'"
check "create refuses an existing directory as a bad argument, saying --replace" bash -c \
  "'$tool' create --out '$work/zoo' --name cli --classes 5 --input 32 --encoding 2-_8_1 2> '$work/exists.err'; test \$? -eq 2 && grep -q -- '--replace' '$work/exists.err'"
check "create --replace replaces a bundle" "$tool" create --out "$work/zoo" --name cli --classes 5 \
  --input 32 --encoding 020-_16_11-21 --encoding 2-_8_1-2 --seed 3 --replace
mkdir -p "$work/precious" && echo keep > "$work/precious/data.txt"
check "create --replace never removes a non-bundle (a bad argument)" bash -c "'$tool' create --out '$work/precious' --name x --classes 5 --input 32 --encoding 2-_8_1 --replace 2>/dev/null; test \$? -eq 2 && test -f '$work/precious/data.txt'"
mkdir -p "$work/proj/src" && echo x > "$work/proj/MANIFEST" && echo keep > "$work/proj/src/data.txt"
check "create --replace never removes a folder that merely holds a file named MANIFEST" bash -c "! '$tool' create --out '$work/proj' --name x --classes 5 --input 32 --encoding 2-_8_1 --replace 2>/dev/null && test -f '$work/proj/src/data.txt'"
check "create --replace with bad input keeps the old bundle" bash -c "! '$tool' create --out '$work/zoo' --name x --classes 5 --input 32 --encoding BAD --replace 2>/dev/null && '$tool' verify '$work/zoo' > /dev/null"
check "create refuses an invalid encoding as a bad argument" bash -c "'$tool' create --out '$work/bad' --name x --classes 5 --input 32 --encoding 2-_8_1 --encoding 7-_8_1 2>/dev/null; test \$? -eq 2 && test ! -e '$work/bad'"
check "create refuses an unsafe --name as a bad argument" bash -c "'$tool' create --out '$work/bad' --name ../evil --classes 5 --input 32 --encoding 2-_8_1 2>/dev/null; test \$? -eq 2 && test ! -e '$work/bad'"
check "verify accepts a sound bundle" "$tool" verify "$work/zoo"
"$tool" inspect "$work/zoo" > "$work/inspect.txt"
check "inspect lists every model" bash -c "grep -q '^020-_16_11-21 ' '$work/inspect.txt' && grep -q '^2-_8_1-2 ' '$work/inspect.txt'"
check "inspect shows the provenance" grep -q "seed 3" "$work/inspect.txt"

# Damage: verify must fail and say why.
cp -r "$work/zoo" "$work/damaged"
printf 'x' | dd of="$work/damaged/models/2-_8_1-2.weights" bs=1 seek=100 conv=notrunc 2>/dev/null
"$tool" verify "$work/damaged" 2> "$work/damaged.err"
check "verify fails on a flipped byte" test $? -ne 0
check "verify names the damaged file" grep -q "2-_8_1-2.weights" "$work/damaged.err"
rm "$work/damaged/MANIFEST"
check "verify fails without a manifest" bash -c "! '$tool' verify '$work/damaged' 2>/dev/null"

# Arguments that used to reach the library as something else.
"$tool" create --out "$work/neg" --name n --classes 3 --input 32 --encoding 2-_8_1-2 --seed -1 2> "$work/seed.err"
rc=$?
check "a negative --seed is a usage error naming it, not a wrapped seed" \
  bash -c "test $rc -gt 1 -a $rc -lt 128 && grep -q -- '--seed' '$work/seed.err' && test ! -e '$work/neg'"
"$tool" create --out '' --name n --classes 3 --input 32 --encoding 2-_8_1-2 2> "$work/emptyout.err"
rc=$?
check "an empty --out is a usage error naming it" \
  bash -c "test $rc -gt 1 -a $rc -lt 128 && grep -q -- '--out' '$work/emptyout.err'"

finish
