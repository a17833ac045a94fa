#!/usr/bin/env bash
# Drives nasoa-stream on two small real tasks (Fashion-MNIST folders): one
# line per task, the summary, the JSON, the records it leaves, and a task
# folder that fails without stopping the stream.
# Usage: nasoa_stream_test.sh nasoa-stream nasoa-zoo WORKDIR
set -u
stream=$1 zoo_tool=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/check.sh"
json() {  # json FILE EXPRESSION: evaluates a Python expression on the parsed summary `r`
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}

check "--help exits 0 and shows usage" bash -c "'$stream' --help | grep -q Usage"
"$stream" --budget 5 "$work/x" > /dev/null 2> "$work/nozoo.err"
check "a missing required option is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--zoo' '$work/nozoo.err'"

"$zoo_tool" create --out "$work/zoo" --name stream-test --classes 10 --input 32 --encoding 020-_16_11-21 \
  --encoding 2-_16_2-11 > /dev/null
python3 "$here/../support/fashion_task.py" "$work/shoes" 12 5,7,9
python3 "$here/../support/fashion_task.py" "$work/tops" 12 0,2,6

"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state" --out "$work/models" --json "$work/summary.json" \
  "$work/shoes" "$work/tops" > "$work/run.out" 2> "$work/run.err"
check "a stream of two tasks succeeds" test $? -eq 0
check "it prints one line per task, with the chosen regime" \
  bash -c "grep -E '^1 +shoes +[^ ]+ +[0-9.e-]+ +[0-9]+ +[0-9]+ ' '$work/run.out' && grep -E '^2 +tops +' '$work/run.out'"
check "it ends with the error of the first half against the second" grep -q "first half .* second half" "$work/run.out"
check "the first task had no experience to predict from, the second learnt from the first" \
  json "$work/summary.json" "len(r['tasks']) == 2 and r['tasks'][0]['predicted_accuracy'] is None and r['tasks'][1]['predicted_accuracy'] is not None and r['tasks'][1]['achieved_accuracy'] is not None"
check "the summary has the second half's error and no failure" \
  json "$work/summary.json" "r['mae_first_half'] is None and abs(r['mae_second_half'] - r['tasks'][1]['absolute_error']) < 1e-12 and r['failed'] == 0"
check "each task stayed inside its budget" json "$work/summary.json" "all(t['seconds'] <= 5 * 1.05 + 2 for t in r['tasks'])"
check "both outcomes are recorded in the state" bash -c "test \$(cat '$work'/state/stream-test-*/experience.log | wc -l) -eq 2"
check "each task's model is saved under --out" bash -c "test -f '$work/models/1-shoes/MANIFEST' && test -f '$work/models/2-tops/MANIFEST'"

"$stream" --zoo "$work/zoo" --budget 5 --state "$work/state" "$work/nowhere" "$work/tops" > "$work/bad.out" 2>&1
check "a task that fails is reported and the stream goes on" \
  bash -c "test $? -eq 1 && grep -qE '^1 +nowhere +failed: .*nowhere' '$work/bad.out' && grep -qE '^2 +tops +' '$work/bad.out'"

finish
