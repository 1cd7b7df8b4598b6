"""Fit benchmark over four data shapes: gaussdiff's fit (it picks its method by the shape and the rank) against
NumPy's best method for each shape, both run as child processes of this script on the same data and threads,
with wall time (minimum over repeats, data loading excluded) and peak RSS (whole process, loading included).

| shape | data | gaussdiff | NumPy methods tried (the fastest is the baseline) |
|---|---|---|---|
| N < d | Olivetti 64x64, N = 400, d = 4,096, rank 40 | Gram path | thin SVD of the centred data; scikit-learn randomized PCA |
| N < d | ORL 92x112, N = 400, d = 10,304, default 0.99 variance and rank 64 | Gram path | thin SVD; randomized PCA (rank 64) |
| N > d | MNIST test, N = 10,000, d = 784, full and rank 64 | covariance path | np.cov + eigh; randomized PCA (rank 64) |
| N, d large | synthetic low rank (64) plus noise, N = 50,000, d = 3,072, rank 64 | randomized path | np.cov + eigh; randomized PCA |

    cargo build --release -p gaussdiff-tools && python3 bench/bench_fit.py [--threads N] [--repeat R] [--quick]

ORL is read from ../shared/datasets/orl_faces/att_faces (set ORL_DIR to move it); the script converts it and the
synthetic set to temporary IDX files so that both sides read identical bytes. scikit-learn is optional.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

from common import ROOT, binary, describe_run, warn_if_busy

import numpy as np  # noqa: E402  (common sets the thread variables first)

OLIVETTI = os.path.join(ROOT, "data", "olivetti", "olivetti-images-idx3-ubyte.gz")
MNIST = os.path.join(ROOT, "data", "mnist", "t10k-images-idx3-ubyte.gz")
ORL_DIR = os.environ.get("ORL_DIR", os.path.join(ROOT, "..", "shared", "datasets", "orl_faces", "att_faces"))

# The NumPy side, run in a child process per method so that its peak RSS is its own.
CHILD = textwrap.dedent(
    """
    import gzip, json, sys, time
    import numpy as np
    path, method, k, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    raw = (gzip.open if path.endswith('.gz') else open)(path, 'rb').read()
    n, h, w = (int.from_bytes(raw[i:i + 4], 'big') for i in (4, 8, 12))
    x = (np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, h * w).astype(np.float32) - 127.5) / 127.5
    del raw
    def fit():
        if method == 'cov_eigh':
            lam, u = np.linalg.eigh(np.cov(x, rowvar=False))
            return lam[::-1]
        if method == 'thin_svd':
            s = np.linalg.svd(x - x.mean(axis=0), full_matrices=False, compute_uv=True)[1]
            return s * s / (n - 1)
        if method == 'randomized_pca':
            from sklearn.decomposition import PCA
            return PCA(n_components=k, svd_solver='randomized', random_state=0).fit(x).explained_variance_
        raise SystemExit('unknown method ' + method)
    best = float('inf')
    for _ in range(repeat):
        t = time.perf_counter(); fit(); best = min(best, time.perf_counter() - t)
    print(json.dumps({'fit_s': best}))
    """
)


# Peak RSS of a command on its own: Linux carries a process's RSS high-water mark over fork + exec, so a child
# forked from this script (which holds the synthetic data) would report this script's RSS. Each side is
# therefore started by a small fresh Python that forks the measured command and reads its rusage (wait4).
WRAPPER = (
    "import os, sys, json\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[1], sys.argv[1:])\n"
    "_, status, ru = os.wait4(pid, 0)\n"
    "sys.stderr.write(json.dumps({'rss_mb': ru.ru_maxrss / 1024, 'status': status}) + '\\n')\n"
)


def measured(cmd):
    """Run `cmd` under WRAPPER: (stdout, peak RSS in MB); exits on failure."""
    p = subprocess.run([sys.executable, "-c", WRAPPER] + cmd, cwd=ROOT, capture_output=True, text=True)
    info = json.loads(p.stderr.strip().splitlines()[-1])
    if info["status"] != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    return p.stdout, info["rss_mb"]


def numpy_side(path, method, k, repeat):
    """One NumPy method in its own process: best time of `repeat` runs (loading excluded), peak RSS."""
    out, rss = measured([sys.executable, "-c", CHILD, path, method, str(k), str(repeat)])
    r = json.loads(out.strip().splitlines()[-1])
    r["rss_mb"] = rss
    return r


def gaussdiff_side(path, rank, variance, repeat):
    """`gaussdiff bench-fit` in its own process: best fit time of `repeat` runs (loading excluded), peak RSS."""
    args = [binary(), "bench-fit", "--dataset", path, "--repeat", str(repeat)]
    args += ["--rank", str(rank)] if rank else ["--variance", str(variance)]
    out, rss = measured(args)
    vals = dict(tok.split("=", 1) for line in out.splitlines() for tok in line.split() if "=" in tok)
    return {
        "load_s": float(vals["load_s"]),
        "fit_s": float(vals["fit_s"]),
        "rss_mb": rss,
        "method": vals["method"],
        "k": int(vals["k"]),
    }


def write_idx(path, imgs):
    n, h, w = imgs.shape
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(v.to_bytes(4, "big") for v in (n, h, w)))
        f.write(np.ascontiguousarray(imgs, dtype=np.uint8).tobytes())


def orl_idx(tmp):
    """ORL's 400 PGMs (s1..s40, 1..10) as one IDX file (92 wide, 112 high)."""
    imgs = []
    for s in range(1, 41):
        for i in range(1, 11):
            raw = open(os.path.join(ORL_DIR, f"s{s}", f"{i}.pgm"), "rb").read()
            imgs.append(np.frombuffer(raw[-92 * 112:], dtype=np.uint8).reshape(112, 92))
    path = os.path.join(tmp, "orl-idx3-ubyte")
    write_idx(path, np.stack(imgs))
    return path


