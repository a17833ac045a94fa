#!/usr/bin/env bash
# Drives nasoa-gather as the production script does, on tiny inputs: two
# shards gathering side by side into one log, a rerun that redoes nothing,
# shipping the experience and the predictor into the bundle (which still
# verifies), shipping being independent of the log's line order, a run that
# ran out of memory made again on request, and refusals.
# Usage: nasoa_gather_test.sh NASOA-GATHER NASOA-MAKE-TASK NASOA-ZOO WORKDIR
set -u
gather=$1
make_task=$2
zoo=$3
work=$4
source "$(dirname "$0")/check.sh"
need_fashion_mnist t10k-images-idx3-ubyte.gz
images=$fashion/t10k-images-idx3-ubyte.gz
labels=$fashion/t10k-labels-idx1-ubyte.gz
rm -rf "$work" && mkdir -p "$work/tasks"

for t in a:0,1 b:2,3,4 c:5,6; do
  "$make_task" --idx "$images" "$labels" --classes "${t#*:}" --per-class 10 --seed 1 --out "$work/tasks/${t%%:*}" > /dev/null \
    || { echo "make-task failed"; exit 1; }
done
"$zoo" create --out "$work/zoo" --name cli --classes 10 --input 16 --encoding 2-_8_1-2 --encoding 2-_8_1-21 --seed 3 > /dev/null \
  || { echo "nasoa-zoo create failed"; exit 1; }

grid=(--lrs 0.01,0.1 --frozen 0,1 --epochs 1,2 --batch 8 --threads 1)
# 3 tasks x 2 models x 8 plans, in two shards at once (tasks a, c and task b).
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/exp.log" "${grid[@]}" --shard 0/2 > "$work/s0.log" 2>&1 &
first=$!
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/exp.log" "${grid[@]}" --shard 1/2 > "$work/s1.log" 2>&1
second=$?
wait $first
check "two shards gather side by side" test $? -eq 0 -a $second -eq 0
check "the shards split the tasks" bash -c "grep -q '2 models x 2 tasks x 8 plans' '$work/s0.log' && grep -q '2 models x 1 tasks x 8 plans' '$work/s1.log'"
check "one record per run, every line whole" bash -c "[ \$(wc -l < '$work/exp.log') -eq 48 ] && [ \$(cut -d' ' -f2- '$work/exp.log' | python3 -c 'import json,sys; print(len({json.loads(l)[\"run_id\"] for l in sys.stdin}))') -eq 48 ]"
check "every record's checksum holds" python3 -c "
import hashlib, sys
for line in open(sys.argv[1], 'rb'):
    digest, body = line.rstrip(b'\n').split(b' ', 1)
    assert hashlib.sha256(body).hexdigest().encode() == digest
" "$work/exp.log"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/exp.log" "${grid[@]}" > "$work/again.log" 2>&1
check "a rerun finds every run in the log and runs none" bash -c "grep -q '0 runs made, 48 found in the log' '$work/again.log' && [ \$(wc -l < '$work/exp.log') -eq 48 ]"

# --models: more of the grid for one model only, into a copy of the log.
cp "$work/exp.log" "$work/models.log"
second_model=$(cut -d' ' -f2- "$work/exp.log" | python3 -c 'import json,sys; print(sorted({json.loads(l)["model"]["name"] for l in sys.stdin})[-1])')
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/models.log" --models "$second_model" \
  --lrs 0.01,0.1 --frozen 0,1 --epochs 3 --batch 8 --threads 1 > "$work/models.out" 2>&1
check "--models gathers the named model only" bash -c "grep -q '1 models x 3 tasks x 4 plans' '$work/models.out' && \
  [ \$(wc -l < '$work/models.log') -eq 60 ]"
