#!/usr/bin/env bash
# Drives nasoa-search as a user would, on a tiny corpus of Fashion-MNIST class
# folders: a whole search on one process, its outputs, a resume that redoes
# nothing, a resume after SIGKILL, refusals, and the same search on two MPI
# ranks (rank 0 drives, both evaluate) giving the same proxy accuracies.
# Usage: nasoa_search_test.sh NASOA-SEARCH NASOA-MAKE-TASK WITH_MPI(ON|OFF) WORKDIR
set -u
search=$1
make_task=$2
with_mpi=$3
work=$4
source "$(dirname "$0")/check.sh"
need_fashion_mnist train-images-idx3-ubyte.gz
rm -rf "$work" && mkdir -p "$work"

"$make_task" --idx "$fashion/train-images-idx3-ubyte.gz" "$fashion/train-labels-idx1-ubyte.gz" \
  --classes 0,1,2,3 --per-class 16 --seed 3 --out "$work/corpus" > /dev/null || { echo "make-task failed"; exit 1; }

common=(--input 16 --batch 16 --proxy-epochs 1 --train-per-class 10 --validation-per-class 6
       --timing-repetitions 2 --block-samples 3 --seed-block 020- --keep-blocks 2 --population 4
       --children 2 --c0 8,12,16 --max-blocks 6 --max-stages 3 --reference-c0 8 --select 2
       --baseline resnet18-like=020-_8_11-21-21-21)
small=(--corpus "$work/corpus" "${common[@]}" --generations 2)

check "one process: the search finishes" bash -c "'$search' ${small[*]} --state '$work/one/state' --out '$work/one/out' > '$work/one.log' 2>&1"
for f in evaluations.csv front.csv baselines.csv selected.csv front.png; do
  check "one process: $f written" test -s "$work/one/out/$f"
done
check "front.png is a PNG" bash -c "head -c 8 '$work/one/out/front.png' | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a'"
# 4 blocks, 2 random macros per kept block, 2 x 2 children; duplicates may make it fewer.
check "evaluations.csv: header (with the error column), encodings, seed column" bash -c \
  "head -1 '$work/one/out/evaluations.csv' | grep -q '^name,encoding,step_ms,accuracy,parameters,macs,cost_s,seed,rank,error$' && [ \$(tail -n +2 '$work/one/out/evaluations.csv' | wc -l) -ge 8 ] && tail -n +2 '$work/one/out/evaluations.csv' | cut -d, -f8 | sort -u | grep -qx 1"
check "baselines.csv holds the baseline" grep -q "^resnet18-like,020-_8_11-21-21-21," "$work/one/out/baselines.csv"
check "selected.csv names zoo models" bash -c "tail -n +2 '$work/one/out/selected.csv' | cut -d, -f1 | grep -qx nasoa-1"

cp "$work/one/out/evaluations.csv" "$work/first.csv"
"$search" "${small[@]}" --state "$work/one/state" --out "$work/one/out" > "$work/again.log" 2>&1
check "a finished search started again resumes and evaluates nothing" bash -c \
  "grep -q 'resuming: phase done' '$work/again.log' && ! grep -q 'candidates 1-' '$work/again.log' && diff -q '$work/first.csv' '$work/one/out/evaluations.csv'"

"$search" "${small[@]}" --seed 2 --state "$work/one/state" --out "$work/x" > /dev/null 2> "$work/mismatch.err"
check "a state made with other options is refused (exit 1), naming the option" bash -c \
  "[ $? -eq 1 ] && grep -q -- '--seed = 1, this run has 2' '$work/mismatch.err'"
"$search" "${small[@]}" --proxy-lr 0.05 --state "$work/one/state" --out "$work/x" > /dev/null 2> "$work/evaluator.err"
check "a resume whose proxy training differs is refused, naming the evaluator's settings" bash -c \
  "[ $? -eq 1 ] && grep -q -- '--proxy-lr = 0.1, this run has 0.05' '$work/evaluator.err'"
# Step times depend on the compute threads: a resume under another count is
# refused. (A machine that offers one core allows no other count.)
threads_then=$(python3 -c "import json, sys; print(json.loads(json.load(open(sys.argv[1]))['options']['evaluator'])['compute_threads'])" \
  "$work/one/state/state.json")
other_threads=$(( threads_then == 1 ? 2 : 1 ))
"$search" "${small[@]}" --threads "$other_threads" --state "$work/one/state" --out "$work/x" > /dev/null 2> "$work/threads.err"
rc=$?
if [ $rc -eq 2 ] && grep -q -- '--threads' "$work/threads.err"; then
  echo "skipped the --threads resume check: this machine offers one core"
else
  check "a resume with other --threads is refused, naming the compute threads" bash -c \
    "[ $rc -eq 1 ] && grep -q -- '--threads (evaluator.compute_threads) = $threads_then, this run has $other_threads' '$work/threads.err'"
