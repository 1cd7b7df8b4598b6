"""The f32 functions of the Rust `libm` crate (0.2.16) that gaussdiff's arithmetic uses, ported to NumPy
float32 scalars, written from docs/sampling.md section 2.

`libm`'s `expf`, `logf` and `powf` are FreeBSD msun's `e_expf.c`, `e_logf.c` and `e_powf.c` (Sun, 1993):
single-precision algorithms whose every operation is an f32 operation. They are not correctly rounded,
so rounding an f64 `exp`/`log`/`pow` to f32 (what NumPy or the C library would give) differs from them in
the last bit for some inputs; these ports follow the algorithms operation by operation instead (each
`F(...)` below is one f32 operation, rounded to nearest even) and give libm's bits.
`sqrtf` is correctly rounded (IEEE), so NumPy's float32 `sqrt` is the same function.

Only finite inputs and the special cases gaussdiff can meet are handled faithfully; everything follows
the C source's branch structure so that other inputs behave the same too.
"""
import numpy as np

F = np.float32


def bits(x):
    """The u32 bit pattern of an f32."""
    return int(np.asarray(x, dtype=np.float32).view(np.uint32))


def from_bits(b):
    """The f32 with the u32 bit pattern `b`."""
    return np.asarray(b & 0xFFFFFFFF, dtype=np.uint32).view(np.float32)[()]


def signed(b):
    """A u32 read as two's complement i32."""
    b &= 0xFFFFFFFF
    return b - (1 << 32) if b & 0x80000000 else b


def scalbnf(x, n):
    """x * 2^n with libm's pre-scaling for exponents beyond the normal range (one final rounding)."""
    x = F(x)
    if n > 127:
        x = F(x * from_bits(254 << 23))
        n -= 127
        if n > 127:
            x = F(x * from_bits(254 << 23))
            n = min(n - 127, 127)
    elif n < -126:
        mul = from_bits((24 + 127) << 23) * from_bits(1 << 23)  # 2^24 * 2^-126, exact
        x = F(x * mul)
        n += 102
        if n < -126:
            x = F(x * mul)
            n = max(n + 102, -126)
    return F(x * from_bits((127 + n) << 23))


# e_expf.c
_EXP_HALF = (F(0.5), F(-0.5))
# ln2_hi, ln2_lo, 1/ln2, P1, P2 (bit patterns as in the C source)
_EXP_LN2_HI, _EXP_LN2_LO, _EXP_INV_LN2, _EXP_P1, _EXP_P2 = map(
    from_bits, (0x3F317200, 0x35BFBE8E, 0x3FB8AA3B, 0x3E2AAA8F, 0xBB355215)
)


def expf(x):
    x = F(x)
    hx = bits(x)
    sign = hx >> 31
    hx &= 0x7FFFFFFF
    if hx >= 0x42AEAC50:  # |x| >= 87.33655 or NaN
        if hx > 0x7F800000:
            return x
        if hx >= 0x42B17218 and not sign:  # overflow
            return F(x * from_bits(0x7F000000))
        if sign and hx >= 0x42CFF1B5:  # x <= -103.972084: underflow to 0
            return F(0.0)
    if hx > 0x3EB17218:  # |x| > 0.5 ln2
        if hx > 0x3F851592:  # |x| > 1.5 ln2
            k = int(F(F(_EXP_INV_LN2 * x) + _EXP_HALF[sign]))  # `as i32`: truncation toward zero
        else:
            k = 1 - sign - sign
        kf = F(k)
        hi = F(x - F(kf * _EXP_LN2_HI))
        lo = F(kf * _EXP_LN2_LO)
        x = F(hi - lo)
    elif hx > 0x39000000:  # |x| > 2^-14
        k, hi, lo = 0, x, F(0.0)
    else:
        return F(F(1.0) + x)
    xx = F(x * x)
    c = F(x - F(xx * F(_EXP_P1 + F(xx * _EXP_P2))))
    y = F(F(1.0) + F(F(F(F(x * c) / F(F(2.0) - c)) - lo) + hi))
    return y if k == 0 else scalbnf(y, k)


# e_logf.c
# ln2_hi, ln2_lo, Lg1 .. Lg4 (bit patterns as in the C source)
_LOG_LN2_HI, _LOG_LN2_LO, _LG1, _LG2, _LG3, _LG4 = map(
    from_bits, (0x3F317180, 0x3717F7D1, 0x3F2AAAAA, 0x3ECCCE13, 0x3E91E9EE, 0x3E789E26)
)


