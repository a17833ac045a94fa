#!/usr/bin/env bash
# Reproduces zoo/default, the starter zoo, from scratch: two small networks
# pretrained at 32x32 on Fashion-MNIST's training split, classes 0-4
# (t-shirt, trouser, pullover, dress, coat), with a fixed seed. The data card
# is docs/data.md#starter-upstream. It stands in for the searched zoo until
# the search ships one; the default task (classes 5-9 of the test split) shares
# no class and no image with it.
#
# Usage: bash scripts/make_starter_zoo.sh      (from anywhere; writes zoo/default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
build=$(bash scripts/configure.sh | tail -n 1)
cmake --build "$build" --target nasoa-pretrain nasoa-zoo -j "$(nproc)"
# LibTorch's OpenMP threads spin while waiting; with a batch loader beside
# them that starves the loader on a small machine.
export OMP_WAIT_POLICY=PASSIVE

fashion=/usr/share/datasets/fashion-mnist
out=zoo/default
seed=1
if [ -e "$out" ]; then
  # Only ever a bundle is removed, never whatever else a typo points at.
  [ -f "$out/MANIFEST" ] || { echo "make_starter_zoo: $out exists and is not a bundle" >&2; exit 1; }
  rm -rf "$out"
fi
pretrain() {  # pretrain MODEL-NAME ENCODING EPOCHS LR
  local started=$SECONDS
  "$build/offline_tools/nasoa-pretrain" --name default --out "$out" --model-name "$1" --encoding "$2" \
    --idx "$fashion/train-images-idx3-ubyte.gz" "$fashion/train-labels-idx1-ubyte.gz" \
    --classes 0,1,2,3,4 --class-names t-shirt,trouser,pullover,dress,coat \
    --input 32 --epochs "$3" --lr "$4" --batch 64 --seed "$seed"
  echo "make_starter_zoo: $1 took $((SECONDS - started)) s"
}
pretrain resnet-like-16 020-_16_11-21-21 8 0.1
pretrain et-nas-a-like-16 2-_16_2-11-112 8 0.1
"$build/offline_tools/nasoa-zoo" verify "$out"
"$build/offline_tools/nasoa-zoo" inspect "$out"