fi
"$search" "${small[@]}" --state "$work/corpus/state" --out "$work/in/out" > /dev/null 2> "$work/state-in.err"
check "a --state inside the corpus is a bad argument (it would be read as a class), refused before any work" bash -c \
  "[ $? -eq 2 ] && grep -q -- '--state .* is inside --corpus' '$work/state-in.err' && [ ! -e '$work/corpus/state' ]"
"$search" "${small[@]}" --max-step-ms -1 --state "$work/neg/state" --out "$work/neg/out" > /dev/null 2> "$work/neg.err"
check "a negative --max-step-ms is a bad argument" bash -c "[ $? -eq 2 ] && grep -q -- '--max-step-ms' '$work/neg.err'"
"$search" "${small[@]}" --proxy-lr nan --state "$work/nan/state" --out "$work/nan/out" > /dev/null 2> "$work/nanlr.err"
check "a NaN --proxy-lr is a bad argument (exit 2), named, before any state is made" bash -c \
  "[ $? -eq 2 ] && grep -q -- '--proxy-lr.*finite' '$work/nanlr.err' && [ ! -e '$work/nan' ]"
"$make_task" --idx "$fashion/train-images-idx3-ubyte.gz" "$fashion/train-labels-idx1-ubyte.gz" \
  --classes 4,5,6,7 --per-class 16 --seed 3 --out "$work/corpus2" > /dev/null || { echo "make-task failed"; exit 1; }
"$search" --corpus "$work/corpus2" "${common[@]}" --generations 2 --state "$work/one/state" --out "$work/x" > /dev/null \
  2> "$work/corpus.err"
check "a resume on another corpus of as many classes is refused, naming its sample" bash -c \
  "[ $? -eq 1 ] && grep -qE -- '--corpus \\(evaluator.corpus_(sample|pixels)\\)' '$work/corpus.err'"
cp -r "$work/corpus" "$work/corpus-moved"
check "a corpus moved elsewhere is the same corpus" bash -c \
  "'$search' --corpus '$work/corpus-moved' ${common[*]} --generations 2 --state '$work/one/state' --out '$work/moved' 2>&1 | grep -q 'resuming: phase done'"
"$search" --corpus "$work/nowhere" "${common[@]}" --state "$work/s" --out "$work/o" > /dev/null 2> "$work/missing.err"
check "a missing corpus is refused (exit 1), naming the folder" bash -c "[ $? -eq 1 ] && grep -q 'nowhere' '$work/missing.err'"
"$search" "${small[@]}" --batch-evaluations 4 --state "$work/one/state" --out "$work/x" > /dev/null 2> "$work/batches.err"
check "a resume with other --batch-evaluations is refused, naming that flag (not --batch)" bash -c \
  "[ $? -eq 1 ] && grep -q -- '--batch-evaluations (batch) = 8, this run has 4' '$work/batches.err'"
"$search" --corpus "$work/nowhere" "${common[@]}" --batch-evaluations 0 --state "$work/s" --out "$work/o" \
  > /dev/null 2> "$work/batches0.err"
check "--batch-evaluations 0 is refused first (exit 2), naming the flag" bash -c \
  "[ $? -eq 2 ] && grep -q -- '--batch-evaluations (batch) must be >= 1, got 0' '$work/batches0.err'"
# Every image held out: nothing to train on. Refused once the corpus is
# read, before any candidate is timed or any state is written.
"$search" --corpus "$work/corpus" --input 16 --batch 16 --proxy-epochs 1 --train-per-class 10 \
  --validation-per-class 16 --state "$work/held/state" --out "$work/held/out" > /dev/null 2> "$work/held.err"
check "--validation-per-class holding out every image is refused (exit 1), naming it and the counts" bash -c \
  "[ $? -eq 1 ] && grep -q -- '--validation-per-class 16 holds out every image .*at most 16 usable images' '$work/held.err' \
   && [ ! -e '$work/held' ]"