def logf(x):
    x = F(x)
    ix = bits(x)
    k = 0
    if ix < 0x00800000 or ix >> 31:
        if (ix << 1) & 0xFFFFFFFF == 0:
            return F(-np.inf)  # log(+-0) = -inf
        if ix >> 31:
            return F(np.nan)  # log(negative) = NaN
        k -= 25  # subnormal: scale up
        x = F(x * from_bits(0x4C000000))
        ix = bits(x)
    elif ix >= 0x7F800000:
        return x
    elif ix == 0x3F800000:
        return F(0.0)
    # reduce x into [sqrt(2)/2, sqrt(2)]
    ix += 0x3F800000 - 0x3F3504F3
    k += (ix >> 23) - 0x7F
    ix = (ix & 0x007FFFFF) + 0x3F3504F3
    x = from_bits(ix)
    f = F(x - F(1.0))
    s = F(f / F(F(2.0) + f))
    z = F(s * s)
    w = F(z * z)
    t1 = F(w * F(_LG2 + F(w * _LG4)))
    t2 = F(z * F(_LG1 + F(w * _LG3)))
    r = F(t2 + t1)
    hfsq = F(F(F(0.5) * f) * f)
    dk = F(k)
    return F(F(F(F(F(s * F(hfsq + r)) + F(dk * _LOG_LN2_LO)) - hfsq) + f) + F(dk * _LOG_LN2_HI))


# e_powf.c
_BP = (F(1.0), F(1.5))
_DP_H = (F(0.0), from_bits(0x3F15C000))
_DP_L = (F(0.0), from_bits(0x35D1CFDC))
_TWO24 = from_bits(0x4B800000)
_HUGE = F(1.0e30)
_TINY = F(1.0e-30)
_L = [from_bits(b) for b in (0x3F19999A, 0x3EDB6DB7, 0x3EAAAAAB, 0x3E8BA305, 0x3E6C3255, 0x3E53F142)]
_P = [from_bits(b) for b in (0x3E2AAAAB, 0xBB360B61, 0x388AB355, 0xB5DDEA0E, 0x3331BB4C)]
_LG2F = from_bits(0x3F317218)
_LG2_H = from_bits(0x3F317200)
_LG2_L = from_bits(0x35BFBE8C)
_OVT = F(4.2995665694e-08)
_CP = from_bits(0x3F76384F)
_CP_H = from_bits(0x3F764000)
_CP_L = from_bits(0xB8F623C6)
_IVLN2 = F(1.4426950216e00)
_IVLN2_H = F(1.4426879883e00)
_IVLN2_L = F(7.0526075433e-06)


def _mask(x, m):
    """x with its bit pattern and-ed with m (the algorithm's 'high part' splits)."""
    return from_bits(bits(x) & m)


