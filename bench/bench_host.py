"""What the benchmark scripts share: what they say about the machine they ran
on, their common set-up, and held-out splits of a task folder scored with
nasoa-classify."""

import os
import platform
import random
import shutil
import subprocess


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what Python knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def split_task(source, out, seed, held_out=0.3):
    """Class folders of `source` split into out/adapt and out/test."""
    rng = random.Random(seed)
    for cls in sorted(os.listdir(source)):
        folder = os.path.join(source, cls)
        if not os.path.isdir(folder):
            continue
        files = sorted(os.listdir(folder))
        rng.shuffle(files)
        k = int(len(files) * held_out)
        for part, chosen in (("test", files[:k]), ("adapt", files[k:])):
            os.makedirs(os.path.join(out, part, cls), exist_ok=True)
            for name in chosen:
                shutil.copy(os.path.join(folder, name), os.path.join(out, part, cls, name))


def held_out_accuracy(classify, model_dir, test_dir):
    out = subprocess.run([classify, "--model", model_dir, test_dir], capture_output=True, text=True, check=True)
    right = total = 0
    for line in out.stdout.splitlines():
        path, label, _ = line.split("\t")
        total += 1
        right += os.path.basename(os.path.dirname(path)) == label
    return right / total


def add_held_out_arguments(ap, seeds):
    """The options of the scripts that adapt the evaluation tasks and score
    the models on held-out images."""
    ap.add_argument("--build", required=True)
    ap.add_argument("--zoo", required=True)
    ap.add_argument("--tasks", required=True, help="folder of evaluation task folders")
    ap.add_argument("--work", required=True, help="scratch folder (replaced)")
    ap.add_argument("--budget", type=float, default=30)
    ap.add_argument("--seeds", default=seeds)
    ap.add_argument("--threads", type=int, default=1)


def start_held_out_run(args, profile):
    """Replaces the work folder and measures this machine's device profile
    into `profile`; returns the programs (adapt, classify), the seeds and
    the environment to run them in."""
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    subprocess.run([os.path.join(args.build, "offline_tools", "nasoa-profile"), "--zoo", args.zoo, "--out", profile,
                    "--batch", "32", "--threads", str(args.threads), "--cpu", "--no-power"],
                   check=True, capture_output=True, env=env)
    adapt = os.path.join(args.build, "samples", "nasoa-adapt")
    classify = os.path.join(args.build, "samples", "nasoa-classify")
    return adapt, classify, [int(s) for s in args.seeds.split(",")], env
