"""The PyTorch contender of bench/adapt_vs_python.py: what nasoa-adapt does, in
plain PyTorch + torchvision.

Fine-tunes the ET-NAS network of an encoding (bench/python/et_nas_net.py) on a
folder of class subfolders: a stratified 80/20 train/validation split, random
resized crop (area 35-100 %, aspect 3/4-4/3) and horizontal flip, ImageNet
normalisation, SGD (momentum 0.9, weight decay 1e-4) with half an epoch of
linear warm-up then cosine decay per step, label smoothing 0.1, validation
after every epoch keeping the best weights, and the best weights saved at the
end: the regime nasoa-adapt uses by default, with --flip (its flips are off
unless asked).

With --device cuda it trains on the GPU as nasoa-adapt does there: cuDNN
autotuning, bf16 autocast where the GPU supports it, pinned batches.

Ingestion is included in the time: torchvision's ImageFolder decodes every
image in the DataLoader's workers, each epoch, as PyTorch users do.

Prints one JSON line: wall seconds since the script started (after its
imports), the images trained on, and the final validation accuracy.
"""
import argparse
import contextlib
import json
import math
import os
import random
import sys
import time

T_IMPORT = time.monotonic()

import torch  # noqa: E402
import torchvision  # noqa: E402
from torchvision import transforms  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from et_nas_net import ETNasNet  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def stratified_split(targets, fraction, seed):
    rng = random.Random(seed)
    by_class = {}
    for i, t in enumerate(targets):
        by_class.setdefault(t, []).append(i)
    train, val = [], []
    for idx in by_class.values():
        rng.shuffle(idx)
        k = max(1, int(round(len(idx) * fraction)))
        val += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(val)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--encoding", default="020-_16_11-21-21")
    p.add_argument("--input", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=1, help="compute threads (torch.set_num_threads)")
    p.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="", help="save the best weights here (state_dict)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--channels-last", action="store_true",
                   help="train in the channels-last memory layout (model and batches)")
    a = p.parse_args()

    start = time.monotonic()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train_tf = transforms.Compose([
        transforms.RandomResizedCrop(a.input, scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD)])
    eval_tf = transforms.Compose([
        transforms.Resize(a.input), transforms.CenterCrop(a.input),
        transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    train_set = torchvision.datasets.ImageFolder(a.data, transform=train_tf)
    val_set = torchvision.datasets.ImageFolder(a.data, transform=eval_tf)
    train_idx, val_idx = stratified_split(train_set.targets, 0.2, a.seed)
    gpu = a.device == "cuda"
    device = torch.device(a.device)
    if gpu:
        torch.backends.cudnn.benchmark = True
    bf16 = gpu and torch.cuda.is_bf16_supported()

    def autocast():
        # torch.autocast("cuda", ...) probes CUDA even when disabled, so only make one on the GPU.
        return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    common = dict(batch_size=a.batch, num_workers=a.workers, persistent_workers=a.workers > 0, pin_memory=gpu)
    train_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(train_set, train_idx),
                                               shuffle=True, **common)
    val_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(val_set, val_idx),
                                             shuffle=False, **common)

    model = ETNasNet(a.encoding, len(train_set.classes)).to(device)
    layout = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    optimizer = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=1e-4)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    steps_per_epoch = len(train_loader)
    warmup = 0.5

    def lr_at(epochs_done):
        if epochs_done < warmup:
            return a.lr * epochs_done / warmup
        return 0.5 * a.lr * (1 + math.cos(math.pi * (epochs_done - warmup) / (a.epochs - warmup)))

    best_acc, best_state, trained = -1.0, None, 0
    for epoch in range(a.epochs):
        model.train()
        for step, (images, labels) in enumerate(train_loader):
            for g in optimizer.param_groups:
                g["lr"] = lr_at(epoch + (step + 0.5) / steps_per_epoch)
            images = images.to(device, non_blocking=True).contiguous(memory_format=layout)
            labels = labels.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            trained += labels.numel()
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in val_loader:
                images = images.to(device, non_blocking=True).contiguous(memory_format=layout)
                labels = labels.to(device, non_blocking=True)
                correct += (model(images).argmax(1) == labels).sum().item()
        acc = correct / len(val_idx)
        if acc > best_acc:
            best_acc = acc
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    if a.out:
        torch.save(best_state, a.out)
    print(json.dumps({"wall_seconds": time.monotonic() - start,
                      "import_seconds": start - T_IMPORT,
                      "images_trained": trained, "train_images": len(train_idx),
                      "validation_images": len(val_idx), "validation_accuracy": best_acc,
                      "threads": a.threads, "workers": a.workers, "device": a.device + (" (bf16 autocast)" if bf16 else ""),
                      "memory_layout": "channels-last" if a.channels_last else "channels-first"}))


if __name__ == "__main__":
    main()
