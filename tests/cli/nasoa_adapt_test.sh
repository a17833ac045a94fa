#!/usr/bin/env bash
# Drives nasoa-adapt as a user would: a real task folder, the budget, the
# report, bad input, a run killed mid-training then resumed, and the planner:
# --plan-only, a planned run that records its outcome, and the next plan
# that sees it.
# Usage: nasoa_adapt_test.sh nasoa-adapt nasoa-zoo nasoa-classify WORKDIR
set -u
adapt=$1 zoo_tool=$2 classify=$3 work=$4 helper=$5
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
# Runs without --state record in the default state directory: here, not in $HOME.
export XDG_STATE_HOME=$work/xdg-state
source "$(dirname "$0")/check.sh"
need_fashion_mnist t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz
json() {  # json FILE EXPRESSION: evaluates a Python expression on the parsed report `r`
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}

check "--help exits 0 and shows usage" bash -c "out=\$('$adapt' --help) && grep -q Usage <<< \"\$out\""

"$zoo_tool" create --out "$work/zoo" --name adapt-test --classes 10 --input 32 --encoding 020-_16_11-21 > /dev/null
python3 "$here/../support/fashion_task.py" "$work/task" 30 0,1,7
printf 'not an image' > "$work/task/trouser/readme.bmp"
: > "$work/task/sneaker/empty.bmp"

"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 30 --epochs 2 --out "$work/model" \
  --report "$work/report.json" --quiet > "$work/run.out" 2> "$work/run.err"
check "a run on a real folder succeeds" test $? -eq 0
check "the summary names the saved model" grep -q "saved to:.*$work/model" "$work/run.out"
check "the report holds the regime, meta-features and epochs" \
  json "$work/report.json" "r['regime']['epochs'] == 2 and r['task']['images'] == 90 and len(r['epochs']) == 2 and r['task']['classes'] == ['sneaker', 't-shirt', 'trouser']"
check "the report's regime holds the augmentation: crops, and no flips unless asked" \
  json "$work/report.json" "r['regime']['random_resized_crop'] is True and r['regime']['horizontal_flip'] is False"
check "the report lists the two unusable files with reasons" \
  json "$work/report.json" "len(r['skipped']) == 2 and all(s['reason'] for s in r['skipped'])"
check "the report says which energy meter was used" json "$work/report.json" "'energy_meter' in r and 'joules' in r"
check "the saved model classifies the task's images, each as one of its classes with a probability" bash -c \
  "'$classify' --model '$work/model' '$work/task/t-shirt' | awk -F'\\t' '\$2 ~ /^(sneaker|t-shirt|trouser)\$/ && \$3 >= 0 && \$3 <= 1' | wc -l | grep -qx 30"
check "a run with the regime given skips planning but records its outcome" \
  json "$work/report.json" "r['plan']['source'] == 'given' and r['recorded']"
check "without --state, the record goes to the default state directory" \
  bash -c "test \$(cat '$XDG_STATE_HOME'/nasoa/adapt-test-*/experience.log | wc -l) -eq 1"
# 18 validation images (20 % of 30 per class): a standard error is at most
# sqrt(0.25 / 18) = 0.118. A later epoch as accurate as the saved one would
# be within the noise as well, and saved instead.
check "the report names the rule that chose the saved weights, by default the latest within noise" \
  json "$work/report.json" "r['hand_back'] == 'latest-within-noise' and r['epochs'][r['best_epoch'] - 1]['validation_accuracy'] == r['validation_accuracy'] and all(e['validation_accuracy'] < r['validation_accuracy'] for e in r['epochs'][r['best_epoch']:]) and r['validation_accuracy'] >= max(e['validation_accuracy'] for e in r['epochs']) - 0.118"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 30 --epochs 3 --hand-back last --out "$work/last" \
  --report "$work/last.json" --no-record --quiet > /dev/null 2> "$work/last.err"
