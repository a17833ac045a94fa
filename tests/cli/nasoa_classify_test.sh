#!/usr/bin/env bash
# Drives nasoa-classify as a user would: output format, folder walking, --top,
# bad files, bad models and exit codes.
# Usage: nasoa_classify_test.sh PATH/TO/nasoa-classify PATH/TO/nasoa_test_make_model_dir WORKDIR
set -u
tool=$1
make=$2
work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/check.sh"

"$make" "$work/model" "$work/images" cat dog bird || { echo "cannot make the model dir"; exit 1; }

check "--help exits 0 and shows usage" bash -c "out=\$('$tool' --help) && grep -q Usage <<< \"\$out\""
check "--help documents --top" bash -c "'$tool' --help | grep -q -- '--top'"
"$tool" > /dev/null 2>&1
check "no arguments exit 2" test $? -eq 2
"$tool" "$work/images" > /dev/null 2>&1
check "a missing --model exits 2" test $? -eq 2
"$tool" --model "$work/model" --top 0 "$work/images" > /dev/null 2>&1
check "--top 0 exits 2" test $? -eq 2

# A folder: every image, recursively, sorted; notes.txt and hidden entries
# (a thumbnail folder, macOS's "._" files) ignored, as training ignores them.
mkdir -p "$work/images/.thumbs" && cp "$work/images/a.png" "$work/images/.thumbs/a.png"
printf 'AppleDouble' > "$work/images/._a.png"
"$tool" --model "$work/model" "$work/images" > "$work/top1.tsv" 2> "$work/top1.err"
check "a folder of good images exits 0" test $? -eq 0
check "nothing on stderr" test ! -s "$work/top1.err"
cut -f1 "$work/top1.tsv" > "$work/paths.txt"
printf '%s\n' "$work/images/a.png" "$work/images/sub/b.jpg" "$work/images/sub/c.png" \
  "$work/images/sub/deeper/d.png" > "$work/expected_paths.txt"
check "one line per image, walked recursively in sorted order" diff "$work/expected_paths.txt" "$work/paths.txt"
check "lines are path<TAB>label<TAB>probability" \
  bash -c "test -s '$work/top1.tsv' && { grep -Evq \$'^[^\\t]+\\t(cat|dog|bird)\\t(0|1)\\\\.[0-9]{6}\$' '$work/top1.tsv'; test \$? -eq 1; }"

# --top K: K lines per image, probabilities descending and summing to 1 for K = classes.
"$tool" --model "$work/model" --top 3 "$work/images/a.png" > "$work/top3.tsv"
check "--top 3 prints three lines" test "$(wc -l < "$work/top3.tsv")" -eq 3
check "--top 3 lists every label once" bash -c "cut -f2 '$work/top3.tsv' | sort | tr '\n' ' ' | grep -qx 'bird cat dog '"
check "--top 3 probabilities descend and sum to 1" \
  awk -F'\t' 'NR > 1 && $3 > prev + 1e-9 { bad = 1 } { prev = $3; sum += $3 } END { exit !(bad == 0 && sum > 0.9999 && sum < 1.0001) }' "$work/top3.tsv"
check "top 1 is the first of the top 3" bash -c "diff <(grep '/a.png' '$work/top1.tsv' | cut -f1,2) <(head -1 '$work/top3.tsv' | cut -f1,2)"
"$tool" --model "$work/model" --top 10 "$work/images/a.png" > "$work/top10.tsv"
check "--top above the class count is clamped" test "$(wc -l < "$work/top10.tsv")" -eq 3

# Bad files: reported on stderr, the others still classified, exit 1.
printf 'not a png' > "$work/broken.png"
"$tool" --model "$work/model" "$work/broken.png" "$work/images/a.png" "$work/nowhere.jpg" \
  > "$work/mixed.tsv" 2> "$work/mixed.err"
check "a bad file makes the exit status 1" test $? -eq 1
check "stderr names the broken file" grep -q "broken.png" "$work/mixed.err"
check "stderr names the missing file" grep -q "nowhere.jpg" "$work/mixed.err"
check "the good file is still classified" bash -c "test \$(wc -l < '$work/mixed.tsv') -eq 1 && grep -q 'a.png' '$work/mixed.tsv'"
mkdir -p "$work/no-images" "$work/with-pipe" && cp "$work/images/a.png" "$work/with-pipe/" && mkfifo "$work/with-pipe/pipe.png"
"$tool" --model "$work/model" "$work/no-images" > /dev/null 2> "$work/noimages.err"
check "a folder without images is an error naming it" bash -c "test $? -eq 1 && grep -q 'no-images: no image files' '$work/noimages.err'"
timeout 60 "$tool" --model "$work/model" "$work/with-pipe" > "$work/pipe.tsv" 2> "$work/pipe.err"
check "a pipe named like an image is reported, the rest classified" \
  bash -c "test $? -eq 1 && grep -q 'pipe.png: not a regular file' '$work/pipe.err' && test \$(wc -l < '$work/pipe.tsv') -eq 1"

