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
rm -rf "$out" "$work"
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
"$gather" --ship "$work/experience.log" --zoo "$work/zoo"
mv "$work/zoo" "$out"
rm -rf "$work"