check "--models: the runs added are all of that model" python3 -c "
import json, sys
added = [json.loads(l.split(' ', 1)[1]) for l in list(open(sys.argv[1]))[48:]]
assert len(added) == 12 and {r['model']['name'] for r in added} == {sys.argv[2]}, added
" "$work/models.log" "$second_model"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/none.log" --models nosuch "${grid[@]}" > /dev/null 2> "$work/nosuch.err"
check "--models refuses a name the bundle lacks, naming it and the bundle's, before claiming a task" bash -c \
  "[ $? -eq 2 ] && grep -q \"no model 'nosuch' (it has .*)\" '$work/nosuch.err' && grep -qF -- '$second_model' '$work/nosuch.err' && [ ! -e '$work/none.log' ]"
"$gather" --ship "$work/exp.log" --zoo "$work/zoo" --models "$second_model" > /dev/null 2> "$work/ship-models.err"
check "--ship refuses --models (it ships the whole log)" bash -c \
  "[ $? -eq 2 ] && grep -q -- '--models is for gathering' '$work/ship-models.err'"

cp -r "$work/zoo" "$work/zoo2"
cp -r "$work/zoo" "$work/zoo-unshipped"
check "--ship writes the experience and the predictor into the bundle" bash -c \
  "'$gather' --ship '$work/exp.log' --zoo '$work/zoo' | grep -q 'shipped:    48 experience records'"
check "the bundle still verifies" "$zoo" verify "$work/zoo"
check "the shipped predictor summarises its experience, so that planning need not read it" python3 -c "
import json, sys
e = json.load(open(sys.argv[1]))['model']['experience']
assert e['records'] == 48 and e['evaluated'] == 48, e
assert e['batch_sizes'] == [8], e
assert 'horizontal_flip' in e['shared_fields'] and e['shared_regime']['batch_size'] == 8, e
" "$work/zoo/predictor.bin"
tac "$work/exp.log" > "$work/reversed.log"
"$gather" --ship "$work/reversed.log" --zoo "$work/zoo2" > /dev/null
check "shipping does not depend on the log's line order" bash -c \
  "cmp '$work/zoo/predictor.bin' '$work/zoo2/predictor.bin' && cmp '$work/zoo/experience.log' '$work/zoo2/experience.log'"
cat "$work/exp.log" "$work/exp.log" > "$work/twice.log"
cp -r "$work/zoo-unshipped" "$work/zoo3"  # so that a --ship that writes nothing cannot pass
"$gather" --ship "$work/twice.log" --zoo "$work/zoo3" > "$work/twice.out" 2> "$work/twice.err"
check "--ship of a log holding every run twice keeps each run once, and says so" bash -c \
  "grep -q 'shipped:    48 experience records' '$work/twice.out' && grep -q 'dropped 48 record' '$work/twice.err' \
   && cmp '$work/zoo/predictor.bin' '$work/zoo3/predictor.bin' && cmp '$work/zoo/experience.log' '$work/zoo3/experience.log'"
# Two gathers of the same grid share run ids but not timings: 5 such runs,
# their records re-checksummed, concatenated in either order.
python3 -c "
import hashlib, json, sys
out = open(sys.argv[2], 'wb')
for line in list(open(sys.argv[1], 'rb'))[:5]:
    record = json.loads(line.rstrip(b'\n').split(b' ', 1)[1])
    record['result']['seconds'] += 1.0
    body = json.dumps(record, separators=(',', ':')).encode()
    out.write(hashlib.sha256(body).hexdigest().encode() + b' ' + body + b'\n')
" "$work/exp.log" "$work/other.log"
cat "$work/exp.log" "$work/other.log" > "$work/ab.log"
cat "$work/other.log" "$work/exp.log" > "$work/ba.log"
cp -r "$work/zoo2" "$work/zoo4" && cp -r "$work/zoo2" "$work/zoo5"
"$gather" --ship "$work/ab.log" --zoo "$work/zoo4" > /dev/null 2> "$work/ab.err"
"$gather" --ship "$work/ba.log" --zoo "$work/zoo5" > /dev/null 2> "$work/ba.err"
check "--ship of runs recorded twice with other results keeps the same one in either line order" bash -c \
  "grep -q '5 of them with other results' '$work/ab.err' && cmp '$work/zoo4/predictor.bin' '$work/zoo5/predictor.bin' \
   && cmp '$work/zoo4/experience.log' '$work/zoo5/experience.log'"

