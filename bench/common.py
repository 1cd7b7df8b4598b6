"""Shared helpers for the benchmark scripts: locate the gaussdiff binary, load MNIST like the Rust reader, and
give both sides the same thread count.

`--threads N` (before NumPy is imported) sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS for
NumPy and RAYON_NUM_THREADS for gaussdiff; without it both use every core.
"""
import gzip
import os
import subprocess
import sys


def _threads_from_argv():
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return None


THREADS = _threads_from_argv()
if THREADS is not None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[var] = str(THREADS)

import numpy as np  # noqa: E402  (after the thread variables)

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


def describe_run():
    """One line: threads, BLAS thread settings seen by NumPy, load average (other work on the machine)."""
    blas = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "RAYON_"))}
    threads = THREADS if THREADS is not None else f"all ({os.cpu_count()} cores)"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"threads: {threads}; env {blas or '{}'}; load average {load}"


def busy_processes(interval=0.5, threshold=10.0):
    """Other processes using at least `threshold` % of a core over `interval` seconds (Linux /proc):
    [(percent, pid, name)], busiest first; [] where /proc is not readable."""
    import time

    def ticks():
        out = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                stat = open(f"/proc/{pid}/stat").read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            out[pid] = (name, int(fields[11]) + int(fields[12]))  # utime + stime
        return out

    try:
        a = ticks()
        time.sleep(interval)
        b = ticks()
    except OSError:
        return []
    hz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (name, t) in b.items():
        if pid in a:
            pct = 100.0 * (t - a[pid][1]) / hz / interval
            if pct >= threshold:
                busy.append((pct, int(pid), name))
    return sorted(busy, reverse=True)


def warn_if_busy():
    """Before timing: a WARNING line when the 1-minute load average is above 0.5 per core or other processes
    are using the CPU (each named with its share), since then the times measure the contention too."""
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    busy = busy_processes()
    if load > 0.5 * cores or busy:
        others = ", ".join(f"{name} (pid {pid}) {pct:.0f} %" for pct, pid, name in busy[:5]) or "none right now"
        print(
            f"WARNING: machine busy before timing: load average {load:.2f} on {cores} cores; other processes on the "
            f"CPU: {others}. Times are noisy; compare only the same-run ratios, or rerun when idle."
        )
        return True
    return False
