//! Every matrix kernel of the crate, with the fixed summation order that makes host and target agree bit for
//! bit (`docs/architecture.md`, "Kernel order").
//!
//! # Reductions
//! [`dot4`] fixes the summation order of every dot product in the crate (four interleaved partial sums), so
//! a blob evaluated on x86-64 and on a Cortex-M4F gives bit-identical results. Elementwise kernels
//! ([`axpy`]) have no reduction and are order-free. The `*_le` / `*_i8` variants run the same kernels straight
//! over stored tensor rows (f32, f16, int8 bytes, any alignment) with the same order, hence the same bits.
//!
//! # Block kernels
//! The matrix-vector products of the denoisers (`U^T (x - mu)` and `U coef`) run four rows at a time through
//! a [`BlockKernels`] implementation ([`Tensor::rows_dot_with`] / [`Tensor::rows_axpy_with`]): each `x` (or `y`) chunk
//! is loaded once for 16 multiply-adds, while every row keeps exactly the [`dot4`] order (and every `y[c]`
//! receives the rows' products in row order), so the results are the bits of the one-row kernels.
//! [`Portable`] is the Rust implementation; the firmware supplies Cortex-M4F assembly (`vldm`, `vmla`,
//! `vcvtb`) with the same arithmetic.
//!
//! # Tensor row products
//! The row products of a stored [`Tensor`] (`row_dot`, `row_axpy` and its `_with` form, the four-row
//! `rows_dot_with` and `rows_axpy_with` taking the block kernels, and the element-wise `_reference` oracles)
//! are defined here too, in an `impl Tensor` block: [`crate::tensor`] is only the storage view.

use crate::tensor::{le_f16, le_f32, DType, Tensor};

/// `sum_c x[c] * w(c)` with the fixed order documented on [`Tensor::row_dot`]:
/// four partial sums over `c = 4m + j`, the tail added to `s_0, s_1, s_2` in order, then `(s0+s1)+(s2+s3)`.
#[inline(always)]
pub fn dot4(x: &[f32], w: impl Fn(usize) -> f32) -> f32 {
    let n = x.len();
    let main = n - n % 4;
    let (mut s0, mut s1, mut s2, mut s3) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
    let mut c = 0;
    while c < main {
        s0 += x[c] * w(c);
        s1 += x[c + 1] * w(c + 1);
        s2 += x[c + 2] * w(c + 2);
        s3 += x[c + 3] * w(c + 3);
        c += 4;
    }
    let mut j = 0;
    while c < n {
        let p = x[c] * w(c);
        match j {
            0 => s0 += p,
            1 => s1 += p,
            _ => s2 += p,
        }
        j += 1;
        c += 1;
    }
    (s0 + s1) + (s2 + s3)
}

/// Plain f32 dot product of two slices with the [`dot4`] summation order.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    contract!(a.len() == b.len(), "dot: length mismatch");
    dot4(a, |c| b[c])
}

/// `y[i] += alpha * x[i]` (elementwise; no reduction, so no ordering question).
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    contract!(x.len() == y.len(), "axpy: length mismatch");
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// [`dot4`] over little-endian stored elements of `B` bytes each: `sum_c x[c] * decode(w[c])`.
///
/// Same order as [`dot4`] (lane `j` of four accumulates `c = 4m + j`; the tail goes to lanes 0, 1, 2;
/// result `(s0 + s1) + (s2 + s3)`), hence the same bits, but written over fixed-size blocks so the compiler
/// drops the per-byte bounds checks and can keep the four lanes in one SIMD register.
#[inline(always)]
fn dot4_blocks<T: Copy>(x: &[f32], w: &[T], decode: impl Fn(T) -> f32) -> f32 {
    contract!(x.len() == w.len(), "dot4: length mismatch");
    let (xq, xt) = x.as_chunks::<4>();
    let (wq, wt) = w.as_chunks::<4>();
    let mut s = [0.0f32; 4];
    for (xs, ws) in xq.iter().zip(wq) {
        for j in 0..4 {
            s[j] += xs[j] * decode(ws[j]);
        }
    }
    for (j, (&xv, &wv)) in xt.iter().zip(wt).enumerate() {
        s[j] += xv * decode(wv);
    }
    (s[0] + s[1]) + (s[2] + s[3])
}

/// `y[c] += alpha * decode(w[c])` over stored elements of `B` bytes (elementwise).
#[inline(always)]
fn axpy_blocks<T: Copy>(alpha: f32, w: &[T], y: &mut [f32], decode: impl Fn(T) -> f32) {
    contract!(w.len() == y.len(), "axpy: length mismatch");
    for (yc, &wc) in y.iter_mut().zip(w) {
        *yc += alpha * decode(wc);
    }
}