check "--hand-back last saves the last epoch's weights, at its accuracy" \
  json "$work/last.json" "r['hand_back'] == 'last' and r['best_epoch'] == 3 and r['validation_accuracy'] == r['epochs'][2]['validation_accuracy']"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 30 --epochs 3 --hand-back first --out "$work/m2" \
  > /dev/null 2> "$work/first.err"
check "an unknown --hand-back is a bad argument, naming the flag" \
  bash -c "test $? -eq 2 && grep -q -- '--hand-back' '$work/first.err' && test ! -e '$work/m2'"

# A budget that binds: far more epochs than 5 s allow, followed as given
# (--fixed-schedule), so that the guard is what stops the run. It is timed
# from outside, so that time the program forgot to count would show; the
# process start (loading LibTorch) comes before the adapt call and is
# allowed 3 s.
started=$(date +%s.%N)
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 5 --epochs 500 --out "$work/bound" \
  --report "$work/bound.json" --no-record --quiet --fixed-schedule > /dev/null 2> "$work/bound.err"
status=$?
ended=$(date +%s.%N)
check "a run whose budget binds ends as a time-budget stop with a model" \
  bash -c "test $status -eq 0 && test -f '$work/bound/MANIFEST'" 
check "the report says the time budget stopped it, with fewer epochs than asked" \
  json "$work/bound.json" "r['stop_reason'] == 'time budget' and r['stopped_early'] and 0 < len(r['epochs']) < 500"
check "the report's time is within budget x 1.05 + 2 s and uses most of the budget" \
  json "$work/bound.json" "2.5 <= r['wall_seconds'] <= 5 * 1.05 + 2"
check "timed from outside, the process ended within budget x 1.05 + 2 s, plus 3 s to start" \
  python3 -c "import sys; sys.exit(0 if $ended - $started <= 5 * 1.05 + 2 + 3 else 1)"
# The same by default: the learning-rate schedule is fitted to end in the
# 5 s, and the run ends as fitted (or a last epoch that proved slower is cut).
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 5 --epochs 500 --out "$work/fitted" \
  --report "$work/fitted.json" --no-record --quiet > "$work/fitted.out" 2> "$work/fitted.err"
check "by default the schedule is fitted to the budget, and the report says where it ends and why" \
  json "$work/fitted.json" "0 < r['scheduled_epochs'] < 500 and r['schedule_note'].startswith('the learning-rate schedule ends after epoch %d of the regime\\'s 500' % r['scheduled_epochs'])"
check "the fitted run trains to its fitted end, within budget x 1.05 + 2 s" \
  json "$work/fitted.json" "(r['stop_reason'] == 'completed' and len(r['epochs']) == r['scheduled_epochs'] or r['stop_reason'] == 'time budget' and len(r['epochs']) >= r['scheduled_epochs'] - 1) and r['wall_seconds'] <= 5 * 1.05 + 2"
check "the summary shows the fitted schedule" grep -q "^schedule:   the learning-rate schedule ends after epoch" "$work/fitted.out"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 0 --out "$work/m2" 2> "$work/zero.err" > /dev/null
check "a zero budget is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--budget' '$work/zero.err'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget -5 --out "$work/m2" 2> "$work/negative.err" > /dev/null
check "a negative budget is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--budget' '$work/negative.err'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 0.01 --out "$work/m2" 2> "$work/small.err" > /dev/null
check "a budget too small is refused up front" bash -c "test $? -eq 1 && grep -q 'time budget too small' '$work/small.err' && test ! -e '$work/m2'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 10 --out "$work/m2" --lr -1 2> "$work/lr.err" > /dev/null
check "a negative learning rate is a bad argument, naming the field" bash -c "test $? -eq 2 && grep -q learning_rate '$work/lr.err'"
"$adapt" --zoo "$work/zoo" --data "$work/nowhere" --budget 10 --out "$work/m2" 2> "$work/nowhere.err" > /dev/null
check "a missing task folder is refused naming it" grep -q "nowhere" "$work/nowhere.err"
mkdir -p "$work/one/only" && cp "$work/task/t-shirt/"*.bmp "$work/one/only/"
"$adapt" --zoo "$work/zoo" --data "$work/one" --budget 10 --out "$work/m2" 2> "$work/one.err" > /dev/null
check "a one-class task is refused" grep -q "at least two classes" "$work/one.err"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 10 --out "$work/m2" --frozen 99 2> "$work/frozen.err" > /dev/null
check "--frozen beyond the model's stages is a bad argument (exit 2), naming the count" \
  bash -c "test $? -eq 2 && grep -q -- \"--frozen 99: model '.*' has [0-9]* stages\" '$work/frozen.err'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 10 --out "$work/m2" --model nope 2> "$work/model.err" > /dev/null
