#!/usr/bin/env python3
"""Which of a run's evaluated weights to hand back, scored on held-out images.

The fine-tuner evaluates the weights on its validation split after every
epoch and hands back one epoch's (AdapterOptions::hand_back,
runtime/train/weights_choice.h): the highest-validated, the latest within one
binomial standard error of it, or the last. On a split of 60-200 images the
highest of many evaluations flatters the epoch that reached it, so the rules
are compared on images none of them saw.

Each evaluation task is split per class (seeded, once per seed) into 70 % to
adapt on, which nasoa-adapt splits again for validation, and 30 % held out.
For each task and seed the planner plans the run for `--budget` seconds
(--plan-only, from a profile measured here a minute before), and that regime
is then trained once per rule, given by hand, with the seed, a fixed memory
layout and thread count, and room in the budget to complete: training is
deterministic, so the runs differ only in the weights they hand back. The
script checks that: a task-seed whose runs' epoch histories (training loss
and validation accuracy) differ, or one of whose runs did not complete, is
reported and left out. The 16 or so runs are tasks times seeds, not
independent draws: read the per-task rows beside the pooled test. The score is nasoa-classify's accuracy on the held-out images.

Usage:
  python3 bench/weights_choice_ab.py --build BUILD --zoo zoo/default --tasks BUILD/corpora/eval \
      --work /tmp/weights-choice [--budget 30] [--seeds 1,2,3,4] [--threads 1]
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys

from bench_host import add_held_out_arguments, cpu_model, held_out_accuracy, split_task, start_held_out_run

RULES = ("best-validated", "latest-within-noise", "last")


def sign_flip_p(differences, draws=200000):
    """Two-sided p of a paired sign-flip (randomisation) test of the mean
    difference: under no effect each difference's sign is a coin toss. Exact
    up to 20 nonzero differences, else from `draws` seeded random flips."""
    d = [x for x in differences if x != 0]
    observed = abs(sum(d)) - 1e-9
    if not d:
        return 1.0
    if len(d) <= 20:
        hits = sum(abs(sum(x if (mask >> i) & 1 else -x for i, x in enumerate(d))) >= observed
                   for mask in range(1 << len(d)))
        return hits / (1 << len(d))
    rng = random.Random(1)
    hits = sum(abs(sum(x if rng.random() < 0.5 else -x for x in d)) >= observed for _ in range(draws))
    return hits / draws


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_held_out_arguments(ap, seeds="1,2,3,4")
    args = ap.parse_args()
    profile = os.path.join(args.work, "profile.json")
    adapt, classify, seeds, env = start_held_out_run(args, profile)

    tasks = sorted(t for t in os.listdir(args.tasks) if os.path.isdir(os.path.join(args.tasks, t)))
    rows = []
    for seed in seeds:
        for task in tasks:
            folder = os.path.join(args.work, f"{task}-{seed}")
            split_task(os.path.join(args.tasks, task), folder, seed=seed)
            common = ["--zoo", args.zoo, "--data", os.path.join(folder, "adapt"), "--seed", str(seed),
                      "--threads", str(args.threads), "--profile", profile, "--quiet"]
            planned = subprocess.run([adapt, *common, "--budget", str(args.budget), "--plan-only",
                                      "--state", folder + ".state", "--out", folder + ".unused"],
                                     check=True, capture_output=True, text=True, env=env)
            regime = json.loads(planned.stdout)["best"]["regime"]
            runs = {}
            for rule in RULES:
                run = os.path.join(folder, rule)
                # Room to complete: the budget never cuts, so every rule's run
                # trains the same epochs.
                subprocess.run([adapt, *common, "--model", regime["model"], "--lr", str(regime["learning_rate"]),
                                "--epochs", str(regime["epochs"]), "--frozen", str(regime["frozen_stages"]),
                                "--batch", str(regime["batch_size"]), "--budget", str(4 * args.budget),
                                "--fixed-schedule", "--memory-layout", "channels-first", "--hand-back", rule,
                                "--no-record", "--state", folder + ".state", "--out", run + ".model",
                                "--report", run + ".json"], check=True, capture_output=True, env=env)
                with open(run + ".json", encoding="utf-8") as f:
                    report = json.load(f)
                runs[rule] = {"epoch": report["best_epoch"], "stop": report["stop_reason"],
                              "validation": report["validation_accuracy"],
                              "history": [(e["train_loss"], e["validation_accuracy"]) for e in report["epochs"]],
                              "test": held_out_accuracy(classify, run + ".model", os.path.join(folder, "test"))}
            same = all(runs[r]["history"] == runs[RULES[0]]["history"] and runs[r]["stop"] == "completed"
                       for r in RULES)
            row = {"task": task, "seed": seed, "epochs": regime["epochs"], "same": same, **runs}
            rows.append(row)
            print(f"# {task} seed {seed}: {regime['model']} lr {regime['learning_rate']} x{regime['epochs']}"
                  + ("" if same else " (histories differ or a run was cut: left out)") + "; "
                  + "; ".join(f"{r} epoch {runs[r]['epoch']} held-out {100 * runs[r]['test']:.1f} %" for r in RULES),
                  file=sys.stderr, flush=True)

    kept = [r for r in rows if r["same"]]
    print(f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs; nasoa-adapt --threads {args.threads}; regimes "
          f"planned for {args.budget:g} s and trained to completion; seeds {args.seeds} ({len(seeds)} per task); "
          f"{len(kept)} of {len(rows)} task-seed runs completed and trained identically under every rule.")
    print()
    print("| task | epochs | " + " | ".join(f"{r}: epoch handed back (median), held-out" for r in RULES) + " |")
    print("|---|---:|" + "---:|" * len(RULES))
    for task in sorted({r["task"] for r in kept}):
        mine = [r for r in kept if r["task"] == task]
        cells = [f"{statistics.median(r[rule]['epoch'] for r in mine):g}, "
                 f"{100 * statistics.mean(r[rule]['test'] for r in mine):.1f} %" for rule in RULES]
        print(f"| {task} | {statistics.median(r['epochs'] for r in mine):g} | " + " | ".join(cells) + " |")
    print()
    print("Held-out accuracy against best-validated's, per task-seed run (pp):")
    print()
    print("| rule | ahead / level / behind | median | mean | sign-flip p | per run |")
    print("|---|---:|---:|---:|---:|---|")
    for rule in RULES[1:]:
        d = [100 * (r[rule]["test"] - r[RULES[0]]["test"]) for r in kept]
        if not d:
            continue
        print(f"| {rule} | {sum(x > 0 for x in d)} / {sum(x == 0 for x in d)} / {sum(x < 0 for x in d)} | "
              f"{statistics.median(d):+.2f} | {statistics.mean(d):+.2f} | {sign_flip_p(d):.3f} | "
              f"{', '.join(f'{x:+.1f}' for x in d)} |")


if __name__ == "__main__":
    main()
