#!/usr/bin/env bash
# Drives nasoa-stream on two small real tasks (Fashion-MNIST folders): one
# line per task, the summary, the JSON, the records it leaves, a task
# folder that fails without stopping the stream, and a killed stream resumed.
# Usage: nasoa_stream_test.sh nasoa-stream nasoa-zoo WORKDIR
set -u
stream=$1 zoo_tool=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/check.sh"
need_fashion_mnist t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz
json() {  # json FILE EXPRESSION: evaluates a Python expression on the parsed summary `r`
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}

check "--help exits 0 and shows usage" bash -c "out=\$('$stream' --help) && grep -q Usage <<< \"\$out\""
"$stream" --budget 5 "$work/x" > /dev/null 2> "$work/nozoo.err"
check "a missing required option is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--zoo' '$work/nozoo.err'"
"$stream" --zoo "$work/zoo" --budget nan "$work/x" > /dev/null 2> "$work/nanbudget.err"
check "a NaN budget is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--budget.*finite' '$work/nanbudget.err'"

"$zoo_tool" create --out "$work/zoo" --name stream-test --classes 10 --input 32 --encoding 020-_16_11-21 \
  --encoding 2-_16_2-11 > /dev/null
python3 "$here/../support/fashion_task.py" "$work/shoes" 12 5,7,9
python3 "$here/../support/fashion_task.py" "$work/tops" 12 0,2,6

# 10 s: the first task also measures the device profile, a few seconds on a
# machine busy with other tests.
"$stream" --zoo "$work/zoo" --budget 10 --state "$work/state" --out "$work/models" --json "$work/summary.json" \
  "$work/shoes" "$work/tops" > "$work/run.out" 2> "$work/run.err"
check "a stream of two tasks succeeds" test $? -eq 0
check "it prints one line per task, with the chosen regime" \
  bash -c "grep -E '^1 +shoes +[^ ]+ +[0-9.e-]+ +[0-9]+ +[0-9]+ ' '$work/run.out' && grep -E '^2 +tops +' '$work/run.out'"
check "it ends with the error of the first half against the second" grep -q "first half .* second half" "$work/run.out"
check "the first task had no experience to predict from, the second learnt from the first" \
  json "$work/summary.json" "len(r['tasks']) == 2 and r['tasks'][0]['predicted_accuracy'] is None and r['tasks'][1]['predicted_accuracy'] is not None and r['tasks'][1]['achieved_accuracy'] is not None"
check "the summary has the second half's error and no failure" \
  json "$work/summary.json" "r['mae_first_half'] is None and abs(r['mae_second_half'] - r['tasks'][1]['absolute_error']) < 1e-12 and r['failed'] == 0"
check "each task stayed inside its budget" json "$work/summary.json" "all(t['seconds'] <= 10 * 1.05 + 2 for t in r['tasks'])"

# A state folder that cannot take the record (its log a link to a missing
# file): the model is saved, so the task is adapted, with a warning.
cp -r "$work/state" "$work/state-nr"
log=$(find "$work/state-nr" -name experience.log)
rm "$log" && ln -s "$work/missing/experience.log" "$log"
timeout 120 "$stream" --zoo "$work/zoo" --budget 10 --state "$work/state-nr" --out "$work/models-nr" \
  --json "$work/nr.json" "$work/shoes" > "$work/nr.out" 2> "$work/nr.err"
check "a record the state cannot take is a warning, not a failed task" bash -c \
  "test $? -eq 0 && grep -q 'warning: the outcome of shoes was not recorded' '$work/nr.err' && test -f '$work/models-nr/1-shoes/MANIFEST'"
check "the summary says why it was not recorded" \
  json "$work/nr.json" "'missing file' in r['tasks'][0]['not_recorded_because'] and 'error' not in r['tasks'][0]"
check "both outcomes are recorded in the state" bash -c "test \$(cat '$work'/state/stream-test-*/experience.log | wc -l) -eq 2"
check "each task's model is saved under --out" bash -c "test -f '$work/models/1-shoes/MANIFEST' && test -f '$work/models/2-tops/MANIFEST'"

# Without --out the models go to a scratch folder; a killed stream's (its
# process gone: no id reaches 999999999) is removed by the next stream.
mkdir -p "$work/tmp/nasoa-stream-999999999/1-shoes" "$work/tmp/nasoa-stream-$$"
TMPDIR="$work/tmp" "$stream" --zoo "$work/zoo" --budget 5 --state "$work/state" "$work/nowhere" "$work/tops" \
  > "$work/bad.out" 2>&1