check "a --model the zoo lacks is a bad argument, naming the zoo's models" bash -c \
  "test $? -eq 2 && grep -qF -- \"--model: bundle 'adapt-test' has no model 'nope' (it has: 020-_16_11-21)\" '$work/model.err'"
check "no model was written by the refused runs" test ! -e "$work/m2"

# A task given as MNIST-format IDX files (Debian's Fashion-MNIST test split).
"$adapt" --zoo "$work/zoo" --idx "$fashion/t10k-images-idx3-ubyte.gz" "$fashion/t10k-labels-idx1-ubyte.gz" \
  --class-names t-shirt,trouser,pullover,dress,coat,sandal,shirt,sneaker,bag,ankle-boot --budget 60 --epochs 1 \
  --out "$work/idx-model" --report "$work/idx.json" --no-record --quiet > /dev/null 2> "$work/idx.err"
check "an IDX task (--idx) trains, its classes named by --class-names" \
  json "$work/idx.json" "r['task']['images'] == 10000 and r['task']['classes'][9] == 'ankle-boot'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --idx "$fashion/t10k-images-idx3-ubyte.gz" \
  "$fashion/t10k-labels-idx1-ubyte.gz" --budget 10 --out "$work/m2" > /dev/null 2>&1
check "--data and --idx together are a bad argument" test $? -eq 2
"$adapt" --zoo "$work/zoo" --budget 10 --out "$work/m2" > /dev/null 2> "$work/notask.err"
check "no task at all is a bad argument, naming both ways to give one" \
  bash -c "test $? -eq 2 && grep -q -- '--data FOLDER_OR_CSV, or --idx' '$work/notask.err'"

# Kill a run right after its first checkpoint, then resume it.
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 120 --epochs 12 --out "$work/killed" \
  --checkpoint-every 0.2 --quiet > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1200); do [ -f "$work/killed.checkpoint" ] && break; sleep 0.05; done
kill -KILL "$pid" 2> /dev/null
wait "$pid" 2> /dev/null
check "a checkpoint was written before the kill" test -f "$work/killed.checkpoint"
check "the kill during training left no model folder" test ! -e "$work/killed"
# The task's folder spelled another way is the same task.
"$adapt" --zoo "$work/zoo" --data "$work/./task/" --budget 120 --epochs 12 --out "$work/killed" \
  --resume --report "$work/resumed.json" --quiet > /dev/null 2> "$work/resume.err"
check "the resumed run (its folder spelled another way) completes" test $? -eq 0
check "the report says it resumed and ran all epochs" json "$work/resumed.json" "r['resumed'] and len(r['epochs']) == 12"
check "the resumed model loads and classifies" bash -c "'$classify' --model '$work/killed' '$work/task/t-shirt' > /dev/null"
check "the checkpoint is removed once the model is saved" test ! -e "$work/killed.checkpoint"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 10 --out "$work/other" --resume 2> "$work/noresume.err" > /dev/null
check "--resume without a checkpoint says so" grep -q "no checkpoint" "$work/noresume.err"

# The planner: the plan alone, then a planned run, then the plan after it.
state=$work/state
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --state "$state" --out "$work/planned" --plan-only \
  > "$work/plan.json" 2> "$work/plan.err"
