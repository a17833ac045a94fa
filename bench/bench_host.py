"""What the benchmark scripts share: what they say about the machine they ran
on, and held-out splits of a task folder scored with nasoa-classify."""

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
