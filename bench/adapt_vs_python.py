#!/usr/bin/env python3
"""End-to-end fine-tuning throughput: nasoa-adapt against the same fine-tuning
written in PyTorch (bench/python/train_folder.py), on the same folder of PNGs.

  python3 bench/adapt_vs_python.py [--build build] [--reps 3] [--epochs 3]
      [--images 2000] [--fashion-mnist /usr/share/datasets/fashion-mnist]
      [--device cpu|cuda] [--layout auto|channels-first|channels-last]
      [--encoding E[,E...]] [--encodings-of BUNDLE] [--threads N] [--workers N]
      [--threads-per-core] [--busy N]

Builds a folder of class subfolders of 64x64 PNGs from the Fashion-MNIST IDX
files (Debian's fashion-mnist data package; --fashion-mnist or
$NASOA_FASHION_MNIST to point elsewhere), checks that the Python network has
exactly the parameter count `nasoa-zoo info` gives for the encoding, makes a
one-model zoo with `nasoa-zoo create`, then runs the contenders alternately
--reps times each, with the same threads, batch, epochs, augmentation and
split. On the CPU the compute threads are nasoa's default (the cores less
the loader threads) or --threads N on both sides, and two more PyTorch
contenders run: at PyTorch's own default, a compute thread per core beside
its workers, and with glibc's heap set as nasoa sets it while it trains
(zoo/system/heap_policy.h), through the MALLOC_*_ variables, which its
worker processes inherit. --threads-per-core adds nasoa-adapt with a compute
thread per core beside its loader, and --busy N keeps N other processes
spinning on the CPU while everything runs (the load an app or another job
puts beside training). Images/s counts training images x
epochs over the whole process's wall time (start-up, ingestion, validation
after each epoch and saving included); the in-process figure leaves out the
process start-up (LibTorch loading, Python imports).

Prints a table: what was compared, the machine, the repetitions, the median
of each contender, the ratio, and nasoa-adapt's peak resident memory; with
several networks (--encoding A,B or --encodings-of zoo/default), one table
each and then a summary with a row per network.
"""
import argparse
import gzip
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from bench_host import cpu_model

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ["t-shirt_top", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def png_gray(path, side, pixels):
    """Writes 8-bit grayscale pixels (side*side bytes) as a PNG, standard library only."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + pixels[y * side:(y + 1) * side] for y in range(side))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def make_folder(source, out, images, side):
    """images/10 Fashion-MNIST training images per class, resized (bilinear) to side x side PNGs."""
    import torch
    per_class = images // len(CLASSES)
    stamp = os.path.join(out, ".made")
    if os.path.exists(stamp) and open(stamp).read() == f"{per_class} {side}":
        return per_class * len(CLASSES)  # made before: the IDX files are not needed
    (count, rows, cols), pixels = read_idx(os.path.join(source, "train-images-idx3-ubyte.gz"))
    (labels_count,), labels = read_idx(os.path.join(source, "train-labels-idx1-ubyte.gz"))
    if labels_count != count:
        raise SystemExit(f"{source}: {count} images but {labels_count} labels")
    picked = {c: [] for c in range(len(CLASSES))}
    for i in range(count):
        if len(picked[labels[i]]) < per_class:
            picked[labels[i]].append(i)
    shutil.rmtree(out, ignore_errors=True)
    all_pixels = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).view(count, 1, rows, cols)
    for c, idx in picked.items():
        os.makedirs(os.path.join(out, CLASSES[c]))
        batch = all_pixels[idx].float()
        resized = torch.nn.functional.interpolate(batch, size=(side, side), mode="bilinear",
                                                  align_corners=False)
        resized = resized.round().clamp(0, 255).to(torch.uint8)
        for k, i in enumerate(idx):
            png_gray(os.path.join(out, CLASSES[c], f"{i:05d}.png"), side,
                     bytes(resized[k, 0].flatten().tolist()))
    with open(stamp, "w") as f:
        f.write(f"{per_class} {side}")
    return per_class * len(CLASSES)


def run(cmd, env):
    """(wall seconds, stdout, peak resident bytes of the whole process) of one run."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err.read().decode()[-3000:]}")
        return wall, out.read().decode(), usage.ru_maxrss * 1024  # Linux reports KiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"),
                    help="the build tree with nasoa-adapt and nasoa-zoo")
    ap.add_argument("--fashion-mnist", default=os.environ.get("NASOA_FASHION_MNIST",
                                                              "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "nasoa-bench"),
                    help="where the image folder, zoo and outputs go")
    ap.add_argument("--encoding", default="020-_16_11-21-21",
                    help="the network(s): one encoding or several, comma-separated; '' for none")
    ap.add_argument("--encodings-of", metavar="BUNDLE",
                    help="also every model's encoding of this bundle (e.g. zoo/default), in its order")
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--data-only", action="store_true", help="only make the image folder and print its path")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where both contenders train")
    ap.add_argument("--layout", default="auto", choices=["auto", "channels-first", "channels-last"],
                    help="memory layout: auto lets nasoa-adapt pick (as it does by default) and leaves PyTorch at "
                         "its default; a named layout is used by both")
    cores = os.cpu_count() or 1
    # nasoa::Adapter's defaults: on the CPU a quarter of the cores build
    # batches and the rest compute; with a GPU every core but one builds
    # batches and the compute threads only feed the GPU. The Python contender
    # gets the same.
    ap.add_argument("--workers", type=int, default=0,
                    help="loader threads / workers (default: cores / 4 on the CPU, cores - 1 with a GPU)")
    ap.add_argument("--threads", type=int, default=0,
                    help="compute threads (default: cores - workers on the CPU, cores with a GPU)")
    ap.add_argument("--threads-per-core", action="store_true",
                    help="also run nasoa-adapt with a compute thread per core beside its loader")
    ap.add_argument("--busy", type=int, default=0, metavar="N",
                    help="keep N processes spinning on the CPU during the runs")
    a = ap.parse_args()
    gpu = a.device == "cuda"
    a.workers = a.workers or (max(1, cores - 1) if gpu else max(1, cores // 4))
    threads = a.threads or (cores if gpu else max(1, cores - a.workers))
    # PyTorch's own default is a compute thread per core, beside its workers:
    # what a script that does not call torch.set_num_threads gets. That runs
    # too, as a third contender, when it differs.
    default_threads = cores
    python_default = not gpu and default_threads != threads
    if a.data_only:
        os.makedirs(a.work, exist_ok=True)
        data = os.path.join(a.work, f"fashion-mnist-{a.images}-{a.input}px")
        make_folder(a.fashion_mnist, data, a.images, a.input)
        print(data)
        return
    adapt = os.path.join(a.build, "samples", "nasoa-adapt")
    zoo_tool = os.path.join(a.build, "offline_tools", "nasoa-zoo")
    for tool in (adapt, zoo_tool):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"{tool}: not built (cmake --build {a.build})")

    os.makedirs(a.work, exist_ok=True)
    data = os.path.join(a.work, f"fashion-mnist-{a.images}-{a.input}px")
    t0 = time.monotonic()
    n_images = make_folder(a.fashion_mnist, data, a.images, a.input)
    print(f"data: {n_images} PNGs ({a.input}x{a.input}) in {data} ({time.monotonic() - t0:.1f} s)", file=sys.stderr)

    encodings = [e for e in a.encoding.split(",") if e]
    if a.encodings_of:
        encodings += bundle_encodings(zoo_tool, a.encodings_of)
    if not encodings:
        raise SystemExit("no network to compare: give --encoding or --encodings-of")
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.busy)]
    try:
        summary = [bench_network(a, e, data, n_images, zoo_tool, adapt, threads, default_threads, python_default,
                                 cores) for e in encodings]
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    if len(summary) > 1:
        print_summary(a, summary, threads, cores)