/// IEEE binary16 bits to f32, exactly (every binary16 value is an f32), bit-identical to
/// `half::f16::from_bits(h).to_f32()` for all 65 536 inputs (tested; NaNs keep their payload and become
/// quiet).
///
/// Written out because `half` dispatches at run time when built with `std` (an atomic load per element);
/// here every finite value is `f32::from_bits(sign | (h & 0x7fff) << 13) * 2^112` (exact: the shifted bits are
/// the value scaled by `2^-112`, an f32 subnormal for binary16 zero and subnormals), infinities and NaNs map
/// to the f32 ones.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    if em >= 0x7c00 {
        // Infinities and NaNs (rare): the f32 ones, NaN payload kept and made quiet.
        let man = em & 0x03ff;
        return f32::from_bits(sign | 0x7f80_0000 | (man << 13) | if man != 0 { 0x0040_0000 } else { 0 });
    }
    // Every finite binary16 (zero, subnormal, normal): its bits shifted into an f32 are the value times
    // 2^-112 (exponent field e, bias 127 instead of 15; e = 0 makes an f32 subnormal with the same
    // mantissa), so one exact multiplication by 2^112 restores it. Fewer instructions than a
    // separate subnormal branch on a Cortex-M4 (one compare, a shift, an or, a multiply).
    f32::from_bits(sign | (em << 13)) * F16_SCALE
}

/// `2^112`, the exponent-bias difference between binary32 and binary16.
const F16_SCALE: f32 = f32::from_bits((112 + 127) << 23);

#[inline(always)]
fn f16_bits(b: [u8; 2]) -> f32 {
    f16_to_f32(u16::from_le_bytes(b))
}

#[inline(always)]
fn i8_bits(b: [u8; 1]) -> f32 {
    (b[0] as i8) as f32
}

/// [`dot4`] of `x` with a row stored as little-endian f32 bytes (`row.len() == 4 * x.len()`), bit-identical
/// to `dot4(x, |c| f32::from_le_bytes(row[4c..4c+4]))`.
///
/// # Panics
/// If `row.len() != 4 * x.len()`.
#[inline]
pub fn dot4_f32_le(x: &[f32], row: &[u8]) -> f32 {
    let (w, tail) = row.as_chunks::<4>();
    contract!(tail.is_empty(), "dot4_f32_le: row is not a whole number of f32");
    // Aligned fast path (little-endian targets: the bytes already are the f32s): whole-word float loads
    // instead of byte assembly; same order, same bits.
    #[cfg(target_endian = "little")]
    if let Ok(wf) = bytemuck::try_cast_slice::<u8, f32>(row) {
        return dot4_blocks(x, wf, |v| v);
    }
    dot4_blocks(x, w, f32::from_le_bytes)
}

/// [`dot4`] of `x` with a row stored as little-endian IEEE binary16 (`row.len() == 2 * x.len()`); products
/// and sums in f32.
///
/// # Panics
/// If `row.len() != 2 * x.len()`.
#[inline]
pub fn dot4_f16_le(x: &[f32], row: &[u8]) -> f32 {
    let (w, tail) = row.as_chunks::<2>();
    contract!(tail.is_empty(), "dot4_f16_le: row is not a whole number of f16");
    dot4_blocks(x, w, f16_bits)
}

/// [`dot4`] of `x` with a row of int8 values `q` (no scale: the caller multiplies the result by the row's
/// scale once, as `Tensor::row_dot` documents).
///
/// # Panics
/// If `row.len() != x.len()`.
#[inline]
pub fn dot4_i8(x: &[f32], row: &[u8]) -> f32 {
    let (w, _) = row.as_chunks::<1>();
    dot4_blocks(x, w, i8_bits)
}

/// `y[c] += alpha * w[c]` for a row of little-endian f32 bytes.
///
/// # Panics
/// If `row.len() != 4 * y.len()`.
#[inline]
pub fn axpy_f32_le(alpha: f32, row: &[u8], y: &mut [f32]) {
    let (w, tail) = row.as_chunks::<4>();
    contract!(tail.is_empty(), "axpy_f32_le: row is not a whole number of f32");
    #[cfg(target_endian = "little")]
    if let Ok(wf) = bytemuck::try_cast_slice::<u8, f32>(row) {
        return axpy_blocks(alpha, wf, y, |v| v);
    }
    axpy_blocks(alpha, w, y, f32::from_le_bytes)
}

/// `y[c] += alpha * w[c]` for a row of little-endian binary16.
///
/// # Panics
/// If `row.len() != 2 * y.len()`.
#[inline]
pub fn axpy_f16_le(alpha: f32, row: &[u8], y: &mut [f32]) {
    let (w, tail) = row.as_chunks::<2>();
    contract!(tail.is_empty(), "axpy_f16_le: row is not a whole number of f16");
    axpy_blocks(alpha, w, y, f16_bits)
}

/// `y[c] += alpha * q[c]` for a row of int8 values (pass `alpha * scale` for a scaled row).
///
/// # Panics
/// If `row.len() != y.len()`.
#[inline]
pub fn axpy_i8(alpha: f32, row: &[u8], y: &mut [f32]) {
    let (w, _) = row.as_chunks::<1>();
    axpy_blocks(alpha, w, y, i8_bits)
}

/// Rows per block of the multi-row kernels ([`BlockKernels`], `Tensor::rows_dot_with` / `rows_axpy_with`).
pub const BLOCK_ROWS: usize = 4;

