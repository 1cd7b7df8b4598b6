#!/usr/bin/env python3
"""Independent implementation of `gaussdiff sample`, written from docs/blob-format.md (the blob),
docs/noise.md (the initial noise) and docs/sampling.md (schedule, samplers, denoisers, pixels) only.

It reads a blob, draws samples i = 0 .. n-1 of a run seeded S with the exact, Euler or Heun sampler, and
prints each sample's d values as 8-hex-digit f32 bit patterns (one sample per line, `--bits`), and/or
compares its 8-bit pixels with the per-sample PNGs `gaussdiff sample --raw DIR` wrote (`--compare DIR`;
exit status 1 on any difference). `tools/tests/sample_python.rs` runs both checks against the CLI.

    gaussdiff sample blob.gdn --n 4 --seed 7 --sampler heun --steps 18 --raw out/raw -o out/grid.png
    python3 tests/python/sample_reference.py blob.gdn --n 4 --seed 7 --sampler heun --steps 18 --compare out/raw

Every f32 operation is an explicit NumPy float32 operation (scalar or element-wise, rounded to nearest even
each time; no fused multiply-add); reductions are written out in the documented order.
"""
import argparse
import os
import shlex
import struct
import sys
import zlib

import numpy as np

from libm_f32 import F, expf, logf, powf
from noise_reference import Rng, initial_noise

SIGMA_MIN, SIGMA_MAX, RHO = F(0.002), F(80.0), F(7.0)
PICK_STREAM = 0x6D69787069636B21  # ASCII "mixpick!"
MIN_POSITIVE = np.finfo(np.float32).tiny  # smallest normal f32, 2^-126

# ---------------------------------------------------------------------------------------------------------
# The blob (docs/blob-format.md)