check "a task that fails is reported and the stream goes on" \
  bash -c "test $? -eq 1 && grep -qE '^1 +nowhere +failed: .*nowhere' '$work/bad.out' && grep -qE '^2 +tops +' '$work/bad.out'"
check "a killed stream's scratch folder is removed, a live one's kept, and its own at the end" \
  bash -c "test ! -e '$work/tmp/nasoa-stream-999999999' && test -d '$work/tmp/nasoa-stream-$$' && test \$(ls '$work/tmp' | wc -l) -eq 1"

# Outputs that would write into the inputs are refused before any work.
cp -r "$work/shoes" "$work/shoes-copy"
"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state" --out "$work/shoes-copy" "$work/shoes-copy" \
  > /dev/null 2> "$work/clash.err"
check "an --out inside a task folder is refused, and the task is untouched" \
  bash -c "test $? -eq 2 && grep -q 'inside the task folder' '$work/clash.err' && diff -r '$work/shoes' '$work/shoes-copy'"
"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state" --json "$work/zoo/MANIFEST" "$work/shoes" \
  > /dev/null 2> "$work/clash.err"
check "a --json inside the zoo is refused" bash -c "test $? -eq 2 && grep -q 'inside --zoo' '$work/clash.err'"
"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state" "$work/shoes" '' > /dev/null 2> "$work/clash.err"
check "an empty task path is a bad argument" bash -c "test $? -eq 2 && grep -q 'empty path' '$work/clash.err'"

# A stream killed while its second task trains, then continued with --resume.
"$stream" --zoo "$work/zoo" --budget 20 --state "$work/state-k" --out "$work/killed" "$work/shoes" "$work/tops" \
  > /dev/null 2>&1 &
pid=$!
for _ in $(seq 2400); do [ -f "$work/killed/2-tops.checkpoint" ] && break; sleep 0.05; done
kill -KILL "$pid" 2> /dev/null
wait "$pid" 2> /dev/null
check "the kill came after the first task's outcome, during the second's training" bash -c \
  "test -f '$work/killed/1-shoes.outcome.json' && test -f '$work/killed/2-tops.checkpoint' && test -f '$work/killed/2-tops.plan.json' && test ! -e '$work/killed/2-tops.outcome.json'"
"$stream" --zoo "$work/zoo" --budget 20 --state "$work/state-k" "$work/shoes" "$work/tops" --resume \
  > /dev/null 2> "$work/noout.err"
check "--resume without --out is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--out' '$work/noout.err'"
"$stream" --zoo "$work/zoo" --budget 7 --state "$work/state-k" --out "$work/killed" --resume "$work/shoes" \
  > "$work/otherbudget.out" 2>&1
check "--resume with another budget is refused, naming the outcome file and the budget it had" \
  bash -c "test $? -eq 1 && grep -q '1-shoes.outcome.json was reached with --budget 20' '$work/otherbudget.out'"
"$stream" --zoo "$work/zoo" --budget 20 --state "$work/state-k" --out "$work/killed" --resume "$work/tops" \
  "$work/shoes" > "$work/reordered.out" 2>&1
check "--resume with the tasks in another order is a bad argument, naming the file and both tasks" \
  bash -c "test $? -eq 2 && grep -q \"1-shoes.outcome.json is task 1 'shoes' .* task 1 is 'tops'\" '$work/reordered.out'"
check "and it leaves the killed stream's files as they were" bash -c \
  "test -f '$work/killed/1-shoes.outcome.json' && test -f '$work/killed/2-tops.checkpoint' && test ! -e '$work/killed/1-tops.plan.json'"
# (The first folder spelt with a trailing slash this time: the same folder.)
"$stream" --zoo "$work/zoo" --budget 20 --state "$work/state-k" --out "$work/killed" --resume \
  --json "$work/resumed.json" "$work/shoes/" "$work/tops" > "$work/resumed.out" 2>&1
check "the resumed stream succeeds" test $? -eq 0
check "it keeps the first task as done and continues the second from its checkpoint" \
  json "$work/resumed.json" "[(t['done_before'], t['resumed']) for t in r['tasks']] == [(True, False), (False, True)] and r['tasks'][1]['achieved_accuracy'] is not None"