def bundle_encodings(zoo_tool, bundle):
    """The encodings of a bundle's models, in its order (from `nasoa-zoo inspect`)."""
    out = subprocess.run([zoo_tool, "inspect", bundle], check=True, capture_output=True, text=True).stdout
    lines = out.split("\n")
    header = next(i for i, l in enumerate(lines) if l.startswith("name ") and "encoding" in l)
    return [l.split()[1] for l in lines[header + 1:] if l.strip()]


def print_summary(a, summary, threads, cores):
    print(f"# summary: nasoa-adapt vs PyTorch per network, {a.input}x{a.input} input, batch {a.batch}, "
          f"{a.epochs} epochs, {a.workers} loader thread(s), {cores} cores, {a.busy} busy process(es), "
          f"{a.reps} reps each, medians; PyTorch: the faster of its thread counts")
    print("network\tparameters\tnasoa_s\tpytorch_s\tratio\tratio_in_process\ttarget_2.5x")
    for r in summary:
        print(f"{r['encoding']}\t{r['parameters']}\t{r['nasoa_s']:.2f}\t{r['python_s']:.2f}\t{r['ratio']:.2f}x\t"
              f"{r['ratio_in_process']:.2f}x\t{'met' if r['ratio'] >= 2.5 else 'not met'}")
    print()