"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/x.log" "${grid[@]}" --shard 2/2 > /dev/null 2> "$work/shard.err"
check "a bad --shard is a bad argument (exit 2), naming it" bash -c "[ $? -eq 2 ] && grep -q -- '--shard' '$work/shard.err' && [ ! -e '$work/x.log' ]"
"$gather" --zoo "$work/zoo" --tasks "$work/nowhere" --log "$work/x.log" "${grid[@]}" > /dev/null 2> "$work/missing.err"
check "a missing task folder is a bad argument (exit 2), naming it" bash -c "[ $? -eq 2 ] && grep -q 'nowhere: no such folder' '$work/missing.err'"
first_task=$(ls "$work/tasks" | head -n 1)
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/tasks/$first_task/in.log" "${grid[@]}" > /dev/null 2> "$work/inside.err"
check "a --log inside --tasks is refused (exit 2) before anything is written" bash -c \
  "[ $? -eq 2 ] && grep -q 'inside --tasks' '$work/inside.err' && [ ! -e '$work/tasks/$first_task/in.log' ]"
long_grid=(--lrs 0.01,0.1 --frozen 0,1 --epochs 4000 --batch 8 --threads 1)  # outlasts the check (then killed)
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/lock.log" "${long_grid[@]}" > /dev/null 2>&1 &
holder=$!
for _ in $(seq 600); do [ -e "$work/lock.log" ] && break; sleep 0.1; done  # the first has claimed its tasks (it locks right after creating the log)
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/lock.log" "${long_grid[@]}" > /dev/null 2> "$work/lock.err"
second=$?
kill "$holder" 2> /dev/null; wait "$holder" 2> /dev/null
check "a second gather of the same tasks into one log is refused while the first runs" bash -c \
  "[ $second -eq 1 ] && grep -q 'another nasoa-gather is gathering task' '$work/lock.err'"
cp "$work/zoo/MANIFEST" "$work/manifest-copy"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/manifest-copy" "${grid[@]}" > /dev/null 2> "$work/notlog.err"
check "a --log that is not an experience log is refused and left alone" bash -c \
  "[ $? -eq 1 ] && grep -q 'not an experience log' '$work/notlog.err' && cmp '$work/zoo/MANIFEST' '$work/manifest-copy'"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/y.log" --lrs 0.01,0 --frozen 0 --epochs 1 --batch 8 \
  --threads 1 > /dev/null 2> "$work/grid.err"
check "a bad grid value is refused before any training, naming it" bash -c \
  "[ $? -eq 2 ] && grep -q -- '--lrs' '$work/grid.err' && [ ! -e '$work/y.log' ]"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/y.log" --lrs 0.01 --frozen "" --epochs 1 --batch 8 \
  --threads 1 > /dev/null 2> "$work/emptygrid.err"
check "a grid value given empty is refused, not read as 0" bash -c \
  "[ $? -eq 2 ] && grep -q -- '--frozen: is empty' '$work/emptygrid.err' && [ ! -e '$work/y.log' ]"
printf 'my notes, without a last line break' > "$work/notes.txt"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/notes.txt" "${grid[@]}" > /dev/null 2> "$work/notes.err"
check "a --log of one line of other text is refused and left alone" bash -c \
  "[ $? -eq 1 ] && grep -q 'not an experience log' '$work/notes.err' && [ \"\$(cat '$work/notes.txt')\" = 'my notes, without a last line break' ]"
