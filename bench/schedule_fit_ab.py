#!/usr/bin/env python3
"""Fitting the learning-rate schedule to the budget, against following the
regime as given, on a device slower than its profile.

A plan's epochs come from the device profile. When the device trains slower
than that (other load, a throttled chip, a profile measured elsewhere), the
plan does not fit: followed as given (nasoa-adapt --fixed-schedule), the
budget guard stops it part-way with its cosine near the peak; fitted (the
default), the schedule ends when the budget does (runtime/train/schedule_fit.h).

The slow device is made, reproducibly, by handing nasoa-adapt a profile that
claims steps `--slowdown` times faster than this machine measured them a
minute before. Each evaluation task is split once per class (seeded) into
70 % to adapt on, which nasoa-adapt splits again for validation, and 30 %
held out; the score is nasoa-classify's accuracy on the held-out images,
since the validation accuracy of the handed-back weights is the best of many
evaluations on the split that chose them and flatters noisy, unannealed runs.
Both arms plan from a fresh state folder, so they plan the same, and alternate
run by run, so that drift in the machine's speed reaches both.

Usage:
  python3 bench/schedule_fit_ab.py --build BUILD --zoo zoo/default --tasks BUILD/corpora/eval \
      --work /tmp/schedule-fit [--budget 30] [--seeds 1,2,3] [--slowdown 2] [--threads 1]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from bench_host import add_held_out_arguments, cpu_model, held_out_accuracy, split_task, start_held_out_run


def claimed_faster(measured, out, slowdown):
    """The profile with every time divided by `slowdown`: this machine is then
    `slowdown` times slower than the profile it is given says."""
    with open(measured, encoding="utf-8") as f:
        profile = json.load(f)
    for model in profile["models"]:
        for t in model["training"]:
            t["step_seconds"] /= slowdown
        for key in model.get("inference", {}):
            model["inference"][key] /= slowdown
    with open(out, "w", encoding="utf-8") as f:
        json.dump(profile, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_held_out_arguments(ap, seeds="1,2,3")
    ap.add_argument("--slowdown", type=float, default=2.0)
    args = ap.parse_args()
    measured = os.path.join(args.work, "profile-measured.json")
    adapt, classify, seeds, env = start_held_out_run(args, measured)
    given = os.path.join(args.work, "profile-given.json")
    claimed_faster(measured, given, args.slowdown)

    tasks = sorted(t for t in os.listdir(args.tasks) if os.path.isdir(os.path.join(args.tasks, t)))
    for task in tasks:
        split_task(os.path.join(args.tasks, task), os.path.join(args.work, task), seed=7)

    rows = []
    for seed in seeds:
        for task in tasks:
            for arm in ("fitted", "as given"):
                run = os.path.join(args.work, f"{task}-{seed}-{arm.replace(' ', '-')}")
                command = [adapt, "--zoo", args.zoo, "--data", os.path.join(args.work, task, "adapt"),
                           "--budget", str(args.budget), "--seed", str(seed), "--threads", str(args.threads),
                           "--profile", given, "--state", run + ".state", "--out", run + ".model",
                           "--report", run + ".json", "--quiet"]
                if arm == "as given":
                    command.append("--fixed-schedule")
                subprocess.run(command, check=True, capture_output=True, env=env)
                with open(run + ".json", encoding="utf-8") as f:
                    report = json.load(f)
                rows.append({"task": task, "seed": seed, "arm": arm, "planned": report["regime"]["epochs"],
                             "scheduled": report["scheduled_epochs"], "trained": len(report["epochs"]),
                             "stop": report["stop_reason"], "seconds": report["wall_seconds"],
                             "test": held_out_accuracy(classify, run + ".model", os.path.join(args.work, task, "test"))})
                r = rows[-1]
                print(f"# {task} seed {seed} {arm}: {r['trained']} of {r['planned']} epochs ({r['stop']}), "
                      f"{r['seconds']:.1f} s, held-out {100 * r['test']:.1f} %", file=sys.stderr, flush=True)

    print(f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs; nasoa-adapt --threads {args.threads}, budget {args.budget:g} s, profile claiming "
          f"steps {args.slowdown:g}x faster than measured; seeds {args.seeds} ({len(seeds)} repetitions per task).")
    print()
    print("| task | fitted: epochs trained / planned | as given: epochs trained (stops) | held-out, fitted | "
          "held-out, as given | fitted minus as given, median (per seed) |")
    print("|---|---:|---:|---:|---:|---:|")
    differences = []
    for task in tasks:
        fitted = [r for r in rows if r["task"] == task and r["arm"] == "fitted"]
        given_rows = [r for r in rows if r["task"] == task and r["arm"] == "as given"]
        d = [100 * (a["test"] - b["test"]) for a, b in zip(fitted, given_rows)]
        differences += d
        cut = sum(r["stop"] != "completed" for r in given_rows)
        print(f"| {task} | {statistics.median(r['trained'] for r in fitted):g} / "
              f"{statistics.median(r['planned'] for r in fitted):g} | "
              f"{statistics.median(r['trained'] for r in given_rows):g} ({cut} of {len(given_rows)} cut) | "
              f"{100 * statistics.median(r['test'] for r in fitted):.1f} % | "
              f"{100 * statistics.median(r['test'] for r in given_rows):.1f} % | "
              f"{statistics.median(d):+.1f} pp ({', '.join(f'{x:+.1f}' for x in d)}) |")
    print()
    print(f"All {len(differences)} pairs: fitted minus as given, median {statistics.median(differences):+.2f} pp, "
          f"mean {statistics.mean(differences):+.2f} pp; fitted ahead in {sum(x > 0 for x in differences)}, "
          f"level in {sum(x == 0 for x in differences)}, behind in {sum(x < 0 for x in differences)}.")


if __name__ == "__main__":
    main()