# A class of no more images than --validation-per-class trains nothing: a
# warning names it. Files that cannot be read are listed. (The state of
# another corpus then refuses the run, before any candidate.)
cp -r "$work/corpus" "$work/uneven"
ls "$work/uneven/0"/*.png | tail -n +11 | xargs rm
ls "$work/uneven/1"/*.png | tail -n +6 | xargs rm
printf 'not an image' > "$work/uneven/0/broken.png"
"$search" --corpus "$work/uneven" "${common[@]}" --generations 2 --state "$work/one/state" --out "$work/x" > /dev/null \
  2> "$work/uneven.err"
check "an unreadable corpus file is listed with its reason" grep -q "corpus sample: skipped .*broken.png: " "$work/uneven.err"
check "a class with no training image is warned about, by name" \
  grep -q "warning: class '1' has no more than 6 images (--validation-per-class), all held out" "$work/uneven.err"
check "... and a class that trains is not" bash -c "! grep -q \"warning: class '[023]'\" '$work/uneven.err'"

# Options no search can use are refused before the corpus is read.
"$search" --corpus "$work/nowhere" "${common[@]}" --min-stages 4 --state "$work/s" --out "$work/o" \
  > /dev/null 2> "$work/stages.err"
check "an empty stage range is refused first, with its values" bash -c \
  "[ $? -eq 2 ] && grep -q 'stages per macro: need 1 <= min (4) <= max (3)' '$work/stages.err'"
"$search" --corpus "$work/nowhere" "${common[@]}" --baseline 'res,net=020-_8_11-21' --state "$work/s" --out "$work/o" \
  > /dev/null 2> "$work/comma.err"
check "a baseline name with a comma is refused (it would shift the CSV)" bash -c \
  "[ $? -eq 2 ] && grep -q 'without commas' '$work/comma.err'"
"$search" --corpus "$work/nowhere" "${common[@]}" --seed-block 9- --state "$work/s" --out "$work/o" \
  > /dev/null 2> "$work/seed-block.err"
check "a bad --seed-block is refused first (exit 2), naming it" bash -c \
  "[ $? -eq 2 ] && grep -q \"seed block '9-'\" '$work/seed-block.err' && [ ! -e '$work/s' ]"
"$search" --corpus "$work/nowhere" --block-samples 0 --state "$work/s" --out "$work/o" > /dev/null 2> "$work/no-block.err"
check "--block-samples 0 without a seed block is refused first (exit 2)" bash -c \
  "[ $? -eq 2 ] && grep -q -- '--block-samples is 0 and no seed block' '$work/no-block.err'"
for option in children population keep-blocks generations max-channels; do
  "$search" --corpus "$work/nowhere" --$option 2147483647 --state "$work/s" --out "$work/o" > /dev/null \
    2> "$work/huge-$option.err"
  check "--$option 2147483647 is refused first (exit 2), with its value" bash -c \
    "[ $? -eq 2 ] && grep -q -- '--$option 2147483647 is outside' '$work/huge-$option.err'"
done
PMI_SIZE=4 "$search" --corpus "$work/corpus" "${common[@]}" --state "$work/pmi/state" --out "$work/pmi/out" \
  > /dev/null 2> "$work/pmi.err"
check "started by another launcher than Open MPI's as 4 processes: refused (exit 2), saying how to start it" bash -c \
  "[ $? -eq 2 ] && grep -q 'PMI_SIZE=4' '$work/pmi.err' && grep -q 'mpirun -np 4' '$work/pmi.err' && test ! -e '$work/pmi/state'"
check "--select below 1 is refused" bash -c \
  "! '$search' --corpus '$work/corpus' ${common[*]} --select -3 --state '$work/s' --out '$work/o' > /dev/null 2>&1"

# SIGKILL once the first batch is saved; the restarted search completes from the state.
"$search" --corpus "$work/corpus" "${common[@]}" --generations 4 --state "$work/kill/state" --out "$work/kill/out" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -f "$work/kill/state/state.json" ] && grep -q '"encoding"' "$work/kill/state/state.json" && break
  sleep 0.05
done
kill -9 $pid 2> /dev/null
wait $pid 2> /dev/null
check "after SIGKILL the state file is valid JSON" python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$work/kill/state/state.json"
check "the kill landed mid-search (the state is not done, no front was written)" bash -c \
  "python3 -c \"import json,sys; sys.exit(json.load(open(sys.argv[1]))['phase'] == 'done')\" '$work/kill/state/state.json' && test ! -e '$work/kill/out/front.csv'"
"$search" --corpus "$work/corpus" "${common[@]}" --generations 4 --state "$work/kill/state" --out "$work/kill/out" \
  > "$work/kill/resumed.log" 2>&1
check "after SIGKILL the search resumes from its state and finishes" bash -c \
  "grep -q '^resuming: ' '$work/kill/resumed.log' && ! grep -q '^resuming: phase done' '$work/kill/resumed.log' && grep -q '^front:' '$work/kill/resumed.log'"

if [ "$with_mpi" != "ON" ]; then
  echo "MPI part skipped: this nasoa-search was built without MPI"
else
  root=()
  if [ "$(id -u)" -eq 0 ]; then root=(--allow-run-as-root); fi
  check "two MPI ranks: the search finishes" bash -c \
    "mpirun ${root[*]} --oversubscribe -np 2 '$search' ${small[*]} --state '$work/mpi/state' --out '$work/mpi/out' > '$work/mpi.log' 2>&1"
  check "two MPI ranks: both ranks evaluated candidates" bash -c \
    "tail -n +2 '$work/mpi/out/evaluations.csv' | cut -d, -f9 | sort -u | tr '\n' ' ' | grep -qx '0 1 '"
  # The block level is the same list on any number of ranks, and one compute
  # thread trains a candidate identically wherever it runs.
  check "two MPI ranks: block-level accuracies equal those of one process" bash -c \
    "diff <(grep -E ',[0-9.]+,' '$work/first.csv' | head -4 | cut -d, -f2,4) <(head -5 '$work/mpi/out/evaluations.csv' | tail -4 | cut -d, -f2,4)"
fi
finish