def bench_network(a, encoding, data, n_images, zoo_tool, adapt, threads, default_threads, python_default, cores):
    """Runs both contenders on one network, prints its table and returns its summary row."""
    gpu = a.device == "cuda"
    # The same network on both sides: parameter counts must agree.
    sys.path.insert(0, os.path.join(HERE, "python"))
    from et_nas_net import ETNasNet, parameter_count
    checked = subprocess.run([zoo_tool, "info", "--classes", str(len(CLASSES)), "--input", str(a.input), encoding],
                             capture_output=True, text=True)
    if checked.returncode != 0:
        raise SystemExit(checked.stderr.strip() or f"{encoding}: nasoa-zoo info failed")
    info = checked.stdout.split("\n")
    nasoa_params = int(next(l for l in info if l.startswith(encoding)).split("\t")[1])
    python_params = parameter_count(ETNasNet(encoding, len(CLASSES)))
    if nasoa_params != python_params:
        raise SystemExit(f"parameter counts differ: nasoa-zoo {nasoa_params}, Python {python_params}")

    zoo = os.path.join(a.work, "zoo")
    shutil.rmtree(zoo, ignore_errors=True)
    subprocess.run([zoo_tool, "create", "--out", zoo, "--name", "bench", "--encoding", encoding,
                    "--classes", str(len(CLASSES)), "--input", str(a.input)], check=True, capture_output=True)

    env = dict(os.environ)
    nasoa_cmd = [adapt, "--zoo", zoo, "--data", data, "--budget", "3600", "--out", os.path.join(a.work, "model"),
                 "--report", os.path.join(a.work, "report.json"), "--epochs", str(a.epochs),
                 "--batch", str(a.batch), "--device", a.device, "--memory-layout", a.layout, "--flip", "--quiet"]
    # nasoa-adapt at a compute thread per core, if asked; then at `threads`,
    # as given so that both sides surely run the same count.
    fixed = {f"nasoa_{cores}": nasoa_cmd + ["--threads", str(cores)]} \
        if a.threads_per_core and not gpu and cores != threads else {}
    nasoa_cmd = nasoa_cmd + ["--threads", str(threads)]
    # PyTorch with the heap as nasoa sets it (values as heap_policy.cpp's).
    heap_env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(32 << 20), MALLOC_TRIM_THRESHOLD_=str(1 << 30),
                    MALLOC_TOP_PAD_=str(64 << 20))
    python_cmd = [sys.executable, os.path.join(HERE, "python", "train_folder.py"), "--data", data,
                  "--encoding", encoding, "--input", str(a.input), "--epochs", str(a.epochs),
                  "--batch", str(a.batch), "--threads", str(threads), "--workers", str(a.workers),
                  "--out", os.path.join(a.work, "model.pt"), "--device", a.device]
    if a.layout == "channels-last":
        python_cmd.append("--channels-last")
    python_default_cmd = list(python_cmd)
    python_default_cmd[python_default_cmd.index("--threads") + 1] = str(default_threads)
    load = os.getloadavg()
    rows = {"nasoa": [], "python": [], "python_default": [], "python_heap": [], **{k: [] for k in fixed}}
    contenders = ["nasoa", *fixed, "python"] + (["python_default"] if python_default else []) + \
        ([] if gpu else ["python_heap"])
    for r in range(a.reps):
        order = contenders if r % 2 == 0 else contenders[::-1]
        for who in order:
            if who.startswith("nasoa"):
                wall, _, peak = run(fixed.get(who, nasoa_cmd), env)
                with open(os.path.join(a.work, "report.json")) as f:
                    rep = json.load(f)
                if rep["stop_reason"] != "completed":
                    raise SystemExit(f"nasoa-adapt stopped early: {rep['stop_reason']}")
                rows[who].append(dict(wall=wall, inproc=rep["wall_seconds"], steps=rep["steps"], device=rep["device"],
                                       layout=rep.get("memory_layout", "channels-first"),
                                       ingest=rep["task"]["ingest_seconds"], acc=rep["validation_accuracy"],
                                       peak=peak))
            else:
                wall, out, _ = run(python_default_cmd if who == "python_default" else python_cmd,
                                   heap_env if who == "python_heap" else env)
                rep = json.loads(out.strip().splitlines()[-1])
                rows[who].append(dict(wall=wall, inproc=rep["wall_seconds"], images=rep["images_trained"],
                                      device=rep["device"], layout=rep["memory_layout"],
                                      train=rep["train_images"], acc=rep["validation_accuracy"]))
            last = rows[who][-1]
            print(f"rep {r + 1}/{a.reps} {who:12s} {last['wall']:7.2f} s process, {last['inproc']:7.2f} s in-process, "
                  f"val acc {last['acc']:.3f}", file=sys.stderr)

    trained = rows["python"][0]["images"]  # train images x epochs; the split is the same 80/20 stratified
    steps_expected = a.epochs * -(-rows["python"][0]["train"] // a.batch)
    if rows["nasoa"][0]["steps"] != steps_expected:
        print(f"warning: nasoa-adapt took {rows['nasoa'][0]['steps']} steps, Python {steps_expected}", file=sys.stderr)

    def med(who, key):
        return statistics.median(x[key] for x in rows[who])

    def ips(who, key):
        return statistics.median(trained / x[key] for x in rows[who])

    print(f"# nasoa-adapt vs PyTorch {__import__('torch').__version__} (torchvision ImageFolder + DataLoader), "
          f"end-to-end fine-tuning")
    print(f"network      {encoding} ({nasoa_params} parameters on both sides), {len(CLASSES)} classes, "
          f"{a.input}x{a.input} input")
    print(f"data         {n_images} Fashion-MNIST PNGs ({a.input}x{a.input}), 80/20 split: "
          f"{rows['python'][0]['train']} train images x {a.epochs} epochs = {trained} trained; "
          f"batch {a.batch}; random resized crop + flip; validation every epoch")
    print(f"machine      {cpu_model()}, {cores} cores; {a.workers} loader thread(s)/worker(s) each; "
          f"{a.busy} other process(es) spinning; load average at start {load[0]:.2f}")
    print(f"threads      {threads} compute on both sides" +
          (f"; PyTorch also at {default_threads} (its default)" if python_default else ""))
    if gpu:
        import torch
        print(f"device       {torch.cuda.get_device_name(0)}: nasoa-adapt on {rows['nasoa'][0]['device']}, "
              f"PyTorch on {rows['python'][0]['device']}")
    nasoa_layouts = sorted({x["layout"] for x in rows["nasoa"]})
    print(f"layout       nasoa-adapt {'/'.join(nasoa_layouts)} (--memory-layout {a.layout}), "
          f"PyTorch {rows['python'][0]['layout']}")
    print(f"repetitions  {a.reps} per contender, alternated; medians below")
    print()
    print("contender\tprocess_s\tin_process_s\timages_per_s\timages_per_s_in_process\tval_acc")
    names = [("nasoa", f"nasoa-adapt, {threads} compute threads")]
    names += [(k, f"nasoa-adapt, {cores} compute threads (not the same threads)") for k in fixed]
    names.append(("python", f"pytorch, {threads} compute threads"))
    if python_default:
        names.append(("python_default", f"pytorch, {default_threads} compute threads (its default)"))
    if not gpu:
        names.append(("python_heap", f"pytorch, {threads} compute threads, heap set as nasoa sets it"))
    for who, name in names:
        print(f"{name}\t{med(who, 'wall'):.2f}\t{med(who, 'inproc'):.2f}\t{ips(who, 'wall'):.1f}\t"
              f"{ips(who, 'inproc'):.1f}\t{med(who, 'acc'):.3f}")
    print()
    # Against PyTorch's faster thread count, the one a user would keep; the
    # tuned heap is reported beside it (a script as users run it has the defaults).
    pythons = ["python"] + (["python_default"] if python_default else [])
    best = max(pythons, key=lambda who: ips(who, "wall"))
    best_name = dict(names)[best]
    print(f"ratio nasoa/pytorch images/s, against the faster PyTorch ({best_name}): "
          f"{ips('nasoa', 'wall') / ips(best, 'wall'):.2f}x "
          f"(in-process {ips('nasoa', 'inproc') / ips(best, 'inproc'):.2f}x); target >= 2.5x")
    for who in pythons + ([] if gpu else ["python_heap"]):
        if who != best:
            print(f"ratio against {dict(names)[who]}: {ips('nasoa', 'wall') / ips(who, 'wall'):.2f}x "
                  f"(in-process {ips('nasoa', 'inproc') / ips(who, 'inproc'):.2f}x)")
    print(f"nasoa-adapt ingestion (decode + resize, once): median {med('nasoa', 'ingest'):.2f} s")
    peak = max(x["peak"] for x in rows["nasoa"])
    print(f"nasoa-adapt peak resident memory: {peak / 2**20:.0f} MiB (max over reps); target < 1024 MiB")
    print()
    return dict(encoding=encoding, parameters=nasoa_params, nasoa_s=med("nasoa", "wall"),
                python_s=med(best, "wall"), ratio=ips("nasoa", "wall") / ips(best, "wall"),
                ratio_in_process=ips("nasoa", "inproc") / ips(best, "inproc"))


if __name__ == "__main__":
    main()
