#!/usr/bin/env bash
# Runs one nasoa-gather command as two task shards side by side (--shard 0/2
# and --shard 1/2, one process each) into its one experience log: appends are
# locked and run ids do not depend on the shard, so the log is the one a
# single process would write, in another order. Each shard's output is
# appended to PREFIX-0.log / PREFIX-1.log. Both shards run to their end, so
# what either gathered stays in the log for a rerun to carry on from; the
# exit status is 1 when either failed, with its last lines on stderr.
#
# Usage: bash scripts/gather_in_two_shards.sh PREFIX NASOA-GATHER ARGS...
set -u
prefix=$1
shift
"$@" --shard 0/2 >> "$prefix-0.log" 2>&1 &
first=$!
"$@" --shard 1/2 >> "$prefix-1.log" 2>&1
status_1=$?
wait $first
status_0=$?
failed=0
for k in 0 1; do
  status_var=status_$k
  if [ "${!status_var}" -ne 0 ]; then
    echo "gather_in_two_shards: shard $k/2 failed (exit ${!status_var}); the end of $prefix-$k.log:" >&2
    tail -n 20 "$prefix-$k.log" >&2
    failed=1
  fi
done
[ $failed -eq 0 ] && tail -n 1 "$prefix-0.log" "$prefix-1.log"
exit $failed