/// The inner loops of the matrix-vector products: four rows at a time over 4-element chunks (every `x` or
/// `y` chunk is loaded once for 16 multiply-adds). A platform may supply its own implementation (the
/// firmware's Cortex-M4F assembly, which can use `vldm` and `vcvtb`); every implementation must compute
/// exactly the arithmetic documented here, so results are the same bits everywhere. [`Portable`] is the
/// pure-Rust one, used unless a denoiser is given another (`GaussianDenoiser::with_kernels`).
///
/// In all methods the four rows and `x` / `y` have the same number of chunks (callers guarantee it;
/// implementations may assert it), and "`w_r[c]`" is element `j` of chunk `m` of row `r`, `c = 4m + j`.
/// f16 chunks are two little-endian words holding binary16 elements `c` (low half) and `c + 1` (high half);
/// they are decoded exactly (every binary16 is an f32) and are finite (callers guarantee it).
pub trait BlockKernels: Sync + core::fmt::Debug {
    /// For `m = 0, 1, ...` in order and every row `r` and lane `j`: `s[r][j] += x[c] * w_r[c]` (product
    /// rounded to f32, then the sum): the lane sums of [`dot4`], continued from the given `s`.
    #[cfg(feature = "f32-kernels")]
    fn dot_rows4_f32(&self, x: &[[f32; 4]], w: [&[[f32; 4]]; 4], s: &mut [[f32; 4]; 4]);
    /// For every element `c`: `y[c] += a_0 w_0[c]`, then `+= a_1 w_1[c]`, `+= a_2 w_2[c]`, `+= a_3 w_3[c]`
    /// (each product rounded, then each sum): four sequential [`axpy`]s.
    #[cfg(feature = "f32-kernels")]
    fn axpy_rows4_f32(&self, alpha: [f32; 4], w: [&[[f32; 4]]; 4], y: &mut [[f32; 4]]);
    /// [`BlockKernels::dot_rows4_f32`] with binary16 rows.
    fn dot_rows4_f16(&self, x: &[[f32; 4]], w: [&[[u32; 2]]; 4], s: &mut [[f32; 4]; 4]);
    /// [`BlockKernels::axpy_rows4_f32`] with binary16 rows.
    fn axpy_rows4_f16(&self, alpha: [f32; 4], w: [&[[u32; 2]]; 4], y: &mut [[f32; 4]]);
    /// One row: `y[c] += alpha * w[c]` for every element (an [`axpy`]; the denoisers' passes over the mean).
    /// The default is [`Portable`]'s loop. In every build (a Gaussian blob's mean is f32 whatever its
    /// matrices are); the other f32 methods come with the feature `f32-kernels`.
    fn axpy_row_f32(&self, alpha: f32, w: &[[f32; 4]], y: &mut [[f32; 4]]) {
        contract!(w.len() == y.len(), "axpy_row_f32: length mismatch");
        axpy(alpha, w.as_flattened(), y.as_flattened_mut());
    }
    /// The correctly rounded square root (IEEE 754): [`crate::math::sqrt`] by default (libm's `sqrtf`, in
    /// software). A target with a square-root instruction returns the same bits (the Cortex-M4F firmware's
    /// `vsqrt.f32`: no software square root is linked). The exact sampler's flow factors take it.
    fn sqrt(&self, x: f32) -> f32 {
        crate::math::sqrt(x)
    }
    /// [`BlockKernels::axpy_row_f32`] with a binary16 row. The default is [`Portable`]'s loop (`2^112` folded
    /// into `alpha` when `|alpha| < 2^16`, else the exact decode).
    fn axpy_row_f16(&self, alpha: f32, w: &[[u32; 2]], y: &mut [[f32; 4]]) {
        contract!(w.len() == y.len(), "axpy_row_f16: length mismatch");
        let pass = |a: f32, y: &mut [[f32; 4]], decode: fn([u32; 2]) -> [f32; 4]| {
            for (yc, &wc) in y.iter_mut().zip(w) {
                let wv = decode(wc);
                for j in 0..4 {
                    yc[j] += a * wv[j];
                }
            }
        };
        if alpha.abs() < F16_FOLD_LIMIT {
            pass(alpha * F16_SCALE, y, f16x4_scaled);
        } else {
            pass(alpha, y, f16x4);
        }
    }
}

/// The pure-Rust [`BlockKernels`] (any target).
///
/// f16 decoding folds binary16's `2^112` exponent rescaling into `x` or `alpha` instead of multiplying
/// every weight: the bits of a finite binary16, moved into an f32, are its value times `2^-112`, and
/// `(x * 2^112) * (w * 2^-112)` rounds the same real number `x * w` as long as `x * 2^112` is finite
/// (`|x| < 2^16`, where that scaling is exact). A row whose lane sums come out non-finite (some
/// `|x| >= 2^16`, or a genuine overflow) is recomputed with the exact decode; `alpha`s of `2^16` or more
/// use the exact decode from the start. So the bits never depend on the shortcut.
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

/// The shared [`Portable`] instance (the default kernels of the denoisers).
pub static PORTABLE: Portable = Portable;

impl Portable {
    #[inline(always)]
    fn dot<B: Copy>(
        x: &[[f32; 4]],
        w: [&[B]; 4],
        s: &mut [[f32; 4]; 4],
        xmap: impl Fn(f32) -> f32,
        decode: impl Fn(B) -> [f32; 4],
    ) {
        contract!(w.iter().all(|r| r.len() == x.len()), "dot_rows4: length mismatch");
        for ((((xc, w0), w1), w2), w3) in x.iter().zip(w[0]).zip(w[1]).zip(w[2]).zip(w[3]) {
            let xv = xc.map(&xmap);
            for (acc, &wc) in s.iter_mut().zip([w0, w1, w2, w3]) {
                let wv = decode(wc);
                for j in 0..4 {
                    acc[j] += xv[j] * wv[j];
                }
            }
        }
    }