def synthetic_idx(tmp, n, d=3072, rank=64, seed=0):
    """Low rank plus noise as 8-bit images (48 x 64): 64 orthonormal directions with variances decaying from 8
    to 0.4 (in model space; about 0.3 standard deviation per pixel), isotropic noise of standard deviation 0.02,
    rounded to 8-bit levels and clipped to [0, 255]."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, rank)))[0].T.astype(np.float32)  # rank x d, orthonormal rows
    scale = np.sqrt(np.linspace(8.0, 0.4, rank)).astype(np.float32)
    out = np.empty((n, d), dtype=np.uint8)
    for a in range(0, n, 5000):
        m = min(5000, n - a)
        z = rng.standard_normal((m, rank), dtype=np.float32) * scale
        x = z @ basis + 0.02 * rng.standard_normal((m, d), dtype=np.float32)
        out[a:a + m] = np.clip(np.rint(127.5 + 127.5 * x), 0, 255).astype(np.uint8)
    path = os.path.join(tmp, "synthetic-idx3-ubyte")
    write_idx(path, out.reshape(n, 48, 64))
    return path


def have_sklearn():
    return subprocess.run([sys.executable, "-c", "import sklearn"], capture_output=True).returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, help="threads for both NumPy's BLAS and gaussdiff (default: all cores)")
    ap.add_argument("--quick", action="store_true", help="one repeat, synthetic N = 10,000 (a smoke run)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=7,
        help="fits per side and shape, the best one timed (default 7; the synthetic shape, whose fits take "
        "seconds, at most 3). The first fit of a process is a cold one (page faults, thread start-up), so "
        "fewer than 3 leaves one or two warm fits to take the minimum of on a noisy machine",
    )
    ap.add_argument("--only", help="run only the shapes whose name contains this (case-insensitive), e.g. synthetic")
    args = ap.parse_args()
    repeat = 1 if args.quick else max(1, args.repeat)
    print(describe_run())
    warn_if_busy()
    sk = have_sklearn()
    if not sk:
        print("scikit-learn not installed: randomized PCA left out (pip install scikit-learn)")
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("Olivetti 64x64", lambda: OLIVETTI, 40, None, ["thin_svd", "randomized_pca"]),
            ("ORL 92x112", lambda: orl_idx(tmp), None, 0.99, ["thin_svd"]),
            ("ORL 92x112", None, 64, None, ["thin_svd", "randomized_pca"]),
            ("MNIST test", lambda: MNIST, None, 1.0, ["cov_eigh"]),
            ("MNIST test", None, 64, None, ["cov_eigh", "randomized_pca"]),
            ("synthetic", lambda: synthetic_idx(tmp, 10_000 if args.quick else 50_000), 64, None, ["cov_eigh", "randomized_pca"]),
        ]
        if args.only:
            cases = [c for c in cases if args.only.lower() in c[0].lower()]
        rows = []
        last_path = None
        for name, make, rank, variance, methods in cases:
            # A case without its own data (None) reuses the previous case's (same shape, other setting).
            path = make() if make else last_path
            last_path = path
            reps = min(repeat, 3) if name == "synthetic" else repeat
            ours = gaussdiff_side(path, rank, variance, reps)
            theirs = {}
            for m in methods:
                if m == "randomized_pca" and not sk:
                    continue
                theirs[m] = numpy_side(path, m, rank or 1, reps)
            best_m = min(theirs, key=lambda m: theirs[m]["fit_s"])
            best = theirs[best_m]
            setting = f"rank {rank}" if rank else (f"variance {variance}" if variance < 1 else "full")
            rows.append((name, setting, ours, best_m, best, theirs))
            print(
                f"{name:15s} {setting:13s} gaussdiff load {ours['load_s']:.3f} s + fit {ours['fit_s']:.3f} s"
                f" = {ours['load_s'] + ours['fit_s']:.3f} s, {ours['rss_mb']:7.0f} MB ({ours['method']}, k={ours['k']})"
                f" | numpy best {best_m} {best['fit_s']:8.3f} s {best['rss_mb']:7.0f} MB"
                f" | time ratio {ours['fit_s'] / best['fit_s']:.3f}, RSS ratio {ours['rss_mb'] / best['rss_mb']:.2f}",
                flush=True,
            )
        print()
        print(f"Times: the fit alone (best of {repeat} fits per side, {min(repeat, 3)} for the synthetic shape; loading")
        print("excluded; the ratio compares these). gaussdiff's")
        print("loading is shown beside it, and the two add up to the load + fit column.")
        print()
        print("| data | setting | gaussdiff method | gaussdiff load | gaussdiff fit | load + fit | gaussdiff RSS | NumPy best | NumPy fit | NumPy RSS | fit time ratio | RSS ratio |")
        print("|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|")
        for name, setting, ours, best_m, best, theirs in rows:
            print(
                f"| {name} | {setting} | {ours['method'].replace('_', ' ')} | {ours['load_s']:.3f} s | {ours['fit_s']:.3f} s "
                f"| {ours['load_s'] + ours['fit_s']:.3f} s | {ours['rss_mb']:.0f} MB "
                f"| {best_m} | {best['fit_s']:.3f} s | {best['rss_mb']:.0f} MB | {ours['fit_s'] / best['fit_s']:.3f} "
                f"| {ours['rss_mb'] / best['rss_mb']:.2f} |"
            )
        others = [(n, s, m, r) for n, s, _, _, _, t in rows for m, r in t.items()]
        print()
        print("all NumPy methods: " + "; ".join(f"{n} {s} {m} {r['fit_s']:.3f} s {r['rss_mb']:.0f} MB" for n, s, m, r in others))


if __name__ == "__main__":
    main()
