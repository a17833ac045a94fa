#!/usr/bin/env bash
# Reproduces the searched default zoo (zoo/default), the hand-designed
# baselines bundle (zoo/baselines) and the search's front (zoo/search/) from
# scratch, on this machine's CPU (or its GPU where LibTorch has CUDA):
#
#   1. nasoa-corpus builds the upstream corpus, source and evaluation tasks
#      (docs/corpora.md) into BUILD/corpora (BUILD: build/, or NASOA_BUILD_DIR);
#   2. nasoa-search runs the block-level then the macro-level search on the
#      upstream corpus, evaluating the baselines the same way, and picks
#      models spread over the front (zoo/search/selected.csv);
#   3. nasoa-pretrain trains every picked model and every baseline with one
#      recipe on the whole upstream corpus;
#   4. nasoa-gather fine-tunes the default bundle's models on the source tasks
#      under a grid of regimes, then the two largest models for 64 and 128
#      epochs and the largest for 256 and 512, and ships the experience and
#      the performance predictor fitted on it in the bundle
#      ($NASOA_GATHER_HOURS caps each of its six rounds);
#   5. the bundles are verified and replace zoo/default and zoo/baselines.
#
# Resumable: every step keeps its state under BUILD/zoo-production and skips
# what is done, so after an interruption the same command carries on. The
# search state, the pretrained models and the logs stay there.
#
# Usage: bash scripts/make_default_zoo.sh       (from anywhere)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
build=$(bash scripts/configure.sh | tail -n 1)
cmake --build "$build" --target nasoa-corpus nasoa-search nasoa-pretrain nasoa-gather nasoa-zoo -j "$(nproc)"
export OMP_WAIT_POLICY=PASSIVE  # LibTorch's waiting threads must not starve the batch loader
tools=$build/offline_tools
work=$build/zoo-production
seed=1
input=32
mkdir -p "$work"
started=$SECONDS
stamp() { echo "make_default_zoo: $* ($((SECONDS - started)) s)"; }

# 1. Corpora (a second run with the same options does nothing).
"$tools/nasoa-corpus" --out "$build/corpora" --seed "$seed"
stamp "corpora ready"

# 2. Search. The baselines are points of the same space, at the same C0 as
# the searched networks' middle choice and with at most three downsamplings
# (the stem leaves 8x8 of a 32x32 input).
baselines=(
  resnet18-like=020-_16_11-21-21-21
  resnet34-like=020-_16_111-2111-211111-211
  resnet50-like=10001-_16_411-2111-211111-211
  mobilenet-like=14441-_16_11-21-211-2111
  regnet-like=12321-_16_1-21-2111-21111
)
baseline_args=()
for b in "${baselines[@]}"; do baseline_args+=(--baseline "$b"); done
"$tools/nasoa-search" --corpus "$build/corpora/upstream" --state "$work/search-state" --out zoo/search \
  --seed "$seed" --input "$input" --batch 64 --proxy-epochs 5 --train-per-class 100 --validation-per-class 20 \
  --block-samples 16 --seed-block 020- --seed-block 10001- --seed-block 2- --seed-block 0- --keep-blocks 4 \
  --reference-macro 1-21-21 --reference-c0 16 --population 8 --generations 18 --children 8 \
  --c0 8,12,16,24,32 --max-blocks 12 --max-stages 4 --max-channels 256 --max-macs 6000000 --select 7 \
  "${baseline_args[@]}" 2>&1 | tee "$work/search.log"
stamp "search done"

# 3. Pretraining, one recipe for all: SGD with momentum, cosine schedule,
# peak rate 0.1, batch 64, 15 epochs, random resized crops (no flips: glyph classes are
# not mirror-symmetric), 10 % of each class held out for the upstream accuracy.
pretrain() {  # pretrain BUNDLE-NAME MODEL-NAME ENCODING
  local bundle=$work/$1
  if [ -f "$bundle/MANIFEST" ] && "$tools/nasoa-zoo" inspect "$bundle" | awk '{print $1}' | grep -qx "$2"; then
    echo "make_default_zoo: $2 already pretrained"
    return
  fi
  local t=$SECONDS
  if ! "$tools/nasoa-pretrain" --name "$1" --out "$bundle" --model-name "$2" --encoding "$3" \
    --data "$build/corpora/upstream" --input "$input" --epochs 15 --lr 0.1 --batch 64 --seed "$seed" --no-flip \
    --threads 1 --data-card docs/corpora.md#upstream --quiet > "$work/pretrain-$2.log" 2>&1; then
    cat "$work/pretrain-$2.log" >&2
    return 1
  fi
  cat "$work/pretrain-$2.log"
  stamp "$2 pretrained in $((SECONDS - t)) s"
}
# The two bundles are written by two chains side by side (one compute thread
# each), never two processes on one bundle.
(
  while IFS=, read -r name encoding _; do
    [ "$name" = name ] && continue
    pretrain default "$name" "$encoding"
  done < zoo/search/selected.csv
) &
searched=$!
(
  for b in "${baselines[@]}"; do pretrain baselines "${b%%=*}" "${b#*=}"; done
) &
hand_designed=$!
# Both waited for before failing (set -e would exit at the first and leave
# the other chain writing its bundle while a rerun starts a second writer).
chains_failed=0
wait $searched || chains_failed=1
wait $hand_designed || chains_failed=1
[ $chains_failed = 0 ] || { echo "make_default_zoo: pretraining failed (see $work/pretrain-*.log)" >&2; exit 1; }