check "--plan-only succeeds" test $? -eq 0
check "--plan-only prints the plan and its alternatives as JSON" \
  json "$work/plan.json" "r['source'] == 'default' and r['best']['regime']['model'] == '020-_16_11-21' and isinstance(r['alternatives'], list) and r['best']['predicted_seconds'] <= 0.9 * 20 and r['profiled']"
check "--plan-only writes no model and no plan file" bash -c "test ! -e '$work/planned' && test ! -e '$work/planned.plan.json'"
check "--plan-only trains nothing: no checkpoint, no experience record" \
  bash -c "test ! -e '$work/planned.checkpoint' && for f in '$state'/adapt-test-*/experience.log; do test ! -s \"\$f\" || exit 1; done"
# CUDA asked for where there is none: refused before any profiling, not a
# CPU plan that fine-tuning would then refuse. (Where there is CUDA, a plan.)
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --state "$state" --device cuda --plan-only \
  > "$work/plan-cuda.json" 2> "$work/plan-cuda.err"
cuda_rc=$?
# Whether there is CUDA is asked of LibTorch directly, not of the tool.
if [ "$("$helper" --cuda-available)" = 1 ]; then
  check "--device cuda plans where there is CUDA" test $cuda_rc -eq 0 -a -s "$work/plan-cuda.json"
else
  check "--device cuda is refused up front where there is no CUDA" \
    bash -c "test $cuda_rc -eq 1 && grep -q 'CUDA was asked for' '$work/plan-cuda.err' && test ! -s '$work/plan-cuda.json'"
fi
# A heap the environment sets (MALLOC_*) times steps otherwise: its profile
# is kept beside the plain one, so that switching back measures nothing.
MALLOC_ARENA_MAX=2 "$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --state "$state" --plan-only \
  > /dev/null 2> "$work/plan-env-heap.err"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --state "$state" --plan-only \
  > "$work/plan-plain-again.json" 2> "$work/plan-plain-again.err"
check "a process whose environment sets the heap does not make the plain profile stale" \
  json "$work/plan-plain-again.json" "not r['profiled']"
"$adapt" --zoo "$work/zoo" --data "$work/task" --energy 200 --watts 10 --state "$state" --plan-only \
  > "$work/plan-energy.json" 2> "$work/plan-energy.err"
check "--energy alone is a budget: the plan has no time limit and fits the joules" \
  json "$work/plan-energy.json" "r['budget']['seconds'] == 0 and r['budget']['joules'] == 200 and r['best']['predicted_joules'] <= 0.9 * 200"
check "the plan says the energy planning used, and its best plan's joules include it" \
  json "$work/plan-energy.json" "r['planning_joules'] >= 0 and r['best']['predicted_joules'] >= r['planning_joules']"
"$adapt" --zoo "$work/zoo" --data "$work/task" --state "$state" --plan-only > /dev/null 2> "$work/no-budget.err"
check "neither --budget nor --energy is a bad argument" bash -c "test $? -eq 2 && grep -q 'give a budget' '$work/no-budget.err'"
check "--plan-only keeps the device profile it measured in the state" bash -c "ls '$state'/adapt-test-*/device-profile-*.json"

"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 8 --state "$state" --out "$work/planned" \
  --report "$work/planned.json" --quiet > "$work/planned.out" 2> "$work/planned.err"
check "a run without regime flags plans and trains" test $? -eq 0
check "it prints the plan before training" grep -q "^plan: .*020-_16_11-21" "$work/planned.out"
check "its report holds the plan, the predicted and the achieved accuracy" \
  json "$work/planned.json" "r['plan']['source'] == 'default' and not r['plan']['profiled'] and 'predicted_accuracy' in r and r['achieved_accuracy'] is not None and r['regime']['epochs'] == r['plan']['best']['regime']['epochs']"
check "the achieved accuracy is the run's highest on validation, what the predictor predicts" \
  json "$work/planned.json" "r['achieved_accuracy'] == max([e['validation_accuracy'] for e in r['epochs'] if e['validation_accuracy'] is not None] + [r['validation_accuracy']])"
