#!/usr/bin/env python3
"""Writes a small task folder from Fashion-MNIST (Debian's dataset-fashion-mnist):
one subfolder per class, 28x28 grey images as 24-bit BMP files.
Standard library only, so that any test machine can run it.

usage: fashion_task.py OUT_DIR PER_CLASS CLASS[,CLASS...] [IMAGES_GZ LABELS_GZ]
"""
import gzip
import os
import struct
import sys

NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat",
         "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
DEFAULT = "/usr/share/datasets/fashion-mnist/t10k-%s-idx%d-ubyte.gz"


def write_bmp(path, pixels, side=28):
    row = side * 3
    pad = (4 - row % 4) % 4
    data_size = (row + pad) * side
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", 54 + data_size, 0, 0, 54))
        f.write(struct.pack("<IiiHHIIiiII", 40, side, side, 1, 24, 0, data_size, 2835, 2835, 0, 0))
        for y in range(side - 1, -1, -1):  # BMP rows run bottom-up
            f.write(bytes(v for x in range(side) for v in (pixels[y * side + x],) * 3))
            f.write(b"\0" * pad)


def main():
    out, per_class, classes = sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3].split(",")]
    images_gz = sys.argv[4] if len(sys.argv) > 4 else DEFAULT % ("images", 3)
    labels_gz = sys.argv[5] if len(sys.argv) > 5 else DEFAULT % ("labels", 1)
    images = gzip.open(images_gz).read()[16:]
    labels = gzip.open(labels_gz).read()[8:]
    taken = {c: 0 for c in classes}
    for i, label in enumerate(labels):
        if label in taken and taken[label] < per_class:
            folder = os.path.join(out, NAMES[label])
            os.makedirs(folder, exist_ok=True)
            write_bmp(os.path.join(folder, "%05d.bmp" % i), images[i * 784:(i + 1) * 784])
            taken[label] += 1


if __name__ == "__main__":
    main()
