"""Sampling throughput: gaussdiff (per-sample core path and batched faer path) vs the same samplers written
in NumPy, batched, for a d = 784, k = 64 Gaussian fitted on MNIST; in the same script. Noise is drawn
before timing on both sides. Reports samples per second (the best of the repeats).

    cargo build --release -p gaussdiff-tools && python3 bench/bench_sample.py
"""
import os
import tempfile
import time

import numpy as np

from common import MNIST, mnist_model_space, run

K = 64
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
    x = mnist_model_space()
    mu = x.mean(0).astype(np.float32)
    lam, u = np.linalg.eigh(np.cov(x, rowvar=False))
    lam = lam[::-1][:K].astype(np.float32)
    u = np.ascontiguousarray(u[:, ::-1][:, :K]).astype(np.float32)
    g = NumpyGaussian(mu, u, lam)
    sigmas = edm_sigmas(STEPS)
    rng = np.random.default_rng(0)
    noise_exact = [(80.0 * rng.standard_normal((BATCH, 784))).astype(np.float32) for _ in range(16)]
    noise_heun = noise_exact[:4]
    np_exact = best_rate(lambda b: g.exact(b, 80.0), noise_exact)
    np_heun = best_rate(lambda b: g.heun(b, sigmas), noise_heun)

    with tempfile.TemporaryDirectory() as tmp:
        blob = os.path.join(tmp, "mnist64.gdn")
        run(["export", "--dataset", MNIST, "--rank", str(K), "--dtype", "f32", "-o", blob])
        ours = run(["bench-sample", blob, "--n", "4096", "--n-core", "512", "--batch", str(BATCH),
                    "--steps", str(STEPS), "--repeat", str(REPEAT)])
    print(f"d=784 k={K}, Heun-{STEPS} ({2 * STEPS - 1} evaluations), batch {BATCH}, numpy {np.__version__}")
    print(f"{'sampler':<10} {'numpy batched':>14} {'gaussdiff batched':>18} {'ratio':>6} {'gaussdiff core/sample':>22}")
    for name, npr, key in [("exact", np_exact, "exact"), ("heun-18", np_heun, "heun")]:
        b = float(ours[f"batch_{key}_per_s"])
        c = float(ours[f"core_{key}_per_s"])
        print(f"{name:<10} {npr:>12.0f}/s {b:>16.0f}/s {b / npr:>6.2f} {c:>20.0f}/s")
    print("targets: heun-18 batched >= 3x numpy; exact batched >= numpy")


if __name__ == "__main__":
    main()