check "the planned run stayed inside its budget" json "$work/planned.json" "r['wall_seconds'] <= 8 * 1.05 + 2"
check "the report says what went before training, in seconds and joules" \
  json "$work/planned.json" "0 < r['spent_seconds'] < r['wall_seconds'] and 0 <= r['spent_joules'] <= r['joules']"
check "the outcome is recorded in --state" json "$work/planned.json" "r['recorded']"
# Reading the task counts in joules as it does in seconds: at --watts, where
# no meter measures, for everything before training (the process's start,
# reading, planning), not for planning alone.
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 8 --energy 1000 --watts 10 --state "$state" \
  --out "$work/planned-watts" --report "$work/planned-watts.json" --no-record --quiet > /dev/null 2> "$work/planned-watts.err"
check "a run with --watts counts the joules of everything before training, reading the task included" \
  json "$work/planned-watts.json" "abs(r['spent_joules'] - 10 * r['spent_seconds']) <= 10 * 0.2 if r['energy_meter'] == 'estimate:10W' else r['spent_joules'] > r['plan']['planning_joules']"
check "the state holds that one record" bash -c "test \$(cat '$state'/adapt-test-*/experience.log | wc -l) -eq 1"
check "the plan file is removed once the model is saved" test ! -e "$work/planned.plan.json"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --state "$state" --plan-only > "$work/plan2.json" 2> /dev/null
check "the next plan sees the device record and predicts from it" \
  json "$work/plan2.json" "r['experience']['device_records'] == 1 and r['best']['predicted_accuracy'] is not None"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --state "$state" --plan-only --flip > "$work/plan-flip.json" 2> /dev/null
check "a plan with --flip notes that its experience trained without flips" \
  json "$work/plan-flip.json" "any(n.startswith('horizontal_flip is on, but it is off') for n in r['notes']) and not any('horizontal_flip' in n for n in json.load(open('$work/plan2.json'))['notes'])"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --state "$state" --plan-only --flip --no-flip \
  > "$work/plan-noflip.json" 2> /dev/null
check "--no-flip is still accepted, and the last of --flip and --no-flip wins" \
  json "$work/plan-noflip.json" "not any('horizontal_flip' in n for n in r['notes']) and r['best']['regime']['horizontal_flip'] is False"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --state "$state" --plan-only --epochs 3 > /dev/null 2>&1
check "--plan-only with a regime flag is refused as a bad argument" test $? -eq 2
cp -r "$work/zoo" "$work/zoo-copy"
"$adapt" --zoo "$work/zoo-copy" --data "$work/task" --budget 20 --epochs 1 --out "$work/zoo-copy" --quiet \
  > /dev/null 2> "$work/outzoo.err"
check "--out naming the zoo itself is a bad argument, refused before training, the zoo kept" \
  bash -c "test $? -eq 2 && grep -q 'is inside --zoo' '$work/outzoo.err' && '$zoo_tool' verify '$work/zoo-copy' > /dev/null && test ! -e '$work/zoo-copy.checkpoint'"
"$adapt" --zoo "$work/zoo-copy" --data "$work/task" --budget 20 --epochs 1 --out "$work/zoo-copy/mine" --quiet \
  > /dev/null 2> "$work/inzoo.err"
check "--out inside the zoo (deleted with the zoo's next update) is a bad argument" \
  bash -c "test $? -eq 2 && grep -q 'is inside --zoo' '$work/inzoo.err' && test ! -e '$work/zoo-copy/mine'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --epochs 1 --out "$work/m6/" --quiet > /dev/null 2>&1
check "--out with a trailing slash saves there, its checkpoint beside it" \
  bash -c "test $? -eq 0 && '$classify' --model '$work/m6' '$work/task/t-shirt' > /dev/null && test ! -e '$work/m6/.checkpoint'"
