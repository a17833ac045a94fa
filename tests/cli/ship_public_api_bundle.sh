#!/usr/bin/env bash
# Ships fine-tuning experience into a copy of the public-API tests' bundle,
# for the plan test of a bundle that ships a predictor: real runs (each
# model, one plan of one epoch) on a small Fashion-MNIST task, shipped as
# production ships them. Without the data package it writes nothing, and
# that test skips.
# Usage: ship_public_api_bundle.sh NASOA-GATHER NASOA-MAKE-TASK BUNDLE OUT
set -eu
gather=$1
make_task=$2
bundle=$3
out=$4
work=$out.work
rm -rf "$out" "$out-steps" "$out-steps-capped" "$work"
fashion=/usr/share/datasets/fashion-mnist
if [ ! -f "$fashion/t10k-images-idx3-ubyte.gz" ]; then
  echo "no Fashion-MNIST in $fashion: nothing shipped"
  exit 0
fi
mkdir -p "$work/tasks"
"$make_task" --idx "$fashion/t10k-images-idx3-ubyte.gz" "$fashion/t10k-labels-idx1-ubyte.gz" \
  --classes 0,1 --per-class 10 --seed 1 --out "$work/tasks/two" > /dev/null
cp -r "$bundle" "$work/zoo"
"$gather" --zoo "$work/zoo" --tasks "$work/tasks" --log "$work/experience.log" \
  --lrs 0.1 --frozen 0 --epochs 1 --batch 8 --threads 1 > /dev/null
cp -r "$work/zoo" "$work/zoo-plain"
"$gather" --ship "$work/experience.log" --zoo "$work/zoo" > /dev/null
# And two bundles shipped with experience this script makes up from those
# runs, in which accuracy rises with the steps trained, on tasks of 18 to
# 576 training images at 1 to 32 epochs, and for the model first by name at
# 64 and 128 epochs too. Their trees learn that more steps pay; a small task
# at 512 epochs has step counts that larger tasks reached within 128, so
# without a cap on the epochs planned (epochs_with_evidence) their
# predictors would plan past 128, and without a cap per model
# (model_epoch_caps) the other models would plan past 32 on the first one's
# evidence.
#   OUT-steps: the first model is as good as the others, so its 128-epoch
#     plans come first;
#   OUT-steps-capped: it is 20 points worse, so the others' come first.
python3 - "$work/experience.log" "$work" << 'PY'
import hashlib, json, math, sys
runs = [json.loads(line.split(" ", 1)[1]) for line in open(sys.argv[1])]
first = min(run["model"]["name"] for run in runs)
for name, penalty in (("steps", 0.0), ("steps-capped", 0.2)):
    with open("%s/%s.log" % (sys.argv[2], name), "w") as out:
        for run in runs:
            longer = (64, 128) if run["model"]["name"] == first else ()
            for train in (18, 36, 72, 144, 288, 576):
                for epochs in (1, 2, 4, 8, 16, 32) + longer:
                    r = json.loads(json.dumps(run))
                    batch = r["regime"]["batch_size"]
                    steps = epochs * math.ceil(train / batch)
                    images = train * 4 // 3
                    r["task"]["train_images"] = train
                    r["task"]["meta"].update(images=images, max_per_class=images // 2, min_per_class=images // 2,
                                             mean_per_class=images / 2)
                    r["task"]["id"] = r["task"]["name"] = "steps-%d" % train
                    r["regime"]["epochs"] = epochs
                    accuracy = min(0.99, 0.3 + 0.08 * math.log2(steps)) - (penalty if longer else 0.0)
                    r["result"]["best_accuracy"] = r["result"]["final_accuracy"] = accuracy
                    r["history"] = r["history"][:1]
                    r["run_id"] = "steps-%d|%s|epochs=%d" % (train, r["model"]["name"], epochs)
                    body = json.dumps(r, separators=(",", ":"))
                    out.write(hashlib.sha256(body.encode()).hexdigest() + " " + body + "\n")
PY
for name in steps steps-capped; do
  cp -r "$work/zoo-plain" "$work/zoo-$name"
  "$gather" --ship "$work/$name.log" --zoo "$work/zoo-$name" > /dev/null
  rm -rf "$out-$name"
  mv "$work/zoo-$name" "$out-$name"
done
mv "$work/zoo" "$out"
rm -rf "$work"
