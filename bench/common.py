"""Shared helpers for the benchmark scripts: locate the gaussdiff binary, load MNIST like the Rust reader."""
import gzip
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST = os.path.join(ROOT, "data", "mnist", "t10k-images-idx3-ubyte.gz")


def binary():
    """The release binary: $GAUSSDIFF, else $CARGO_TARGET_DIR/release/gaussdiff, else target/release/gaussdiff."""
    if os.environ.get("GAUSSDIFF"):
        return os.environ["GAUSSDIFF"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    path = os.path.join(target, "release", "gaussdiff")
    if not os.path.exists(path):
        sys.exit(f"{path} not found: run `cargo build --release -p gaussdiff-tools` first (or set GAUSSDIFF)")
    return path


def run(args):
    """Run gaussdiff and parse its key=value output."""
    out = subprocess.run([binary()] + args, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    vals = {}
    for line in out.split("\n"):
        for tok in line.split():
            if "=" in tok:
                k, v = tok.split("=", 1)
                vals[k] = v
    return vals


def mnist_model_space():
    """The MNIST test set as float32 in [-1, 1] ((p - 127.5) / 127.5), n x 784, like gaussdiff's reader."""
    raw = gzip.open(MNIST).read()
    n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, h * w)
    return ((x.astype(np.float32) - 127.5) / 127.5).astype(np.float32)