    #[inline(always)]
    fn axpy<B: Copy>(alpha: [f32; 4], w: [&[B]; 4], y: &mut [[f32; 4]], decode: impl Fn(B) -> [f32; 4]) {
        contract!(w.iter().all(|r| r.len() == y.len()), "axpy_rows4: length mismatch");
        for ((((yc, w0), w1), w2), w3) in y.iter_mut().zip(w[0]).zip(w[1]).zip(w[2]).zip(w[3]) {
            let mut v = *yc;
            for (&a, &wc) in alpha.iter().zip([w0, w1, w2, w3]) {
                let wv = decode(wc);
                for j in 0..4 {
                    v[j] += a * wv[j];
                }
            }
            *yc = v;
        }
    }
}

impl BlockKernels for Portable {
    #[cfg(feature = "f32-kernels")]
    fn dot_rows4_f32(&self, x: &[[f32; 4]], w: [&[[f32; 4]]; 4], s: &mut [[f32; 4]; 4]) {
        Self::dot(x, w, s, |v| v, |v| v);
    }

    /// On 32-bit Arm (no SIMD registers: every `y` load and store is an instruction) one fused pass loads and
    /// stores each `y` chunk once for the four rows. Elsewhere (x86-64, AArch64) four sequential [`axpy`]
    /// passes: LLVM vectorizes those into plain SIMD multiply-adds, while it vectorizes the fused loop across
    /// chunks with gathers (~20 % slower). Both give every `y[c]` the same operations in the same order.
    #[cfg(feature = "f32-kernels")]
    fn axpy_rows4_f32(&self, alpha: [f32; 4], w: [&[[f32; 4]]; 4], y: &mut [[f32; 4]]) {
        if cfg!(target_arch = "arm") {
            Self::axpy(alpha, w, y, |v| v);
        } else {
            for (&a, wr) in alpha.iter().zip(w) {
                axpy(a, wr.as_flattened(), y.as_flattened_mut());
            }
        }
    }

    fn dot_rows4_f16(&self, x: &[[f32; 4]], w: [&[[u32; 2]]; 4], s: &mut [[f32; 4]; 4]) {
        let start = *s;
        Self::dot(x, w, s, |v| v * F16_SCALE, f16x4_scaled);
        for r in 0..4 {
            if !s[r].iter().all(|v| v.is_finite()) {
                let mut exact = [start[r]; 4];
                Self::dot(x, [w[r]; 4], &mut exact, |v| v, f16x4);
                s[r] = exact[0];
            }
        }
    }

    fn axpy_rows4_f16(&self, alpha: [f32; 4], w: [&[[u32; 2]]; 4], y: &mut [[f32; 4]]) {
        if alpha.iter().all(|a| a.abs() < F16_FOLD_LIMIT) {
            Self::axpy(alpha.map(|a| a * F16_SCALE), w, y, f16x4_scaled);
        } else {
            Self::axpy(alpha, w, y, f16x4);
        }
    }
}

/// `2^-112` times the binary16 value of the low half of `p`, as an f32 (sign and exponent/mantissa bits
/// moved into place: `(p << 16)` puts the sign in bit 31, the arithmetic shift by 3 moves exponent and
/// mantissa to bits 13..27 and smears the sign over bits 28..30, which the mask clears; two instructions
/// on a Cortex-M4). Exact for every finite binary16 (see [`f16_to_f32`]); infinities and NaNs come out as
/// finite garbage, which is why the f16 block kernels require finite weights.
#[inline(always)]
fn f16_lo_scaled(p: u32) -> f32 {
    f32::from_bits((((p << 16) as i32 >> 3) as u32) & F16_SCALED_MASK)
}

/// As [`f16_lo_scaled`] for the high half of `p` (one instruction: `and` with a shifted operand).
#[inline(always)]
fn f16_hi_scaled(p: u32) -> f32 {
    f32::from_bits(((p as i32 >> 3) as u32) & F16_SCALED_MASK)
}

/// Keeps the sign (bit 31) and the moved exponent and mantissa (bits 13..27).
const F16_SCALED_MASK: u32 = 0x8fff_e000;

/// Four binary16 stored little-endian in two words, decoded to `2^-112` times their values.
#[inline(always)]
fn f16x4_scaled(w: [u32; 2]) -> [f32; 4] {
    [f16_lo_scaled(w[0]), f16_hi_scaled(w[0]), f16_lo_scaled(w[1]), f16_hi_scaled(w[1])]
}

/// Four binary16 stored little-endian in two words, decoded exactly.
#[inline(always)]
fn f16x4(w: [u32; 2]) -> [f32; 4] {
    [f16_to_f32(w[0] as u16), f16_to_f32((w[0] >> 16) as u16), f16_to_f32(w[1] as u16), f16_to_f32((w[1] >> 16) as u16)]
}