"$gather" --zoo "$work/zoo2" --tasks "$work/tasks" --log "$work/zoo2/exp.log" "${grid[@]}" > /dev/null 2> "$work/inside.err"
check "a --log inside the bundle is refused, and the bundle still verifies" bash -c \
  "[ $? -eq 2 ] && grep -q 'inside the zoo bundle' '$work/inside.err' && [ ! -e '$work/zoo2/exp.log' ] && '$zoo' verify '$work/zoo2' > /dev/null"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/capped.log" --lrs 0.1 --frozen 7,9 --epochs 1 --batch 8 \
  --threads 1 > /dev/null 2> "$work/capped.err"
check "frozen counts above a model's stages are one run, made once" bash -c \
  "grep -q '6 runs made' '$work/capped.err' && [ \$(wc -l < '$work/capped.log') -eq 6 ]"
# --plans-per-pair draws by the pair's names: sharded, or with a task added
# beside them, a rerun finds every drawn run made.
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/drawn.log" "${grid[@]}" --plans-per-pair 2 --shard 1/2 \
  > /dev/null 2>&1
cp -r "$work/tasks/a" "$work/tasks/.a.partial"  # what a killed nasoa-make-task leaves
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/drawn.log" "${grid[@]}" --plans-per-pair 2 \
  > /dev/null 2> "$work/drawn.err"
check "--plans-per-pair draws the same plans whatever the sharding, and hidden folders are no tasks" bash -c \
  "grep -q '2 models x 3 tasks x 2 plans' '$work/drawn.err' && grep -q '8 runs made, 4 found in the log' '$work/drawn.err' \
   && grep -q '1 hidden folder' '$work/drawn.err' && ! grep -q 'a.partial' '$work/drawn.log'"
rm -rf "$work/tasks/.a.partial"
# A learning rate whose loss diverges before the first evaluation: recorded
# as such, so that a rerun goes on past it instead of failing on it again.
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/diverged.log" --lrs 1e30 --frozen 0 --epochs 1 --batch 8 \
  --threads 1 > /dev/null 2> "$work/diverged.err"
first=$?
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/diverged.log" --lrs 1e30 --frozen 0 --epochs 1 --batch 8 \
  --threads 1 > /dev/null 2> "$work/diverged2.err"
check "a run that diverges is recorded as diverged and not made again" bash -c \
  "[ $first -eq 0 ] && [ \$(grep -c 'diverged before any weights were evaluated' '$work/diverged.log') -eq 6 ] \
   && grep -q '0 runs made, 6 found in the log' '$work/diverged2.err'"
"$gather" --ship "$work/exp.log" --zoo "$work/zoo2" --seed 7 > /dev/null 2> "$work/shipseed.err"
check "--ship refuses gathering's options (--seed) as bad arguments, naming them" bash -c "[ $? -eq 2 ] && grep -q -- '--seed is for gathering' '$work/shipseed.err'"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/x.log" "${grid[@]}" --hours nan > /dev/null 2>&1
check "--hours nan is refused" test $? -ne 0 -a ! -e "$work/x.log"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/x.log" "${grid[@]}" --shard 0/-2 > /dev/null 2> "$work/neg.err"
check "a negative --shard is refused, not wrapped around" bash -c "[ $? -eq 2 ] && grep -q -- \"--shard '0/-2'\" '$work/neg.err'"
# Run ids do not name the weights or the images: a log of a model trained
# again (another upstream accuracy), or of a task folder made again, is
# refused, by gathering and by shipping.
python3 -c "
import hashlib, json, sys
out = open(sys.argv[2], 'wb')
for line in open(sys.argv[1], 'rb'):
    record = json.loads(line.rstrip(b'\n').split(b' ', 1)[1])
    record['model']['upstream_accuracy'] = 0.5
    body = json.dumps(record, separators=(',', ':')).encode()
    out.write(hashlib.sha256(body).hexdigest().encode() + b' ' + body + b'\n')