def powf(x, y):
    x, y = F(x), F(y)
    hx, hy = signed(bits(x)), signed(bits(y))
    ix, iy = hx & 0x7FFFFFFF, hy & 0x7FFFFFFF
    if iy == 0:
        return F(1.0)
    if hx == 0x3F800000:
        return F(1.0)
    if ix > 0x7F800000 or iy > 0x7F800000:
        return F(x + y)
    yisint = 0  # 0: not an integer, 1: odd, 2: even (only needed for x < 0)
    if hx < 0:
        if iy >= 0x4B800000:
            yisint = 2
        elif iy >= 0x3F800000:
            k = (iy >> 23) - 0x7F
            j = iy >> (23 - k)
            if (j << (23 - k)) == iy:
                yisint = 2 - (j & 1)
    if iy == 0x7F800000:  # y = +-inf
        if ix == 0x3F800000:
            return F(1.0)
        if ix > 0x3F800000:
            return y if hy >= 0 else F(0.0)
        return F(0.0) if hy >= 0 else F(-y)
    if iy == 0x3F800000:  # y = +-1
        return x if hy >= 0 else F(F(1.0) / x)
    if hy == 0x40000000:  # y = 2
        return F(x * x)
    if hy == 0x3F000000 and hx >= 0:  # y = 0.5
        return F(np.sqrt(x))
    ax = F(abs(x))
    if ix in (0x7F800000, 0, 0x3F800000):  # x = +-0, +-inf, +-1
        z = ax
        if hy < 0:
            z = F(F(1.0) / z)
        if hx < 0:
            if ((ix - 0x3F800000) | yisint) == 0:
                z = F(np.nan)
            elif yisint == 1:
                z = F(-z)
        return z
    sn = F(1.0)
    if hx < 0:
        if yisint == 0:
            return F(np.nan)
        if yisint == 1:
            sn = F(-1.0)
    if iy > 0x4D000000:  # |y| > 2^27
        if ix < 0x3F7FFFF8:
            return F(sn * F(_HUGE * _HUGE)) if hy < 0 else F(sn * F(_TINY * _TINY))
        if ix > 0x3F800007:
            return F(sn * F(_HUGE * _HUGE)) if hy > 0 else F(sn * F(_TINY * _TINY))
        t = F(ax - F(1.0))
        w = F(F(t * t) * F(F(0.5) - F(t * F(F(0.333333333333) - F(t * F(0.25))))))
        u = F(_IVLN2_H * t)
        v = F(F(t * _IVLN2_L) - F(w * _IVLN2))
        t1 = _mask(F(u + v), 0xFFFFF000)
        t2 = F(v - F(t1 - u))
    else:
        n = 0
        if ix < 0x00800000:  # subnormal x
            ax = F(ax * _TWO24)
            n -= 24
            ix = bits(ax)
        n += (ix >> 23) - 0x7F
        j = ix & 0x007FFFFF
        ix = j | 0x3F800000
        if j <= 0x1CC471:  # |x| < sqrt(3/2)
            k = 0
        elif j < 0x5DB3D7:  # |x| < sqrt(3)
            k = 1
        else:
            k = 0
            n += 1
            ix -= 0x00800000
        ax = from_bits(ix)
        u = F(ax - _BP[k])
        v = F(F(1.0) / F(ax + _BP[k]))
        s = F(u * v)
        s_h = _mask(s, 0xFFFFF000)
        t_h = from_bits((((ix >> 1) & 0xFFFFF000) | 0x20000000) + 0x00400000 + (k << 21))
        t_l = F(ax - F(t_h - _BP[k]))
        s_l = F(v * F(F(u - F(s_h * t_h)) - F(s_h * t_l)))
        s2 = F(s * s)
        poly = F(_L[4] + F(s2 * _L[5]))
        for c in (_L[3], _L[2], _L[1], _L[0]):
            poly = F(c + F(s2 * poly))
        r = F(F(s2 * s2) * poly)
        r = F(r + F(s_l * F(s_h + s)))
        s2 = F(s_h * s_h)
        t_h = _mask(F(F(F(3.0) + s2) + r), 0xFFFFF000)
        t_l = F(r - F(F(t_h - F(3.0)) - s2))
        u = F(s_h * t_h)
        v = F(F(s_l * t_h) + F(t_l * s))
        p_h = _mask(F(u + v), 0xFFFFF000)
        p_l = F(v - F(p_h - u))
        z_h = F(_CP_H * p_h)
        z_l = F(F(F(_CP_L * p_h) + F(p_l * _CP)) + _DP_L[k])
        t = F(n)
        t1 = _mask(F(F(F(z_h + z_l) + _DP_H[k]) + t), 0xFFFFF000)
        t2 = F(z_l - F(F(F(t1 - t) - _DP_H[k]) - z_h))
    # (y1 + y2) * (t1 + t2)
    y1 = _mask(y, 0xFFFFF000)
    p_l = F(F(F(y - y1) * t1) + F(y * t2))
    p_h = F(y1 * t1)
    z = F(p_l + p_h)
    j = signed(bits(z))
    if j > 0x43000000:
        return F(sn * F(_HUGE * _HUGE))
    if j == 0x43000000:
        if F(p_l + _OVT) > F(z - p_h):
            return F(sn * F(_HUGE * _HUGE))
    elif (j & 0x7FFFFFFF) > 0x43160000:
        return F(sn * F(_TINY * _TINY))
    elif (j & 0xFFFFFFFF) == 0xC3160000 and p_l <= F(z - p_h):
        return F(sn * F(_TINY * _TINY))
    # 2^(p_h + p_l)
    i = j & 0x7FFFFFFF
    k = (i >> 23) - 0x7F
    n = 0
    if i > 0x3F000000:  # |z| > 0.5: n = [z + 0.5]
        n = j + (0x00800000 >> (k + 1))
        k = ((n & 0x7FFFFFFF) >> 23) - 0x7F
        t = from_bits(n & ~(0x007FFFFF >> k))
        n = ((n & 0x007FFFFF) | 0x00800000) >> (23 - k)
        if j < 0:
            n = -n
        p_h = F(p_h - t)
    t = _mask(F(p_l + p_h), 0xFFFF8000)
    u = F(t * _LG2_H)
    v = F(F(F(p_l - F(t - p_h)) * _LG2F) + F(t * _LG2_L))
    z = F(u + v)
    w = F(v - F(z - u))
    t = F(z * z)
    poly = F(_P[3] + F(t * _P[4]))
    for c in (_P[2], _P[1], _P[0]):
        poly = F(c + F(t * poly))
    t1 = F(z - F(t * poly))
    r = F(F(F(z * t1) / F(t1 - F(2.0))) - F(w + F(z * w)))
    z = F(F(1.0) - F(r - z))
    j = signed(bits(z) + (n << 23))
    if (j >> 23) <= 0:  # subnormal result
        z = scalbnf(z, n)
    else:
        z = from_bits(j)
    return F(sn * z)


def main():
    """Reads lines `log X`, `exp X` or `pow X Y` (f32 bits in hex) and prints each result's bits."""
    import sys

    fns = {"log": logf, "exp": expf, "pow": powf}
    with np.errstate(all="ignore"):
        for line in sys.stdin:
            name, *args = line.split()
            print(f"{bits(fns[name](*(from_bits(int(a, 16)) for a in args))):08x}")


if __name__ == "__main__":
    main()