/// `y[c] += alpha * w[c]` for one row of little-endian binary16 known to be finite: bit-identical to
/// [`axpy_f16_le`], with the `2^112` rescaling folded into `alpha` (see [`Portable`]) when `|alpha| < 2^16`
/// and the row is 4-byte aligned; otherwise exactly [`axpy_f16_le`].
///
/// # Panics
/// If `row.len() != 2 * y.len()`.
#[inline]
pub(crate) fn axpy_f16_le_finite(alpha: f32, row: &[u8], y: &mut [f32]) {
    contract!(row.len() == 2 * y.len(), "axpy_f16: length mismatch");
    let main = 2 * (y.len() - y.len() % 4);
    let words = bytemuck::try_cast_slice::<u8, [u32; 2]>(&row[..main]);
    let (Ok(words), true) = (words, alpha.abs() < F16_FOLD_LIMIT) else { return axpy_f16_le(alpha, row, y) };
    let a = alpha * F16_SCALE;
    let (yq, yt) = y.as_chunks_mut::<4>();
    for (yc, &wc) in yq.iter_mut().zip(words) {
        let wv = f16x4_scaled(wc);
        for j in 0..4 {
            yc[j] += a * wv[j];
        }
    }
    axpy_f16_le(alpha, &row[main..], yt);
}

#[cfg(feature = "i8-kernels")]
/// `[q_0, q_1, q_2, q_3]` of four int8 values as f32 (exact).
#[inline(always)]
fn i8x4(b: [u8; 4]) -> [f32; 4] {
    b.map(|q| (q as i8) as f32)
}

#[cfg(feature = "i8-kernels")]
/// Four int8 rows at once: lane sums of [`dot4_i8`] over the chunked part (products `x * q`, no scale),
/// continued from `s`.
#[inline]
pub(crate) fn dot_rows4_i8(x: &[[f32; 4]], w: [&[[u8; 4]]; 4], s: &mut [[f32; 4]; 4]) {
    Portable::dot(x, w, s, |v| v, i8x4);
}

#[cfg(feature = "i8-kernels")]
/// Four int8 rows at once: `y += a_0 q_0 + ... + a_3 q_3` element by element in row order over the chunked
/// part (callers pass `a_r = alpha_r * scale_r`, as [`axpy_i8`] takes it).
#[inline]
pub(crate) fn axpy_rows4_i8(a: [f32; 4], w: [&[[u8; 4]]; 4], y: &mut [[f32; 4]]) {
    Portable::axpy(a, w, y, i8x4);
}

/// `|v|` below which `v * 2^112` is finite (and exact): `2^16`.
const F16_FOLD_LIMIT: f32 = 65536.0;

/// The four rows' [`dot4`]s of `x` (length `n`) with rows of `T` (f32 or f16 words), chunked part through
/// `k`, tail (`c >= 4 * floor(n / 4)`, added to lanes 0, 1, 2 in order) with the exact `tail(r, c)`; returns
/// `(s0 + s1) + (s2 + s3)` per row, bit-identical to four [`dot4`]s.
#[inline(always)]
pub(crate) fn dot4_rows4_with(
    x: &[f32],
    chunked: impl FnOnce(&[[f32; 4]], &mut [[f32; 4]; 4]),
    tail: impl Fn(usize, usize) -> f32,
) -> [f32; 4] {
    let (xq, xt) = x.as_chunks::<4>();
    let mut s = [[0.0f32; 4]; 4];
    chunked(xq, &mut s);
    let main = 4 * xq.len();
    for (r, acc) in s.iter_mut().enumerate() {
        for (j, &xc) in xt.iter().enumerate() {
            acc[j] += xc * tail(r, main + j);
        }
    }
    s.map(|a| (a[0] + a[1]) + (a[2] + a[3]))
}

