"""Fit benchmark: gaussdiff's streaming f64 moments + faer eigh vs NumPy's np.cov + np.linalg.eigh, both on
the MNIST test set (10,000 x 784) in [-1, 1], in the same script. Reports the minimum over repeats. Also
times gaussdiff's fit for a rank-64 export (`--rank 64 --floor auto`: top 64 eigenpairs by the partial
solver) against the same NumPy time, the full decomposition a NumPy user would run for that export.

    cargo build --release -p gaussdiff-tools && python3 bench/bench_fit.py [--threads N]
"""
import argparse
import time

import numpy as np

from common import describe_run, mnist_model_space, run

REPEAT = 5


def numpy_fit(x):
    c = np.cov(x, rowvar=False)
    lam, u = np.linalg.eigh(c)
    return lam[::-1], u[:, ::-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, help="threads for both NumPy's BLAS and gaussdiff (default: all cores)")
    ap.parse_args()
    x = mnist_model_space()
    best = best_cov = best_eigh = float("inf")
    for _ in range(REPEAT):
        t = time.perf_counter()
        numpy_fit(x)
        best = min(best, time.perf_counter() - t)
    for _ in range(REPEAT):
        t = time.perf_counter()
        c = np.cov(x, rowvar=False)
        t1 = time.perf_counter()
        np.linalg.eigh(c)
        best_cov = min(best_cov, t1 - t)
        best_eigh = min(best_eigh, time.perf_counter() - t1)
    ours = run(["bench-fit", "--repeat", str(REPEAT)])
    print(describe_run())
    fit_s = float(ours["fit_s"])
    print(f"data: MNIST test set, n={x.shape[0]} d={x.shape[1]}")
    print(f"numpy {np.__version__} np.cov + np.linalg.eigh: {best:.3f} s (cov {best_cov:.3f} s + eigh {best_eigh:.3f} s)")
    print(f"gaussdiff fit (moments {float(ours['moments_s']):.3f} s + eigh {float(ours['eigh_s']):.3f} s): {fit_s:.3f} s")
    print(f"ratio gaussdiff / numpy: {fit_s / best:.2f} (target <= 0.5)")
    if "fit_rank64_s" in ours:  # binaries before the partial solver do not report it
        fit64_s = float(ours["fit_rank64_s"])
        print(f"gaussdiff fit for a rank-64 export (top 64 eigenpairs, partial solver): {fit64_s:.3f} s")
        print(f"ratio gaussdiff rank-64 / numpy full: {fit64_s / best:.2f}")


if __name__ == "__main__":
    main()