check "the kept task shows its plan and accuracy again" \
  json "$work/resumed.json" "r['tasks'][0]['plan']['best']['regime']['epochs'] > 0 and r['tasks'][0]['achieved_accuracy'] is not None"
check "each task is recorded once" bash -c "test \$(cat '$work'/state-k/stream-test-*/experience.log | wc -l) -eq 2"
check "both models are saved, and the plan and checkpoint are gone" bash -c \
  "test -f '$work/killed/1-shoes/MANIFEST' && test -f '$work/killed/2-tops/MANIFEST' && test ! -e '$work/killed/2-tops.plan.json' && test ! -e '$work/killed/2-tops.checkpoint'"
echo '{"task_dir": 3}' > "$work/killed/1-shoes.outcome.json"
"$stream" --zoo "$work/zoo" --budget 20 --state "$work/state-k" --out "$work/killed" --resume "$work/shoes" \
  > "$work/corrupt.out" 2>&1
check "a damaged outcome file is reported on its task's line, naming the file and the field" \
  bash -c "test $? -eq 1 && grep -qE '^1 +shoes +failed: .*1-shoes.outcome.json: field task_dir' '$work/corrupt.out'"

# A task folder whose name is not UTF-8 (a Latin-1 name) is resumed too.
latin="$work/shoes-$(printf '\xe9')"
cp -r "$work/shoes" "$latin"
"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state-l" --out "$work/latin" "$latin" > /dev/null 2>&1
"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state-l" --out "$work/latin" --resume --json "$work/latin.json" \
  "$latin" > "$work/latin.out" 2>&1
check "a task folder with a non-UTF-8 name is resumed as done" bash -c \
  "test $? -eq 0 && python3 -c \"import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r['tasks'][0]['done_before'] else 1)\" '$work/latin.json'"
# Two folders whose paths differ only in bytes that are not UTF-8 are told
# apart: the outcome of one is not taken for the other's.
mkdir -p "$work/p-$(printf '\xe9')" "$work/p-$(printf '\xe8')"
cp -r "$work/shoes" "$work/p-$(printf '\xe9')/shoes"
cp -r "$work/shoes" "$work/p-$(printf '\xe8')/shoes"
"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state-l" --out "$work/twins" "$work/p-$(printf '\xe9')/shoes" \
  > /dev/null 2>&1
"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state-l" --out "$work/twins" --resume \
  "$work/p-$(printf '\xe8')/shoes" > "$work/twins.out" 2>&1
check "a folder differing only in non-UTF-8 bytes is not resumed as another's outcome" bash -c \
  "test $? -eq 1 && grep -q 'is the outcome of task folder' '$work/twins.out'"
# An outcome file of 0.3.3 (no task_dir_bytes) still resumes its folder.
python3 -c "import json,sys; p=sys.argv[1]; j=json.load(open(p)); del j['task_dir_bytes']; json.dump(j, open(p, 'w'))" \
  "$work/twins/1-shoes.outcome.json"
"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state-l" --out "$work/twins" --resume --json "$work/twins.json" \
  "$work/p-$(printf '\xe9')/shoes" > /dev/null 2>&1
check "an outcome file without task_dir_bytes is resumed by its folder" bash -c \
  "test $? -eq 0 && python3 -c \"import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r['tasks'][0]['done_before'] else 1)\" '$work/twins.json'"
"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state" --threads 4096 "$work/shoes" > /dev/null 2> "$work/threads.err"
check "--threads above the cores is a bad argument" bash -c "test $? -eq 2 && grep -q 'threads 4096 is more than' '$work/threads.err'"

# Interrupted (Ctrl-C): it stops at the next step, removes its temporary
# folder and says so, exit 130.
mkdir -p "$work/tmp-int"
TMPDIR="$work/tmp-int" "$stream" --zoo "$work/zoo" --budget 20 --state "$work/state" "$work/shoes" \
  > /dev/null 2> "$work/int.err" &
int_pid=$!
sleep 4
kill -INT $int_pid
wait $int_pid
check "an interrupted stream exits 130, its temporary folder removed" bash -c \
  "test $? -eq 130 && grep -q 'interrupted' '$work/int.err' && test -z \"\$(ls -A '$work/tmp-int')\""

finish
