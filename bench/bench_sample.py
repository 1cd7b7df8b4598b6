"""Sampling throughput: gaussdiff (per-sample core path and batched faer path) vs the same samplers written
in NumPy, batched, for a d = 784, k = 64 Gaussian fitted on MNIST; in the same script. Noise is drawn
before timing on both sides. Reports samples per second (the best of the repeats).

The eigenvectors of MNIST's zero-variance border pixels have round-off components down to f32 subnormals,
whose products stall the CPU (microcode assists). gaussdiff's batched path sets components below 1e-20 to 0
(`tools/src/batch.rs`, `TINY`); the script times NumPy both on the eigenvectors as they come and with the
same flush, and prints both ratios.

    cargo build --release -p gaussdiff-tools && python3 bench/bench_sample.py [--threads N]
"""
import argparse
import os
import tempfile
import time

import numpy as np

from common import MNIST, THREADS, describe_run, mnist_model_space, run, warn_if_busy

K = 64
TINY = 1e-20
STEPS = 18
BATCH = 1024
REPEAT = 3


def edm_sigmas(steps, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    i = np.arange(steps, dtype=np.float64)
    s = (sigma_max ** (1 / rho) + i / (steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return np.append(s, 0.0).astype(np.float32)


class NumpyGaussian:
    def __init__(self, mu, u, lam, floor=0.0):
        self.mu, self.u, self.lam, self.c = mu, u, lam, np.float32(floor)

    def affine(self, x, s, f):
        y = x - self.mu
        return self.mu + f * y + ((y @ self.u) * (s - f)) @ self.u.T

    def denoise(self, x, sigma):
        s2 = np.float32(sigma) ** 2
        return self.affine(x, self.lam / (self.lam + s2), self.c / (self.c + s2) if self.c > 0 else np.float32(0))

    def exact(self, x, sigma_t):
        t2 = np.float32(sigma_t) ** 2
        h = np.sqrt(self.lam / (self.lam + t2))
        hc = np.sqrt(self.c / (self.c + t2)) if self.c > 0 else np.float32(0)
        return self.affine(x, h, hc)

    def heun(self, x, sigmas):
        for sc, sn in zip(sigmas[:-1], sigmas[1:]):
            den = self.denoise(x, sc)
            if sn == 0:
                x = den
                continue
            d_cur = (x - den) / sc
            x_next = x + (sn - sc) * d_cur
            d_prime = (x_next - self.denoise(x_next, sn)) / sn
            x = x + (sn - sc) * (0.5 * d_cur + 0.5 * d_prime)
        return x


def best_rate(fn, batches):
    best = float("inf")
    for _ in range(REPEAT):
        t = time.perf_counter()
        for b in batches:
            fn(b)
        best = min(best, time.perf_counter() - t)
    return sum(len(b) for b in batches) / best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, help="threads for both NumPy's BLAS and gaussdiff (default: all cores)")
    ap.parse_args()
    x = mnist_model_space()
    mu = x.mean(0).astype(np.float32)
    lam, u = np.linalg.eigh(np.cov(x, rowvar=False))
    lam = lam[::-1][:K].astype(np.float32)
    u = np.ascontiguousarray(u[:, ::-1][:, :K]).astype(np.float32)
    u_flushed = np.where(np.abs(u) < TINY, np.float32(0), u)
    sigmas = edm_sigmas(STEPS)
    rng = np.random.default_rng(0)
    noise_exact = [(80.0 * rng.standard_normal((BATCH, 784))).astype(np.float32) for _ in range(16)]
    noise_heun = noise_exact[:4]
    numpy_rates = {}
    for label, uu in [("as is", u), ("flushed", u_flushed)]:
        g = NumpyGaussian(mu, uu, lam)
        numpy_rates[label] = (best_rate(lambda b: g.exact(b, 80.0), noise_exact),
                              best_rate(lambda b: g.heun(b, sigmas), noise_heun))

    with tempfile.TemporaryDirectory() as tmp:
        blob = os.path.join(tmp, "mnist64.gdn")
        run(["export", "--dataset", MNIST, "--rank", str(K), "--dtype", "f32", "-o", blob])
        ours = run(["bench-sample", blob, "--n", "4096", "--n-core", "512", "--batch", str(BATCH),
                    "--steps", str(STEPS), "--repeat", str(REPEAT), "--threads", str(THREADS or 0)])
    print(describe_run())
    warn_if_busy()
    print(f"d=784 k={K}, Heun-{STEPS} ({2 * STEPS - 1} evaluations), batch {BATCH}, numpy {np.__version__}")
    print(f"{'sampler':<10} {'numpy as is':>12} {'numpy flushed':>14} {'gaussdiff':>11} {'ratio':>6} "
          f"{'ratio (flushed)':>15} {'gaussdiff core/sample':>22}")
    for i, (name, key) in enumerate([("exact", "exact"), ("heun-18", "heun")]):
        b = float(ours[f"batch_{key}_per_s"])
        c = float(ours[f"core_{key}_per_s"])
        a, f = numpy_rates["as is"][i], numpy_rates["flushed"][i]
        print(f"{name:<10} {a:>10.0f}/s {f:>12.0f}/s {b:>9.0f}/s {b / a:>6.2f} {b / f:>15.2f} {c:>20.0f}/s")
    print("targets: heun-18 batched >= 3x numpy; exact batched >= numpy")


if __name__ == "__main__":
    main()