mkdir -p "$work/not-a-model" && echo keep > "$work/not-a-model/data.txt"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --out "$work/not-a-model" --quiet > "$work/nam.out" 2> "$work/nam.err"
check "a planned run refuses a bad --out before planning, leaving no plan file" \
  bash -c "test $? -eq 1 && grep -q 'not a model directory' '$work/nam.err' && ! grep -q '^plan:' '$work/nam.out' && test ! -e '$work/not-a-model.plan.json'"
mkfifo "$work/report-pipe"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --epochs 1 --out "$work/m3" --report "$work/report-pipe" \
  --quiet > /dev/null 2> "$work/pipe.err"
check "a --report that is not a regular file is refused up front" \
  bash -c "test $? -eq 2 && grep -q 'not a regular file' '$work/pipe.err' && test -p '$work/report-pipe' && test ! -e '$work/m3'"
first_image=$(find "$work/task" -type f | sort | head -1)
cp "$first_image" "$work/image.before"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --epochs 1 --out "$work/m3" --report "$first_image" \
  --quiet > /dev/null 2> "$work/clash.err"
check "a --report inside the task folder is refused up front, naming --data, and the image is untouched" \
  bash -c "test $? -eq 2 && grep -q 'inside --data' '$work/clash.err' && cmp -s '$first_image' '$work/image.before'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --epochs 1 --out "$work/m3" --report "$work/zoo/MANIFEST" \
  --quiet > /dev/null 2> "$work/clash.err"
check "a --report inside the zoo is refused" bash -c "test $? -eq 2 && grep -q 'inside --zoo' '$work/clash.err'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --epochs 1 --out "$work/m3" --report "$work/m3/MANIFEST" \
  --quiet > /dev/null 2> "$work/clash.err"
check "a --report inside the model it saves is refused" bash -c "test $? -eq 2 && grep -q 'inside --out' '$work/clash.err'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --epochs 1 --out "$work/m3" --threads 100000 \
  > /dev/null 2> "$work/threads.err"
check "--threads beyond 4096 is a bad argument" bash -c "test $? -eq 2 && grep -q -- '--threads' '$work/threads.err'"
python3 "$here/../support/fashion_task.py" "$work/val" 6 0,1,7
"$adapt" --zoo "$work/zoo" --data "$work/task" --validation "$work/val" --budget 20 --epochs 1 --out "$work/m4" \
  --report "$work/val.json" --quiet > /dev/null 2>&1
check "an explicit validation folder is used" json "$work/val.json" "r['task']['images'] == 90 + 18 and r['validation_accuracy'] >= 0"
"$adapt" --zoo "$work/zoo" --data "$work/task" --validation "$work/task/" --budget 20 --epochs 1 --out "$work/m5" \
  --quiet > /dev/null 2> "$work/sameval.err"
check "the task folder as its own validation folder is a bad argument (exit 2)" \
  bash -c "test $? -eq 2 && grep -q 'validation would measure training images' '$work/sameval.err' && test ! -e '$work/m5'"
"$adapt" --data "$work/task" --budget 20 > /dev/null 2> "$work/noszoo.err"
check "a missing required option is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--zoo' '$work/noszoo.err'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget abc > /dev/null 2> "$work/badbudget.err"
check "a budget that is not a number is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--budget' '$work/badbudget.err'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget inf > /dev/null 2> "$work/infbudget.err"
check "an infinite budget is a bad argument, named" bash -c "test $? -eq 2 && grep -q -- '--budget.*finite' '$work/infbudget.err'"

# A planned run killed after its first checkpoint resumes the plan it had.
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 60 --state "$state" --out "$work/planned-killed" \
  --checkpoint-every 0.2 --no-record --quiet > /dev/null 2>&1 &
pid=$!
for _ in $(seq 2400); do [ -f "$work/planned-killed.checkpoint" ] && break; sleep 0.05; done
kill -KILL "$pid" 2> /dev/null
wait "$pid" 2> /dev/null
check "a planned run leaves its plan beside its checkpoint" \
  bash -c "test -f '$work/planned-killed.checkpoint' && test -f '$work/planned-killed.plan.json'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 30 --state "$state" --out "$work/planned-killed" \
  --resume --no-record --quiet > /dev/null 2> "$work/other-budget.err"
