#!/usr/bin/env python3
"""Independent implementation of gaussdiff's seed -> noise path, written from docs/noise.md only.

Prints, for samples i = 0 .. n-1 of a run seeded S, the initial state x_T = sigma_max * z (d values) as
8-hex-digit f32 bit patterns, one sample per line. `tests/tests/noise_python.rs` compares them with the
Rust core bit for bit.

    python3 tests/python/noise_reference.py --seed 0 --n 4 --d 64
"""
import argparse
import math

import numpy as np

from libm_f32 import expf, logf

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
F = np.float32


def splitmix64(state):
    """One SplitMix64 step: (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def rotl32(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


class Rng:
    """xoshiro128++ seeded from two SplitMix64 outputs (docs/noise.md section 1)."""

    def __init__(self, seed):
        st, a = splitmix64(seed & M64)
        st, b = splitmix64(st)
        self.s = [a & M32, a >> 32, b & M32, b >> 32]
        if self.s == [0, 0, 0, 0]:
            self.s = [1, 0, 0, 0]

    def next_u32(self):
        s = self.s
        result = (rotl32((s[0] + s[3]) & M32, 7) + s[0]) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl32(s[3], 11)
        return result

    def uniform(self):
        return F(self.next_u32() >> 8) * F(1.0 / 16777216.0)  # [0, 1), exact

    def uniform_open(self):
        return F((self.next_u32() >> 8) + 1) * F(1.0 / 16777216.0)  # (0, 1], exact

    def normal(self):
        """One normal by the 128-layer ziggurat (docs/noise.md section 2)."""
        while True:
            u = self.next_u32()
            i, neg, m = u & 127, (u >> 7) & 1, u >> 8
            x = F(F(m) * W[i])
            if m < K[i]:
                return -x if neg else x
            if i == 0:
                while True:
                    # libm's logf (tests/python/libm_f32.py), not log rounded from f64.
                    a = F(-logf(self.uniform_open()) * RINV)
                    b = -logf(self.uniform_open())
                    if F(b + b) >= F(a * a):
                        z = F(R32 + a)
                        return -z if neg else z
            v = F(F(self.next_u32() >> 8) * F(1.0 / 16777216.0))
            lhs = F(FT[i] + F(v * F(FT[i - 1] - FT[i])))
            if lhs < expf(F(F(F(-0.5) * x) * x)):
                return -x if neg else x

    def fill_normal(self, d):
        return [self.normal() for _ in range(d)]


def _tables():
    """The ziggurat tables from the f64 recipe of docs/noise.md, rounded once."""
    r, v, scale = 3.442619855899, 9.91256303526217e-3, 16777216.0
    x = [0.0] * 128
    x[127] = r
    for i in range(126, 0, -1):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i + 1] + math.exp(-0.5 * x[i + 1] * x[i + 1])))
    q = v / math.exp(-0.5 * r * r)
    k = [int(math.floor(r / q * scale)), 0] + [int(math.floor(x[i - 1] / x[i] * scale)) for i in range(2, 128)]
    w = [F(q / scale)] + [F(x[i] / scale) for i in range(1, 128)]
    f = [F(1.0)] + [F(math.exp(-0.5 * x[i] * x[i])) for i in range(1, 128)]
    return k, w, f, F(r), F(1.0 / r)


K, W, FT, R32, RINV = _tables()


def initial_noise(seed, i, d, sigma_max=F(80.0)):
    z = Rng((seed + i) & M64).fill_normal(d)
    return [F(v * sigma_max) for v in z]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--d", type=int, default=64)
    a = p.parse_args()
    with np.errstate(all="ignore"):
        for i in range(a.n):
            x = np.array(initial_noise(a.seed, i, a.d), dtype=np.float32)
            print(" ".join(f"{v:08x}" for v in x.view(np.uint32)))


if __name__ == "__main__":
    main()