" "$work/exp.log" "$work/retrained.log"
cp "$work/retrained.log" "$work/retrained-copy.log"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/retrained.log" "${grid[@]}" > /dev/null 2> "$work/retrained.err"
check "gathering into a log of weights trained again is refused (exit 1), before any run" bash -c \
  "[ $? -eq 1 ] && grep -q 'upstream accuracy 0.5.*trained again' '$work/retrained.err' && cmp '$work/retrained.log' '$work/retrained-copy.log'"
cp -r "$work/zoo-unshipped" "$work/zoo6"
"$gather" --ship "$work/retrained.log" --zoo "$work/zoo6" > /dev/null 2> "$work/ship-retrained.err"
check "shipping a log of weights trained again is refused, and the bundle is left as it was" bash -c \
  "[ $? -eq 1 ] && grep -q 'trained again' '$work/ship-retrained.err' && [ ! -e '$work/zoo6/experience.log' ]"
cp -r "$work/tasks" "$work/tasks-remade" && cp "$work/exp.log" "$work/remade.log"
"$make_task" --idx "$images" "$labels" --classes 0,1 --per-class 10 --seed 2 --out "$work/tasks-remade/a" --replace > /dev/null
"$gather" --zoo "$work/zoo" --tasks "$work/tasks-remade" --log "$work/remade.log" "${grid[@]}" > /dev/null 2> "$work/remade.err"
check "gathering a task folder made again into its old log is refused (exit 1), naming the task" bash -c \
  "[ $? -eq 1 ] && grep -q \"task 'a' .*made again\" '$work/remade.err' && cmp '$work/remade.log' '$work/exp.log'"
# A task whose every class has one image holds none out to evaluate on: it
# is skipped, saying so, before anything is trained (its runs were recorded
# as "diverged"). The files of a task that cannot be read are listed, the
# first 10 of them.
mkdir -p "$work/odd-tasks"
"$make_task" --idx "$images" "$labels" --classes 0,1 --per-class 1 --seed 1 --out "$work/odd-tasks/single" > /dev/null
cp -r "$work/tasks/a" "$work/odd-tasks/broken"
for i in $(seq 12); do printf 'not an image' > "$work/odd-tasks/broken/0/junk-$i.png"; done
"$gather" --zoo "$work/zoo" --tasks "$work/odd-tasks" --log "$work/odd.log" --models "$second_model" --lrs 0.1 \
  --frozen 0 --epochs 1 --batch 8 --threads 1 > /dev/null 2> "$work/odd.err"
check "a task of one image per class is skipped with its reason, the others gathered" bash -c \
  "[ $? -eq 0 ] && grep -q \"task 'single' skipped: each of its 2 classes has one image\" '$work/odd.err' \
   && grep -q '1 models x 1 tasks x 1 plans' '$work/odd.err' && ! grep -q single '$work/odd.log' \
   && [ \$(wc -l < '$work/odd.log') -eq 1 ] && ! grep -q diverged '$work/odd.err'"
check "unreadable files are listed with their reason, 10 of them, then how many more" bash -c \
  "[ \$(grep -c \"task 'broken': skipped .*junk-[0-9]*.png: \" '$work/odd.err') -eq 10 ] \
   && grep -q \"task 'broken': and 2 more skipped files\" '$work/odd.err'"
# The LogME probe's sample size is part of a run: a resume with another
# --probe-per-class is refused, naming both, in either direction.
cp "$work/exp.log" "$work/probe-default.log"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/probe-default.log" "${grid[@]}" --probe-per-class 5 \
  > /dev/null 2> "$work/probe1.err"
check "a resume with another --probe-per-class is refused (exit 1), naming both, the log untouched" bash -c \
  "[ $? -eq 1 ] && grep -q -- 'runs gathered with --probe-per-class 20 (the default.*this gathering has --probe-per-class 5' \
   '$work/probe1.err' && cmp '$work/exp.log' '$work/probe-default.log'"