class Tensor:
    """A stored rows x cols tensor: f32 / f16 values widened exactly, or int8 values q with row scales."""

    def __init__(self, dtype, rows, cols, raw):
        self.dtype, self.rows, self.cols, self.raw = dtype, rows, cols, raw
        n = rows * cols
        if dtype == 0:
            self.v = np.frombuffer(raw, "<f4", n).astype(np.float32).reshape(rows, cols)
        elif dtype == 1:
            self.v = np.frombuffer(raw, "<f2", n).astype(np.float32).reshape(rows, cols)
        elif dtype == 2:
            self.q = np.frombuffer(raw, np.int8, n).astype(np.float32).reshape(rows, cols)
            self.scale = np.frombuffer(raw, "<f4", rows, n).astype(np.float32)
        else:
            raise ValueError(f"unknown element type {dtype}")

    def block(self, j, blocks):
        """Block j of a tensor stored in `blocks` row blocks (kind 4), each laid out like a tensor."""
        size = len(self.raw) // blocks
        return Tensor(self.dtype, self.rows // blocks, self.cols, self.raw[j * size : (j + 1) * size])

    def get(self, r, c):
        if self.dtype == 2:
            return F(self.q[r, c] * self.scale[r])
        return self.v[r, c]

    def row(self, r):
        """Row r decoded (int8: q * scale per element)."""
        return self.q[r] * self.scale[r] if self.dtype == 2 else self.v[r]

    def rows_dot(self, first, count, x):
        """out[i] = row (first + i) . x in the dot4 order; int8: the dot of q, then times the row's scale."""
        rows = slice(first, first + count)
        if self.dtype == 2:
            return dot4_rows(self.q[rows], x) * self.scale[rows]
        return dot4_rows(self.v[rows], x)

    def row_axpy(self, r, alpha, y):
        """y += alpha * row r, element-wise; int8: y += (alpha * scale_r) * q."""
        alpha = F(alpha)
        if self.dtype == 2:
            y += F(alpha * self.scale[r]) * self.q[r]
        else:
            y += alpha * self.v[r]


def dot4_rows(w, x):
    """For every row of w: four lane sums over c = 4m + j, the tail in lanes 0, 1, 2, then (s0+s1)+(s2+s3)."""
    n = x.size
    main = n - n % 4
    s = np.zeros((w.shape[0], 4), np.float32)
    for m in range(0, main, 4):
        s += w[:, m : m + 4] * x[m : m + 4]
    for j, c in enumerate(range(main, n)):
        s[:, j] += w[:, c] * x[c]
    return (s[:, 0] + s[:, 1]) + (s[:, 2] + s[:, 3])


def dot4(a, b):
    return dot4_rows(b.reshape(1, -1), a)[0]


def parse_blob(data):
    """Header, section table and tensors of a v1 blob, both CRCs checked (docs/blob-format.md)."""
    if len(data) < 64 or data[:4] != b"GDN1":
        raise ValueError("not a GDN1 blob")
    version, header_size, c, h, w, kind = struct.unpack_from("<HHHHHB", data, 4)
    scale, offset, d, k, l_or_k, floor = struct.unpack_from("<ffIIIf", data, 16)
    n_sections, _, _, total_len, payload_crc, header_crc = struct.unpack_from("<IIIIII", data, 40)
    if version != 1 or header_size != 64 or total_len != len(data):
        raise ValueError("unsupported version, header size or length")
    if zlib.crc32(data[:60]) != header_crc or zlib.crc32(data[64:]) != payload_crc:
        raise ValueError("checksum mismatch")
    sections = {}
    for i in range(n_sections):
        sid, dtype, _, rows, cols, off, length = struct.unpack_from("<BBHIIII", data, 64 + 20 * i)
        sections[sid] = Tensor(dtype, rows, cols, data[off : off + length])
    return {
        "shape": (c, h, w),
        "kind": kind,
        "scale": F(scale),
        "offset": F(offset),
        "d": d,
        "k": k,
        "L": l_or_k,
        "floor": F(floor),
        "s": sections,
    }


# ---------------------------------------------------------------------------------------------------------
# Denoisers (docs/sampling.md section 4)


def shrink(num, den):
    """num / den, 0 when den is not > 0."""
    return F(num / den) if den > 0 else F(0.0)


def flow_factor(num, den):
    """sqrt(num / den); 0/0 -> 1, x/0 -> 0."""
    if den > 0:
        return np.sqrt(F(num / den))
    return F(1.0) if num == 0 else F(0.0)


class Gaussian:
    def __init__(self, mu, u_t, lam, floor):
        self.mu, self.u_t, self.lam, self.floor = mu, u_t, lam, F(floor)
        self.d, self.k = mu.cols, u_t.rows

    def project(self, x):
        diff = x.copy()
        self.mu.row_axpy(0, F(-1.0), diff)
        return diff, self.u_t.rows_dot(0, self.k, diff)

    def finish(self, h_c, h, out, coef):
        """out (= x - mu on entry) -> mu + h_c (x - mu) + sum_i coef_i (h_i - h_c) u_i."""
        if self.k == self.d:
            h_c = F(0.0)
        coef = coef * np.array([F(hi - h_c) for hi in h], np.float32)
        out *= h_c
        self.mu.row_axpy(0, F(1.0), out)
        for i in range(self.k):
            self.u_t.row_axpy(i, coef[i], out)
        return out

    def denoise_projected(self, sigma, out, coef):
        s2 = F(sigma * sigma)
        return self.finish(
            shrink(self.floor, F(self.floor + s2)), [shrink(lv, F(lv + s2)) for lv in self.lam], out, coef
        )

    def denoise(self, x, sigma):
        diff, coef = self.project(x)
        return self.denoise_projected(sigma, diff, coef)

    def exact_flow(self, x_t, sigma_t, sigma):
        s2, st2 = F(sigma * sigma), F(sigma_t * sigma_t)
        h_c = flow_factor(F(self.floor + s2), F(self.floor + st2))
        h = [flow_factor(F(lv + s2), F(lv + st2)) for lv in self.lam]
        diff, coef = self.project(x_t)
        return self.finish(h_c, h, diff, coef)


class Mixture:
    def __init__(self, s, d, kk):
        self.w = s[9].v[0]
        self.floors = s[10].v[0]
        self.comp = [
            Gaussian(s[1].block(j, kk), s[2].block(j, kk), s[3].v[j], self.floors[j]) for j in range(kk)
        ]
        self.d, self.r = d, s[2].rows // kk

    def pick(self, u):
        total = F(0.0)
        for wj in self.w:
            total = F(total + wj)
        target, cum, last = F(u * total), F(0.0), 0
        for j, wj in enumerate(self.w):
            if wj > 0:
                cum = F(cum + wj)
                last = j
                if target < cum:
                    return j
        return last

    def denoise(self, x, sigma):
        s2 = F(sigma * sigma)

        def var(v):
            v = F(v + s2)
            return v if v > MIN_POSITIVE else MIN_POSITIVE

        scores, proj = [], []
        best = F(-np.inf)
        for j, g in enumerate(self.comp):
            diff, a = g.project(x)
            proj.append(a)
            n2 = dot4(diff, diff)
            quad, logdet, a2 = F(0.0), F(0.0), F(0.0)
            for i in range(self.r):
                v = var(g.lam[i])
                sq = F(a[i] * a[i])
                a2 = F(a2 + sq)
                quad = F(quad + F(sq / v))
                logdet = F(logdet + logf(v))
            if self.r < self.d:
                v = var(self.floors[j])
                rho = F(n2 - a2)
                rho = rho if rho > 0 else F(0.0)
                quad = F(quad + F(rho / v))
                logdet = F(logdet + F(F(self.d - self.r) * logf(v)))
            sj = F(logf(self.w[j]) - F(F(0.5) * F(quad + logdet)))
            scores.append(sj)
            if sj > best:
                best = sj
        if best > F(-np.inf):
            wts = [expf(F(sj - best)) for sj in scores]
            total = F(0.0)
            for wj in wts:
                total = F(total + wj)
            wts = [F(wj / total) for wj in wts]
        else:
            total = F(0.0)
            for wj in self.w:
                total = F(total + wj)
            wts = [F(wj / total) for wj in self.w]
        out = None
        for j, g in enumerate(self.comp):
            if wts[j] == 0:
                continue
            tmp = x.copy()
            g.mu.row_axpy(0, F(-1.0), tmp)
            tmp = g.denoise_projected(sigma, tmp, proj[j])
            if out is None:
                out = wts[j] * tmp
            else:
                out += wts[j] * tmp
        return out


def log_sigma_weights(sigma, grid):
    """(i, t): D = (1 - t) D_i + t D_{i+1}, in f32 with libm's logf."""
    if sigma >= grid[0]:
        return 0, F(0.0)
    for i in range(len(grid) - 1):
        hi, lo = grid[i], grid[i + 1]
        if hi >= sigma > lo:
            if sigma == hi:
                return i, F(0.0)
            ln_hi, ln_lo = logf(hi), logf(lo)
            t = F(F(ln_hi - logf(sigma)) / F(ln_hi - ln_lo))
            return i, (F(0.0) if t < 0 else F(1.0) if t > 1 else t)
    return len(grid) - 1, F(0.0)


class Linear:
    def __init__(self, s, kind, d):
        self.sig, self.b, self.d = s[4].v[0], s[6], d
        if kind == 2:
            self.w = s[5]
        else:
            self.w, self.u_t, self.m, self.a = None, s[2], s[7], s[8].v[0]
            self.k = self.u_t.rows

    def denoise(self, x, sigma):
        i, t = log_sigma_weights(sigma, self.sig)
        blend, s, d = t > 0, F(F(1.0) - t), self.d
        if self.w is not None:
            v = self.w.rows_dot(i * d, d, x) + self.b.row(i)
            if blend:
                v = s * v + t * (self.w.rows_dot((i + 1) * d, d, x) + self.b.row(i + 1))
            return v
        k = self.k
        c = self.u_t.rows_dot(0, k, x)
        a_mix = F(F(s * self.a[i]) + F(t * self.a[i + 1])) if blend else self.a[i]
        v = self.m.rows_dot(i * k, k, c)
        if blend:
            v = s * v + t * self.m.rows_dot((i + 1) * k, k, c)
        z = v - a_mix * c
        out = a_mix * x
        if blend:
            self.b.row_axpy(i, s, out)
            self.b.row_axpy(i + 1, t, out)
        else:
            self.b.row_axpy(i, F(1.0), out)
        for r in range(k):
            self.u_t.row_axpy(r, z[r], out)
        return out


def model(blob):
    s, kind = blob["s"], blob["kind"]
    if kind == 1:
        return Gaussian(s[1], s[2], s[3].v[0], blob["floor"])
    if kind in (2, 3):
        return Linear(s, kind, blob["d"])
    if kind == 4:
        return Mixture(s, blob["d"], blob["L"])
    raise ValueError(f"unknown kind {kind}")


# ---------------------------------------------------------------------------------------------------------
# Schedule and samplers (docs/sampling.md sections 1-3)


def schedule(steps):
    out = [F(0.0)] * (steps + 1)
    if steps == 0:
        return out
    out[0] = SIGMA_MAX
    if steps == 1:
        return out
    inv_rho = F(F(1.0) / RHO)
    hi, lo = powf(SIGMA_MAX, inv_rho), powf(SIGMA_MIN, inv_rho)
    last = F(steps - 1)
    for i in range(1, steps - 1):
        sigma = powf(F(hi + F(F(F(i) / last) * F(lo - hi))), RHO)
        out[i] = SIGMA_MAX if sigma > SIGMA_MAX else SIGMA_MIN if sigma < SIGMA_MIN else sigma
    out[steps - 1] = SIGMA_MIN
    return out


def sample_ode(den, heun, sigmas, x):
    for i in range(len(sigmas) - 1):
        sigma_hat, sigma_next = sigmas[i], sigmas[i + 1]  # no churn: sigma_hat = sigma_cur
        x_hat = x
        denoised = den.denoise(x_hat, sigma_hat)
        if sigma_next == 0:
            x = denoised
            continue
        h = F(sigma_next - sigma_hat)
        d_cur = (x_hat - denoised) / sigma_hat
        x = x_hat + h * d_cur
        if heun:
            d_prime = (x - den.denoise(x, sigma_next)) / sigma_next
            x = x_hat + h * (F(0.5) * d_cur + F(0.5) * d_prime)
    return x


def sample(blob, den, sampler, steps, seed):
    x = np.array(initial_noise(seed, 0, blob["d"]), np.float32)
    if sampler == "exact":
        if isinstance(den, Mixture):
            den = den.comp[den.pick(Rng(seed ^ PICK_STREAM).uniform())]
        return den.exact_flow(x, SIGMA_MAX, F(0.0))
    return sample_ode(den, sampler == "heun", schedule(steps), x)


def to_pixels(x, scale, offset):
    """clamp(round(x * scale + offset), 0, 255), round half away from zero, NaN -> 0."""
    v = x * scale + offset
    r = np.trunc(v)
    r = r + np.where(np.abs(v - r) >= F(0.5), np.sign(v), F(0.0)).astype(np.float32)
    out = np.zeros(v.shape, np.uint8)
    mid = r > 0
    out[mid] = np.minimum(r[mid], F(255.0)).astype(np.uint8)
    return out


# ---------------------------------------------------------------------------------------------------------
# PNG reading (for --compare): 8-bit gray, gray + alpha, RGB or RGBA, non-interlaced


def read_png(path):
    data = open(path, "rb").read()
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = ihdr
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    if depth != 8 or interlace:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, interlace {interlace})")
    raw, stride = zlib.decompress(idat), width * channels
    img, prev = bytearray(), bytearray(stride)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], (prev[i - channels] if i >= channels else 0)
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        img += line
        prev = line
    # interleaved (y, x, channel) -> CHW
    return np.frombuffer(bytes(img), np.uint8).reshape(height, width, channels).transpose(2, 0, 1).ravel()


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("blob")
    p.add_argument("--sampler", choices=["exact", "euler", "heun"], default="heun")
    p.add_argument("--steps", type=int, default=18)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--bits", action="store_true", help="print each sample's f32 bits (hex), one line each")
    p.add_argument("--compare", metavar="DIR", help="compare pixels with DIR/sample_SEED.png (gaussdiff --raw)")
    p.add_argument("--batch", action="store_true", help="then read more such command lines from stdin")
    return p


def run(a):
    """One command line's samples; returns the number of pixels that differ from the --compare PNGs."""
    blob = parse_blob(open(a.blob, "rb").read())
    den = model(blob)
    bad = 0
    for i in range(a.n):
        seed = (a.seed + i) & ((1 << 64) - 1)
        x = sample(blob, den, a.sampler, a.steps, seed)
        if a.bits:
            print(" ".join(f"{v:08x}" for v in x.view(np.uint32)))
        if a.compare:
            px = to_pixels(x, blob["scale"], blob["offset"])
            png = read_png(os.path.join(a.compare, f"sample_{seed:05}.png"))
            diff = int(np.count_nonzero(px != png))
            bad += diff
            print(f"{a.blob} {a.sampler} sample {seed}: {px.size - diff} of {px.size} pixels identical", file=sys.stderr)
    return bad


def main():
    """One run, or with --batch one more per line of stdin (shell-like words, the same options)."""
    p = parser()
    a = p.parse_args()
    with np.errstate(all="ignore"):
        bad = run(a)
        if a.batch:
            for line in sys.stdin:
                if line.strip():
                    bad += run(p.parse_args(shlex.split(line)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