# 4. Fine-tuning experience of the default bundle on the source tasks, and
# the performance predictor fitted on it, shipped in the bundle. Every
# (task, model) pair runs every plan of the grid (96), in rounds: 24, 48,
# then all, each pair's plans in an order drawn with the seed and the pair's
# names, so that a gathering stopped after a round ($NASOA_GATHER_HOURS caps
# each) holds the same share of every pair. The log is append-only, so an
# interrupted gathering carries on where it stopped. Two shards of the tasks
# gather side by side, one compute thread each.
for plans in 24 48 0; do
  bash scripts/gather_in_two_shards.sh "$work/gather" \
    "$tools/nasoa-gather" --zoo "$work/default" --tasks "$build/corpora/source" --log "$work/experience.log" \
    --lrs 0.003,0.01,0.03,0.1 --frozen 0,1,2,3 --epochs 1,2,4,8,16,32 --batch 32 --plans-per-pair "$plans" \
    --seed "$seed" --threads 1 ${NASOA_GATHER_HOURS:+--hours "$NASOA_GATHER_HOURS"}
done
# Then longer training for the two models of the most MACs (the ones plans
# on these tasks choose): 64 and 128 epochs at the learning rates that
# converge, nothing frozen; then the one of the most MACs for 256 and 512
# epochs at those rates. A budget of minutes holds hundreds
# of epochs on tasks this small, and accuracy still rises past the grid's
# 32. Without runs that long the predictor could only extrapolate what they
# are worth, so nasoa::Adapter plans each model no longer than its own
# longest run (at least 32): only this one plans past 128. Each frozen
# stage count is capped at its own longest run: these long runs freeze
# nothing, so plans with stages frozen stay within 32 epochs.
long_models=$("$tools/nasoa-zoo" inspect "$work/default" | awk '$1 ~ /^nasoa-/ {print $7, $1}' | sort -n | tail -n 2 \
  | cut -d' ' -f2 | paste -sd, -)
bash scripts/gather_in_two_shards.sh "$work/gather" \
  "$tools/nasoa-gather" --zoo "$work/default" --tasks "$build/corpora/source" --log "$work/experience.log" \
  --models "$long_models" --lrs 0.01,0.03,0.1 --frozen 0 --epochs 64,128 --batch 32 --seed "$seed" --threads 1 \
  ${NASOA_GATHER_HOURS:+--hours "$NASOA_GATHER_HOURS"}
largest=${long_models##*,}
bash scripts/gather_in_two_shards.sh "$work/gather" \
  "$tools/nasoa-gather" --zoo "$work/default" --tasks "$build/corpora/source" --log "$work/experience.log" \
  --models "$largest" --lrs 0.01,0.03,0.1 --frozen 0 --epochs 256 --batch 32 --seed "$seed" --threads 1 \
  ${NASOA_GATHER_HOURS:+--hours "$NASOA_GATHER_HOURS"}
bash scripts/gather_in_two_shards.sh "$work/gather" \
  "$tools/nasoa-gather" --zoo "$work/default" --tasks "$build/corpora/source" --log "$work/experience.log" \
  --models "$largest" --lrs 0.01,0.03,0.1 --frozen 0 --epochs 512 --batch 32 --seed "$seed" --threads 1 \
  ${NASOA_GATHER_HOURS:+--hours "$NASOA_GATHER_HOURS"}
"$tools/nasoa-gather" --ship "$work/experience.log" --zoo "$work/default"
stamp "experience gathered and shipped"

# 5. Verify, then replace the shipped bundles.
for bundle in default baselines; do
  "$tools/nasoa-zoo" verify "$work/$bundle"
  rm -rf "zoo/$bundle.new" && cp -r "$work/$bundle" "zoo/$bundle.new"
  if [ -e "zoo/$bundle" ]; then
    [ -f "zoo/$bundle/MANIFEST" ] || { echo "make_default_zoo: zoo/$bundle exists and is not a bundle" >&2; exit 1; }
    rm -rf "zoo/$bundle"
  fi
  mv "zoo/$bundle.new" "zoo/$bundle"
  "$tools/nasoa-zoo" inspect "zoo/$bundle"
done
stamp "zoo/default and zoo/baselines written"