probe_grid=(--models "$second_model" --lrs 0.1 --frozen 0 --epochs 1 --batch 8 --threads 1)
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/probe5.log" "${probe_grid[@]}" --probe-per-class 5 \
  > /dev/null 2>&1
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/probe5.log" "${probe_grid[@]}" --probe-per-class 5 \
  > /dev/null 2> "$work/probe5.err"
check "a resume with the same --probe-per-class finds its runs" grep -q '0 runs made, 3 found in the log' "$work/probe5.err"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/probe5.log" "${probe_grid[@]}" > /dev/null 2> "$work/probe2.err"
check "a resume of a --probe-per-class 5 log with the default is refused, naming both" bash -c \
  "[ $? -eq 1 ] && grep -q -- 'runs gathered with --probe-per-class 5, this gathering has --probe-per-class 20' '$work/probe2.err' \
   && [ \$(wc -l < '$work/probe5.log') -eq 3 ]"
# A run that ran out of memory is recorded as failed: a rerun skips it, and
# --retry-out-of-memory makes it again as a record of its own, once.
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/oom.log" "${probe_grid[@]}" > /dev/null 2> "$work/oom-first.err"
python3 - "$work/oom.log" <<'PY'
import hashlib, json, sys
lines = open(sys.argv[1], 'rb').read().splitlines()
record = json.loads(lines[-1].split(b' ', 1)[1])
record['history'] = []
record['result'].update(stop_reason='failed: out of memory', best_accuracy=-1, final_accuracy=-1)
body = json.dumps(record).encode()
lines[-1] = hashlib.sha256(body).hexdigest().encode() + b' ' + body
open(sys.argv[1], 'wb').write(b''.join(l + b'\n' for l in lines))
PY
oom_id=$(tail -n 1 "$work/oom.log" | cut -d' ' -f2- | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/oom.log" "${probe_grid[@]}" > /dev/null 2> "$work/oom-again.err"
check "a rerun counts a run that ran out of memory as made" bash -c \
  "grep -q '0 runs made, 3 found in the log' '$work/oom-again.err' && [ \$(wc -l < '$work/oom.log') -eq 3 ]"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/oom.log" "${probe_grid[@]}" --retry-out-of-memory \
  > /dev/null 2> "$work/oom-retry.err"
check "--retry-out-of-memory makes that run again, and only it, as a record of its own" bash -c \
  "grep -q '1 runs made, 2 found in the log' '$work/oom-retry.err' && [ \$(wc -l < '$work/oom.log') -eq 4 ] \
   && tail -n 1 '$work/oom.log' | cut -d' ' -f2- | python3 -c 'import json,sys; r = json.load(sys.stdin); assert r[\"run_id\"] == sys.argv[1] + \"|retry=1\" and r[\"result\"][\"best_accuracy\"] >= 0, r[\"run_id\"]' '$oom_id'"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/oom.log" "${probe_grid[@]}" --retry-out-of-memory \
  > /dev/null 2> "$work/oom-retry2.err"
check "once a try got through, --retry-out-of-memory makes nothing more" bash -c \
  "grep -q '0 runs made, 3 found in the log' '$work/oom-retry2.err' && [ \$(wc -l < '$work/oom.log') -eq 4 ]"
"$gather" --ship "$work/oom.log" --zoo "$work/zoo" --retry-out-of-memory > /dev/null 2> "$work/oom-ship.err"
check "--retry-out-of-memory is for gathering, not --ship (exit 2)" bash -c \
  "[ $? -eq 2 ] && grep -q -- '--retry-out-of-memory is for gathering' '$work/oom-ship.err'"
printf 'garbage\n' > "$work/bad.log"
"$gather" --ship "$work/bad.log" --zoo "$work/zoo2" > /dev/null 2> "$work/ship.err"
check "--ship of a log with no usable record is refused (exit 1), naming it" bash -c \
  "[ $? -eq 1 ] && grep -q 'bad.log' '$work/ship.err' && '$zoo' verify '$work/zoo2' > /dev/null"
finish