/// Four rows' chunked parts, as the block kernels take them.
#[derive(Clone, Copy)]
enum Rows4<'a> {
    F32([&'a [[f32; 4]]; 4]),
    F16([&'a [[u32; 2]]; 4]),
    /// int8 rows (portable kernels only) and their four row scales.
    #[cfg(feature = "i8-kernels")]
    I8([&'a [[u8; 4]]; 4], [f32; 4]),
}

impl<'a> Tensor<'a> {
    /// `sum_c T[r, c] * x[c]` in f32.
    ///
    /// Summation order (part of the bit-exactness contract between host and target): four partial sums
    /// `s_j` accumulate elements `c = 4m + j` in increasing `m`; the tail `c >= 4*floor(cols/4)` is added to
    /// `s_0..` in order; the result is `(s_0 + s_1) + (s_2 + s_3)` ([`dot4`]). For int8 the
    /// integer-valued products `q * x` are summed this way and the row scale is applied once at the end.
    /// Computed with the block kernels of this module straight over the row's bytes; bit-identical to the
    /// element-wise [`Tensor::row_dot_reference`].
    ///
    /// # Panics
    /// If `r >= rows` or `x.len() != cols`.
    #[inline]
    pub fn row_dot(&self, r: usize, x: &[f32]) -> f32 {
        contract!(r < self.rows && x.len() == self.cols, "row_dot: bad row or input length");
        let row = self.row_bytes(r);
        match self.dtype {
            #[cfg(feature = "f32-kernels")]
            DType::F32 => dot4_f32_le(x, row),
            DType::F16 => dot4_f16_le(x, row),
            #[cfg(feature = "i8-kernels")]
            DType::I8 => dot4_i8(x, row) * self.row_scale(r),
            // A storage type whose fast kernels this build leaves out: the same bits element by element.
            #[allow(unreachable_patterns)]
            _ => self.row_dot_reference(r, x),
        }
    }

    /// `y[c] += alpha * T[r, c]` for every column `c` (elementwise, no reduction); for int8,
    /// `y[c] += (alpha * scale_r) * q[r, c]`. Bit-identical to [`Tensor::row_axpy_reference`].
    ///
    /// # Panics
    /// If `r >= rows` or `y.len() != cols`.
    #[inline]
    pub fn row_axpy(&self, r: usize, alpha: f32, y: &mut [f32]) {
        contract!(r < self.rows && y.len() == self.cols, "row_axpy: bad row or output length");
        let row = self.row_bytes(r);
        match self.dtype {
            #[cfg(feature = "f32-kernels")]
            DType::F32 => axpy_f32_le(alpha, row, y),
            DType::F16 if self.f16_finite => axpy_f16_le_finite(alpha, row, y),
            DType::F16 => axpy_f16_le(alpha, row, y),
            #[cfg(feature = "i8-kernels")]
            DType::I8 => axpy_i8(alpha * self.row_scale(r), row, y),
            // As in `row_dot`.
            #[allow(unreachable_patterns)]
            _ => self.row_axpy_reference(r, alpha, y),
        }
    }

    /// [`Tensor::row_axpy`] with the given block kernels for f32 and finite f16 rows (same bits with every
    /// correct implementation); int8, unaligned or non-finite f16 rows use [`Tensor::row_axpy`].
    ///
    /// # Panics
    /// If `r >= rows` or `y.len() != cols`.
    pub fn row_axpy_with(&self, kernels: &dyn BlockKernels, r: usize, alpha: f32, y: &mut [f32]) {
        contract!(r < self.rows && y.len() == self.cols, "row_axpy: bad row or output length");
        let (yq, yt) = y.as_chunks_mut::<4>();
        match self.rows4_from(r, 1) {
            // In every build: a Gaussian blob's mean is f32 whatever its matrices are.
            Some(Rows4::F32(w)) => kernels.axpy_row_f32(alpha, w[0], yq),
            Some(Rows4::F16(w)) => kernels.axpy_row_f16(alpha, w[0], yq),
            // int8 (never returned for one row), unaligned or non-finite f16: the per-row kernel.
            _ => return self.row_axpy(r, alpha, y),
        }
        let main = 4 * yq.len();
        for (j, yc) in yt.iter_mut().enumerate() {
            *yc += alpha * self.get(r, main + j);
        }
    }

    /// True when rows `first .. first + n` exist and a vector of `len` matches a row (the callers assert it
    /// with a constant message, so no formatting code is linked).
    fn rows_fit(&self, first: usize, n: usize, len: usize) -> bool {
        first.checked_add(n).is_some_and(|end| end <= self.rows) && len == self.cols
    }

    /// `out[i] = row_dot(first + i, x)` for `i < out.len()`, bit for bit, four rows at a time (the
    /// matrix-vector product `T[first.., :] x`; each `x` chunk is loaded once for four rows), with the given
    /// block kernels ([`PORTABLE`], or the firmware's assembly: the same bits with every correct one).
    ///
    /// # Panics
    /// If `first + out.len() > rows` or `x.len() != cols`.
    pub fn rows_dot_with(&self, kernels: &dyn BlockKernels, first: usize, x: &[f32], out: &mut [f32]) {
        contract!(self.rows_fit(first, out.len(), x.len()), "rows_dot: bad rows or vector length");
        let (blocks, tail) = out.as_chunks_mut::<{ BLOCK_ROWS }>();
        let mut r = first;
        for block in blocks {
            let exact = |i: usize, c: usize| self.get(r + i, c);
            match self.rows4(r) {
                #[cfg(feature = "f32-kernels")]
                Some(Rows4::F32(w)) => {
                    *block = dot4_rows4_with(x, |xq, s| kernels.dot_rows4_f32(xq, w, s), exact);
                }
                Some(Rows4::F16(w)) => {
                    *block = dot4_rows4_with(x, |xq, s| kernels.dot_rows4_f16(xq, w, s), exact);
                }
                #[cfg(feature = "i8-kernels")]
                Some(Rows4::I8(w, scale)) => {
                    let q = |i: usize, c: usize| (self.bytes[(r + i) * self.cols + c] as i8) as f32;
                    let sums = dot4_rows4_with(x, |xq, s| dot_rows4_i8(xq, w, s), q);
                    *block = core::array::from_fn(|i| sums[i] * scale[i]);
                }
                // No block kernel for these rows (as in `rows_axpy_with`): the per-row kernel.
                _ => block.iter_mut().enumerate().for_each(|(i, o)| *o = self.row_dot(r + i, x)),
            }
            r += BLOCK_ROWS;
        }
        for (i, o) in tail.iter_mut().enumerate() {
            *o = self.row_dot(r + i, x);
        }
    }

    /// `y += sum_i alpha[i] * T[first + i, :]` (panics if `first + alpha.len() > rows` or `y.len() != cols`),
    /// bit-identical to `row_axpy(first + i, alpha[i], y)` for `i = 0, 1, ...` in order: every `y[c]` receives
    /// the same additions in the same order, four rows at a time (each `y` chunk loaded and stored once per
    /// four rows), with the block kernels as in [`Tensor::rows_dot_with`].
    pub fn rows_axpy_with(&self, kernels: &dyn BlockKernels, first: usize, alpha: &[f32], y: &mut [f32]) {
        contract!(self.rows_fit(first, alpha.len(), y.len()), "rows_axpy: bad rows or vector length");
        let (blocks, tail) = alpha.as_chunks::<{ BLOCK_ROWS }>();
        let mut r = first;
        for &a in blocks {
            let (yq, yt) = y.as_chunks_mut::<4>();
            let main = 4 * yq.len();
            match self.rows4(r) {
                #[cfg(feature = "f32-kernels")]
                Some(Rows4::F32(w)) => kernels.axpy_rows4_f32(a, w, yq),
                Some(Rows4::F16(w)) => kernels.axpy_rows4_f16(a, w, yq),
                #[cfg(feature = "i8-kernels")]
                Some(Rows4::I8(w, scale)) => {
                    // `row_axpy`'s int8 form: `y += (alpha * scale) * q`.
                    let a = core::array::from_fn(|i| a[i] * scale[i]);
                    axpy_rows4_i8(a, w, yq);
                    for (j, yc) in yt.iter_mut().enumerate() {
                        for (i, &ai) in a.iter().enumerate() {
                            *yc += ai * (self.bytes[(r + i) * self.cols + main + j] as i8) as f32;
                        }
                    }
                    r += BLOCK_ROWS;
                    continue;
                }
                // No block kernel for these rows (odd addresses, non-finite f16, int8 or f32 rows in a build
                // without their fast kernels): the per-row kernel.
                _ => {
                    a.iter().enumerate().for_each(|(i, &ai)| self.row_axpy(r + i, ai, y));
                    r += BLOCK_ROWS;
                    continue;
                }
            }
            for (j, yc) in yt.iter_mut().enumerate() {
                for (i, &ai) in a.iter().enumerate() {
                    *yc += ai * self.get(r + i, main + j);
                }
            }
            r += BLOCK_ROWS;
        }
        for (i, &a) in tail.iter().enumerate() {
            self.row_axpy(r + i, a, y);
        }
    }

    /// The chunked parts of rows `r..r + 4` for the block kernels: f32 rows when the data is 4-byte aligned
    /// (little-endian targets: the bytes already are the values), f16 rows when they are 4-byte aligned and
    /// every value is finite, int8 rows always (with their scales; these use the portable kernels whatever
    /// `kernels` says); `None` otherwise (odd addresses, non-finite f16), which takes the per-row kernels.
    #[inline(always)]
    fn rows4(&self, r: usize) -> Option<Rows4<'a>> {
        self.rows4_from(r, 4)
    }

    /// As [`Tensor::rows4`] for the `n` (1 to 4) rows `r..r + n`; slots `n..4` repeat row `r + n - 1`. No
    /// int8 rows for `n < 4`.
    #[inline(always)]
    fn rows4_from(&self, r: usize, n: usize) -> Option<Rows4<'a>> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let main = self.cols - self.cols % 4;
        let row = |i: usize| r + i.min(n - 1);
        match self.dtype {
            DType::F32 => {
                let all: &'a [f32] = bytemuck::try_cast_slice(&self.bytes[..self.rows * self.cols * 4]).ok()?;
                Some(Rows4::F32(core::array::from_fn(|i| {
                    let start = row(i) * self.cols;
                    all[start..start + main].as_chunks::<4>().0
                })))
            }
            DType::F16 if self.f16_finite => {
                let mut w: [&'a [[u32; 2]]; 4] = [&[]; 4];
                for (i, wi) in w.iter_mut().enumerate() {
                    let start = 2 * row(i) * self.cols;
                    *wi = bytemuck::try_cast_slice(&self.bytes[start..start + 2 * main]).ok()?;
                }
                Some(Rows4::F16(w))
            }
            #[cfg(feature = "i8-kernels")]
            DType::I8 if n == 4 => {
                let scale = core::array::from_fn(|i| self.row_scale(r + i));
                Some(Rows4::I8(
                    core::array::from_fn(|i| self.bytes[(r + i) * self.cols..][..main].as_chunks::<4>().0),
                    scale,
                ))
            }
            // Non-finite f16, int8 for fewer than four rows, or a storage type whose fast kernels this build
            // leaves out: the per-row kernels.
            _ => None,
        }
    }

    /// The element-wise reference for [`Tensor::row_dot`] (same order, decoding one element at a time with
    /// `half` for f16): the test oracle and the benchmarks' slow baseline.
    ///
    /// # Panics
    /// If `r >= rows` or `x.len() != cols`.
    pub fn row_dot_reference(&self, r: usize, x: &[f32]) -> f32 {
        contract!(r < self.rows && x.len() == self.cols, "row_dot: bad row or input length");
        let start = r * self.cols;
        match self.dtype {
            DType::F32 => dot4(x, |c| le_f32(self.bytes, start + c)),
            DType::F16 => dot4(x, |c| le_f16(self.bytes, start + c)),
            #[cfg(feature = "int8")]
            DType::I8 => dot4(x, |c| (self.bytes[start + c] as i8) as f32) * self.row_scale(r),
            // No int8 tensor exists without the feature (`Tensor::new` refuses them).
            #[cfg(not(feature = "int8"))]
            DType::I8 => f32::NAN,
        }
    }

    /// The element-wise reference for [`Tensor::row_axpy`] (test oracle and benchmark baseline).
    ///
    /// # Panics
    /// If `r >= rows` or `y.len() != cols`.
    pub fn row_axpy_reference(&self, r: usize, alpha: f32, y: &mut [f32]) {
        contract!(r < self.rows && y.len() == self.cols, "row_axpy: bad row or output length");
        let start = r * self.cols;
        match self.dtype {
            DType::F32 => y.iter_mut().enumerate().for_each(|(c, v)| *v += alpha * le_f32(self.bytes, start + c)),
            DType::F16 => y.iter_mut().enumerate().for_each(|(c, v)| *v += alpha * le_f16(self.bytes, start + c)),
            #[cfg(feature = "int8")]
            DType::I8 => {
                let a = alpha * self.row_scale(r);
                y.iter_mut().enumerate().for_each(|(c, v)| *v += a * (self.bytes[start + c] as i8) as f32)
            }
            // As in `row_dot_reference`.
            #[cfg(not(feature = "int8"))]
            DType::I8 => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic test data without depending on `rng` (SplitMix-style integer hash to [-1, 1)).
    fn data(n: usize, salt: u64) -> [f32; 64] {
        let mut out = [0.0f32; 64];
        for (i, o) in out.iter_mut().enumerate().take(n) {
            let mut z = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z ^= z >> 31;
            *o = (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        }
        out
    }

    #[test]
    fn dot4_follows_the_documented_order_bit_for_bit() {
        for n in 0..=13 {
            let a = data(n, 1);
            let b = data(n, 2);
            let (x, w) = (&a[..n], &b[..n]);
            // The documented order, written out longhand.
            let mut s = [0.0f32; 4];
            let main = n - n % 4;
            for c in 0..main {
                s[c % 4] += x[c] * w[c];
            }
            for (j, c) in (main..n).enumerate() {
                s[j] += x[c] * w[c];
            }
            let want = (s[0] + s[1]) + (s[2] + s[3]);
            assert_eq!(dot(x, w).to_bits(), want.to_bits(), "n = {n}");
        }
    }

    #[test]
    fn dot4_matches_an_f64_reference() {
        for n in [1usize, 3, 4, 7, 16, 63, 64] {
            let a = data(n, 3);
            let b = data(n, 4);
            let reference: f64 = a[..n].iter().zip(&b[..n]).map(|(&x, &y)| x as f64 * y as f64).sum();
            let abs_sum: f64 = a[..n].iter().zip(&b[..n]).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum();
            let err = (dot(&a[..n], &b[..n]) as f64 - reference).abs();
            // Standard bound for recursive summation in blocks of n/4: (n/4 + 2) * eps * sum |x_i w_i|.
            let bound = ((n / 4 + 2) as f64) * f32::EPSILON as f64 * abs_sum;
            assert!(err <= bound, "n = {n}: error {err:e} exceeds {bound:e}");
        }
    }

    #[test]
    fn byte_row_kernels_are_bit_identical_to_dot4() {
        for n in 0..=37 {
            let xa = data(n.min(64), 5);
            let wa = data(n.min(64), 6);
            let (x, w) = (&xa[..n], &wa[..n]);
            let f32_row: [u8; 256] = {
                let mut b = [0u8; 256];
                for (c, v) in w.iter().enumerate() {
                    b[4 * c..4 * c + 4].copy_from_slice(&v.to_le_bytes());
                }
                b
            };
            let f16_row: [u8; 128] = {
                let mut b = [0u8; 128];
                for (c, v) in w.iter().enumerate() {
                    b[2 * c..2 * c + 2].copy_from_slice(&half::f16::from_f32(*v).to_le_bytes());
                }
                b
            };
            let i8_row: [u8; 64] = {
                let mut b = [0u8; 64];
                for (c, v) in w.iter().enumerate() {
                    b[c] = ((v * 127.0) as i8) as u8;
                }
                b
            };
            let f32_ref = dot4(x, |c| w[c]);
            let f16_ref = dot4(x, |c| half::f16::from_f32(w[c]).to_f32());
            let i8_ref = dot4(x, |c| (i8_row[c] as i8) as f32);
            assert_eq!(dot4_f32_le(x, &f32_row[..4 * n]).to_bits(), f32_ref.to_bits(), "f32 n = {n}");
            assert_eq!(dot4_f16_le(x, &f16_row[..2 * n]).to_bits(), f16_ref.to_bits(), "f16 n = {n}");
            assert_eq!(dot4_i8(x, &i8_row[..n]).to_bits(), i8_ref.to_bits(), "i8 n = {n}");

            let mut y = [0.25f32; 64];
            let mut want = [0.25f32; 64];
            axpy_f32_le(-1.5, &f32_row[..4 * n], &mut y[..n]);
            axpy(-1.5, w, &mut want[..n]);
            assert_eq!(y, want);
            let mut y = [0.0f32; 64];
            axpy_f16_le(2.0, &f16_row[..2 * n], &mut y[..n]);
            axpy_i8(0.5, &i8_row[..n], &mut y[..n]);
            for c in 0..n {
                let e = 2.0 * half::f16::from_f32(w[c]).to_f32() + 0.5 * (i8_row[c] as i8) as f32;
                assert_eq!(y[c], e);
            }
        }
    }

    #[test]
    fn f16_conversion_matches_half_for_every_input() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let got = f16_to_f32(h);
            assert_eq!(got.to_bits(), want.to_bits(), "f16 bits 0x{h:04x}");
        }
    }

    #[test]
    fn axpy_is_elementwise() {
        let x = [1.0f32, -2.0, 3.0];
        let mut y = [0.5f32, 0.5, 0.5];
        axpy(2.0, &x, &mut y);
        assert_eq!(y, [2.5, -3.5, 6.5]);
    }
}