check "a resume with another budget than its plan's is refused, naming both" bash -c \
  "test $? -eq 2 && grep -q 'planned for --budget 60' '$work/other-budget.err' && test -f '$work/planned-killed.checkpoint'"
"$zoo_tool" create --out "$work/other-zoo" --name other --classes 10 --input 32 --encoding 2-_8_1 > /dev/null
"$adapt" --zoo "$work/other-zoo" --data "$work/task" --budget 60 --state "$state" --out "$work/planned-killed" \
  --resume --no-record --quiet > /dev/null 2> "$work/other-zoo.err"
check "a resume with another zoo than its plan's is a bad argument, saying so" bash -c \
  "test $? -eq 2 && grep -q 'resume with the --zoo the run was planned with' '$work/other-zoo.err' && test -f '$work/planned-killed.checkpoint'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 60 --state "$state" --out "$work/planned-killed" \
  --resume --no-record --report "$work/planned-resumed.json" --quiet > /dev/null 2> "$work/planned-resume.err"
check "the planned run resumes with the plan it was killed in and completes it" \
  json "$work/planned-resumed.json" "r['resumed'] and r['stop_reason'] == 'completed' and r['plan']['best']['regime']['epochs'] == len(r['epochs'])"
check "the resumed run removes its plan file" test ! -e "$work/planned-killed.plan.json"

cp "$state"/adapt-test-*/experience.log "$work/experience-before.log"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 8 --state "$state" --out "$work/m-state" \
  --report "$(ls -d "$state"/adapt-test-*)/experience.log" > /dev/null 2> "$work/report-state.err"
check "a --report inside the state folder is refused, the experience kept" bash -c \
  "test $? -eq 2 && grep -q 'inside --state' '$work/report-state.err' && cmp -s '$work/experience-before.log' \"\$(ls '$state'/adapt-test-*/experience.log)\""
touch "$work/state-file"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 8 --state "$work/state-file" --out "$work/m-sf" > /dev/null 2> "$work/state-file.err"
check "a --state that is a file is refused up front, naming it" bash -c \
  "test $? -eq 2 && grep -q 'state-file: exists and is not a folder' '$work/state-file.err'"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 8 --state "$work/task/state" --out "$work/m-st" > /dev/null 2> "$work/state-in.err"
check "a --state inside the task folder is refused (it would be read as a class)" bash -c \
  "test $? -eq 2 && grep -q 'inside --data' '$work/state-in.err' && test ! -e '$work/task/state'"

# Fine-tuning replaces --out whole: a state folder inside it would be lost.
mkdir -p "$work/m-holds"
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 8 --state "$work/m-holds/state" --out "$work/m-holds" \
  > /dev/null 2> "$work/state-in-out.err"
check "a --state inside --out is refused before any work" bash -c \
  "test $? -eq 2 && grep -q 'inside --out' '$work/state-in-out.err' && test ! -e '$work/m-holds/state'"
# More threads than any machine has: a usage error, refused before the task is read.
"$adapt" --zoo "$work/zoo" --data "$work/task" --budget 8 --threads 4096 --out "$work/m-th" > "$work/threads.out" \
  2> "$work/threads.err"
check "--threads above the cores is a bad argument, refused before reading the task" bash -c \
  "test $? -eq 2 && grep -q 'threads 4096 is more than' '$work/threads.err' && ! grep -q '^task:' '$work/threads.err'"
if [ -w /dev/full ]; then
  "$adapt" --zoo "$work/zoo" --data "$work/task" --budget 20 --state "$state" --plan-only > /dev/full 2> "$work/full.err"
  check "a plan that cannot be written to standard output fails" bash -c \
    "test $? -eq 1 && grep -q 'cannot write the plan' '$work/full.err'"
fi

finish