# Bad models.
"$tool" --model "$work/no-model" "$work/images" > /dev/null 2> "$work/nomodel.err"
check "a missing model dir exits 1" test $? -eq 1
check "and says it is missing" grep -q "not-found" "$work/nomodel.err"
cp -r "$work/model" "$work/damaged"
printf 'x' | dd of="$work/damaged/models/model.weights" bs=1 seek=100 conv=notrunc 2>/dev/null
"$tool" --model "$work/damaged" "$work/images" > "$work/damaged.out" 2> "$work/damaged.err"
check "a damaged model dir exits 1" test $? -eq 1
check "and names the damaged file" grep -q "model.weights" "$work/damaged.err"
check "and prints no predictions" test ! -s "$work/damaged.out"

# A file name holding a tab and a line break stays one line of three fields.
odd="$work/odd"$'\t'"name"$'\n'"x.png"
cp "$work/images/a.png" "$odd"
"$tool" --model "$work/model" "$odd" > "$work/odd.tsv" 2> /dev/null
check "a path with a tab and a line break is escaped into one 3-field line" \
  bash -c "test \$(wc -l < '$work/odd.tsv') -eq 1 && test \$(awk -F'\t' '{print NF}' '$work/odd.tsv') -eq 3 && grep -qF 'odd\\tname\\nx.png' '$work/odd.tsv'"
# Other control bytes (a vertical tab, which Python's splitlines() breaks at;
# ESC, which a terminal obeys) and U+2028 (a line separator) are written \xHH.
ctrl="$work/ctrl"$'\v'"and"$'\e'"esc"$'\xe2\x80\xa8'"u2028.png"
cp "$work/images/a.png" "$ctrl"
"$tool" --model "$work/model" "$ctrl" > "$work/ctrl.tsv" 2> /dev/null
check "a path with a vertical tab, an ESC and U+2028 is escaped as \\xHH" \
  bash -c "test \$(wc -l < '$work/ctrl.tsv') -eq 1 && grep -qF 'ctrl\\x0band\\x1besc\\xe2\\x80\\xa8u2028.png' '$work/ctrl.tsv' && ! grep -q \$'[\\v\\e]' '$work/ctrl.tsv'"
# Labels are escaped as paths are: U+2028, U+2029 and U+0085 in a label would
# split one record in two for line-based readers.
"$make" "$work/sepmodel" "$work/sepimages" "line"$'\xe2\x80\xa8'"sep" "para"$'\xe2\x80\xa9'"sep" \
  "next"$'\xc2\x85'"line" > /dev/null || { echo "cannot make the model dir with separator labels"; exit 1; }
"$tool" --model "$work/sepmodel" --top 3 "$work/images/a.png" > "$work/sep.tsv" 2> /dev/null
cut -f2 "$work/sep.tsv" | LC_ALL=C sort > "$work/sep_labels.txt"
printf '%s\n' 'line\xe2\x80\xa8sep' 'next\xc2\x85line' 'para\xe2\x80\xa9sep' > "$work/sep_expected.txt"
check "labels with U+2028, U+2029 and U+0085 are escaped as \\xHH" diff "$work/sep_expected.txt" "$work/sep_labels.txt"
ln -sf loop-b.png "$work/loop-a.png"
ln -sf loop-a.png "$work/loop-b.png"
"$tool" --model "$work/model" "$work/loop-a.png" > /dev/null 2> "$work/loop.err"
check "a loop of links is reported as unreadable, not missing" \
  bash -c "test $? -eq 1 && grep -q 'cannot be read' '$work/loop.err'"

"$tool" --model '' "$work/images" > /dev/null 2> "$work/emptymodel.err"
check "an empty --model is a bad argument (2), named" bash -c "test $? -eq 2 && grep -q -- '--model is empty' '$work/emptymodel.err'"

# Results that cannot be written are a failure.
if [ -e /dev/full ]; then
  "$tool" --model "$work/model" "$work/images" > /dev/full 2> "$work/full.err"
  check "a full output exits 1 and says so" bash -c "test $? -eq 1 && grep -q 'cannot write the results' '$work/full.err'"
fi

finish
