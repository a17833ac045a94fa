#!/usr/bin/env bash
# README's first command. Sets up what is missing, builds the three programs
# it runs, and then does what a user of nasoa does: plans how to adapt the
# embedded default zoo (zoo/default, the searched models) to a task it has never seen inside a
# 60-second budget, adapts it, and uses the result. The default task is 500 Fashion-MNIST test
# images of five classes the zoo was not trained on (sandal, shirt, sneaker,
# bag, ankle boot), written once as an ordinary folder of class subfolders of
# PNG files, the layout a user hands the SDK (data card: docs/data.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
build=$(bash scripts/configure.sh | tail -n 1)
build=${build#"$root"/}  # shorter paths in what it prints, when the build is in the tree
cmake --build "$build" --target nasoa-adapt nasoa-make-task nasoa-classify -j "$(nproc)"
# LibTorch's OpenMP threads spin while they wait; beside the batch loader
# that would starve it on a small machine.
export OMP_WAIT_POLICY=PASSIVE

fashion=/usr/share/datasets/fashion-mnist
task=$build/default-task
if [ ! -d "$task" ]; then
  "$build/offline_tools/nasoa-make-task" \
    --idx "$fashion/t10k-images-idx3-ubyte.gz" "$fashion/t10k-labels-idx1-ubyte.gz" \
    --classes 5,6,7,8,9 --class-names sandal,shirt,sneaker,bag,ankle-boot \
    --per-class 100 --seed 1 --out "$task"
fi

# No regime is given: nasoa-adapt asks the planner (nasoa::Adapter::plan) for
# the model and regime that fit the budget, prints the plan, fine-tunes it,
# and records the outcome in the device's state directory
# (~/.local/state/nasoa, or $XDG_STATE_HOME/nasoa), from which later plans
# learn. The first run on a machine also measures its device profile (3-5 s
# on 2 cores), inside the budget.
echo
echo "== Planning and adapting the default zoo to the default task (60 s budget) =="
"$build/samples/nasoa-adapt" --zoo zoo/default --data "$task" --budget 60 --seed 1 \
  --out "$build/default-model" --report "$build/default-report.json"

echo
echo "== Classifying one image of each class with the adapted model =="
images=()
for class in sandal shirt sneaker bag ankle-boot; do
  images+=("$(ls "$task/$class"/*.png | tail -n 1)")
done
# Paths shown relative to the task folder (by prefix, not as a pattern: the
# build folder's name may hold characters sed would read as one).
"$build/samples/nasoa-classify" --model "$build/default-model" "${images[@]}" |
  while IFS= read -r line; do printf '%s\n' "${line#"$task"/}"; done

echo
echo "model:  $build/default-model   (nasoa-classify --model, or nasoa::Classifier::open)"
echo "report: $build/default-report.json"
