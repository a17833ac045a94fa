#!/usr/bin/env python3
"""Real runs of the fixed default that fill each budget (issue #5, baseline a).

The adaption tables hold every plan up to the grid's 32 epochs, so the table's
fixed default ("the largest zoo model that fits, learning rate 0.01, nothing
frozen, epochs to fill the budget") can only be read off as the most epochs of
the grid that fit. On the evaluation tasks 32 epochs take a few seconds, so
that leaves most of a 30-300 s budget unused. This script runs the fixed
default for real with the epochs that fill each budget: the per-epoch time of
the table's own run of that model at lr 0.01 (same task, same seed, same
machine) gives how many epochs fit in `--fill` of the budget; nasoa-adapt then
trains that many epochs under the budget, its guard stopping it if the
estimate was short.

Each run appends one JSON line to --out (locked, so two shards may share it);
a rerun skips the runs already there. adaption_bench reads the file with
--fixed-fill and prints the row "fixed, filling the budget".

Usage:
  python3 bench/fixed_fill_runs.py --build BUILD --zoo zoo/default --tasks build/corpora/eval \
      --table 1=bench/adaption/zoo-table.log --table 2=bench/adaption/zoo-table-seed2.log \
      --out bench/adaption/fixed-fill-runs.jsonl [--budgets 30,60,120,300] [--shard K/N]
"""

import argparse
import fcntl
import json
import math
import os
import subprocess
import sys
import tempfile


def read_table(path):
    """The table's runs of each model at lr 0.01, nothing frozen, the most
    epochs, by (task, model): (parameters, history)."""
    runs = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line.split(" ", 1)[1])
            except (IndexError, ValueError) as e:
                sys.exit(f"{path}:{number}: not a table record ({e})")
            regime = record["regime"]
            if regime["learning_rate"] != 0.01 or regime["frozen_stages"] != 0:
                continue
            key = (record["task"]["id"], regime["model"])
            if key not in runs or regime["epochs"] > runs[key]["epochs"]:
                runs[key] = {"epochs": regime["epochs"], "parameters": record["model"]["parameters"],
                             "history": record["history"]}
    return runs


def epochs_to_fill(history, budget, fill):
    """Epochs whose estimated time is within fill * budget: the first epoch's
    elapsed time (start-up and ingestion included) plus the later epochs' mean."""
    if len(history) < 2:
        raise ValueError("a run of at least 2 epochs is needed to time an epoch")
    first = history[0]["elapsed_seconds"]
    per_epoch = (history[-1]["elapsed_seconds"] - first) / (len(history) - 1)
    if not per_epoch > 0:
        raise ValueError(f"the run's epochs took {per_epoch} s each")
    return max(1, 1 + math.floor((fill * budget - first) / per_epoch)), per_epoch


def done_keys(path):
    keys = set()
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    r = json.loads(line)
                    keys.add((r["task"], r["seed"], r["budget"]))
                except (ValueError, KeyError, TypeError) as e:
                    sys.exit(f"{path}:{number}: not a run of this script ({e}); move the file aside to start again")
    return keys


def append(path, record):
    with open(path, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", required=True)
    p.add_argument("--zoo", required=True)
    p.add_argument("--tasks", required=True)
    p.add_argument("--table", action="append", required=True, metavar="SEED=LOG")
    p.add_argument("--out", required=True)
    p.add_argument("--budgets", default="30,60,120,300")
    p.add_argument("--fill", type=float, default=0.92,
                   help="share of the budget the estimate may use (the rest is start-up and saving slack)")
    p.add_argument("--shard", default="0/1", metavar="K/N")
    args = p.parse_args()

    try:
        k, n = (int(x) for x in args.shard.split("/"))
    except ValueError:
        p.error(f"--shard {args.shard}: expected K/N")
    if not 0 <= k < n:
        p.error(f"--shard {args.shard}: expected 0 <= K < N")
    try:
        budgets = [float(b) for b in args.budgets.split(",")]
    except ValueError:
        p.error(f"--budgets {args.budgets}: expected seconds, comma-separated")
    tables = {}
    for item in args.table:
        seed, sep, path = item.partition("=")
        if not sep or not seed.isdigit():
            p.error(f"--table {item}: expected SEED=LOG")
        tables[int(seed)] = read_table(path)

    jobs = []
    for seed, runs in sorted(tables.items()):
        for task in sorted({t for t, _ in runs}):
            # The largest model: every model of the zoo fits these budgets.
            model = max((m for t, m in runs if t == task), key=lambda m: runs[(task, m)]["parameters"])
            for budget in budgets:
                jobs.append((budget, task, seed, model))
    # Longest first, dealt in turn, so that the shards end together.
    jobs.sort(key=lambda j: (-j[0], j[1], j[2]))
    mine = jobs[k::n]
    done = done_keys(args.out)
    adapt = os.path.join(args.build, "samples", "nasoa-adapt")
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    for budget, task, seed, model in mine:
        if (task, seed, budget) in done:
            continue
        run = tables[seed][(task, model)]
        epochs, per_epoch = epochs_to_fill(run["history"], budget, args.fill)
        with tempfile.TemporaryDirectory(prefix="nasoa-fill-") as work:
            report = os.path.join(work, "report.json")
            command = [adapt, "--zoo", args.zoo, "--data", os.path.join(args.tasks, task),
                       "--budget", str(budget), "--model", model, "--lr", "0.01", "--frozen", "0",
                       "--epochs", str(epochs), "--seed", str(seed), "--threads", "1", "--no-record",
                       "--state", os.path.join(work, "state"), "--out", os.path.join(work, "model"),
                       "--report", report, "--quiet"]
            finished = subprocess.run(command, env=env, capture_output=True, text=True)
            if finished.returncode != 0:
                sys.exit(f"{' '.join(command)}: exit {finished.returncode}\n{finished.stderr[-2000:]}")
            with open(report, encoding="utf-8") as f:
                r = json.load(f)
        if r.get("achieved_accuracy") is None or not r.get("epochs"):
            sys.exit(f"{' '.join(command)}: the report has no evaluated epoch")
        # The last epoch evaluated (an epoch the budget ended before its
        # evaluation is in the report with -1): what adaption_bench --score
        # final reads; null when none was (that mode then names the run).
        evaluated = [e["validation_accuracy"] for e in r["epochs"] if e["validation_accuracy"] >= 0]
        final_accuracy = evaluated[-1] if evaluated else None
        record = {"task": task, "seed": seed, "budget": budget, "model": model, "learning_rate": 0.01,
                  "frozen_stages": 0, "epochs_planned": epochs, "epochs_run": len(r["epochs"]),
                  "table_epoch_seconds": per_epoch, "best_accuracy": r["achieved_accuracy"],
                  "final_accuracy": final_accuracy,
                  "best_epoch": r["best_epoch"], "wall_seconds": r["wall_seconds"],
                  "stop_reason": r["stop_reason"]}
        append(args.out, record)
        print(json.dumps(record, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
