//! The on-target kernel benchmark and self-checks, run once before the application: timings of the
//! matrix-vector kernels (the Cortex-M4F assembly ones of [`crate::kernels`] and the portable ones of
//! `gaussdiff-core`) and bit-for-bit comparisons of the two, reported as `stat` lines
//! (`docs/frame-protocol.md`).

use core::hint::black_box;

use gaussdiff_core::denoiser::{Denoiser, Model};
use gaussdiff_core::kernels::{BlockKernels, PORTABLE};
use gaussdiff_core::rng::Rng;
use gaussdiff_core::tensor::{DType, Tensor};

use crate::app::{self, stat, Counter};
use crate::config::{self, Aligned, DIM, SCRATCH};
use crate::kernels;

/// Measures the matrix-vector kernels on the blob's `U^T` (and on an f32 copy of its first rows, and on a
/// naive single-accumulator f32 loop as the baseline) and reports `stat` lines, `dtype` as in the blob
/// format:
///
/// * `kernel=0`: one `Denoiser::denoise` with the assembly kernels (what the samplers run), `macs` its
///   multiply-adds; `kernel=5`: the same evaluation with the portable Rust kernels; `match=1` when both
///   give the same bits;
/// * `kernel=1` / `kernel=2`: `Tensor::rows_dot_with` / `rows_axpy` over all rows with the portable kernels;
///   `kernel=3` / `kernel=4`: the same with the assembly kernels, `match=1` when the bits agree with 1 / 2;
/// * `kernel=9`: the naive baseline dot over the f32 copy;
/// * `kernel=6`: odd chunk counts and tails ([`check_odd_shapes`]); `kernel=7`: the square root ([`check_sqrt`]).
///
/// Does nothing for a linear model or a blob that does not parse (the run reports that).
#[inline(never)]
pub fn bench<W: embedded_io::Write, C: Counter>(out: &mut W, counter: &mut C) -> Result<(), W::Error> {
    let Ok((_, Model::Gaussian(g))) = app::parse(&config::BLOB.0) else { return Ok(()) };
    let u_t = g.u_t();
    if u_t.cols() != DIM || g.scratch_len() > SCRATCH {
        return Ok(());
    }
    let mut x = [0.0f32; DIM];
    let mut y = [0.0f32; DIM];
    Rng::new(1).fill_normal(&mut x);
    // One denoiser evaluation (what the samplers call), assembly kernels then portable ones.
    {
        let mut scratch = [0.0f32; SCRATCH];
        let mut y_portable = [0.0f32; DIM];
        // `app::parse` gives the assembly kernels; the same denoiser with the portable ones for comparison.
        let (g_fast, g) = (g, g.with_kernels(&PORTABLE));
        let t0 = counter.now();
        g_fast.denoise(black_box(&x), black_box(1.0), &mut y, &mut scratch);
        let t1 = counter.now();
        black_box(&y);
        let t2 = counter.now();
        g.denoise(black_box(&x), black_box(1.0), &mut y_portable, &mut scratch);
        let t3 = counter.now();
        black_box(&y_portable);
        let macs = g.macs_per_eval();
        let same = u64::from(same_bits(&y, &y_portable));
        let dtype = u_t.dtype() as u64;
        stat(out, &[("kernel", 0), ("dtype", dtype), ("macs", macs), (C::KEY, t1 - t0), ("match", same)])?;
        stat(out, &[("kernel", 5), ("dtype", dtype), ("macs", macs), (C::KEY, t3 - t2)])?;
    }
    measure(out, counter, &u_t, &x)?;

    // An f32 copy of the first rows, 16-byte aligned, to measure the f32 path whatever the blob stores.
    const ROWS: usize = 8;
    let rows = ROWS.min(u_t.rows());
    let mut buf = Aligned([0u8; ROWS * DIM * 4]);
    let mut row = [0.0f32; DIM];
    for r in 0..rows {
        u_t.decode_row(r, &mut row);
        for (c, v) in row.iter().enumerate() {
            buf.0[(r * DIM + c) * 4..][..4].copy_from_slice(&v.to_le_bytes());
        }
    }
    if let Ok(t) = Tensor::new(DType::F32, rows, DIM, &buf.0[..rows * DIM * 4]) {
        measure(out, counter, &t, &x)?;
        // Baseline: the naive kernel (one accumulator, byte-wise little-endian loads).
        let t0 = counter.now();
        let mut acc = 0.0f32;
        for r in 0..rows {
            acc += naive_dot(black_box(&buf.0[r * DIM * 4..(r + 1) * DIM * 4]), black_box(&x));
        }
        let t1 = counter.now();
        black_box(acc);
        stat(out, &[("kernel", 9), ("dtype", 0), ("rows", rows as u64), ("cols", DIM as u64), (C::KEY, t1 - t0)])?;
    }
    check_odd_shapes(out, &buf.0[..rows * DIM * 4], rows, &x)?;
    check_sqrt(out)
}

/// `kernel=7`: the assembly kernels' square root (`vsqrt.f32`) against libm's `sqrtf` (the portable kernels')
/// on `2^20` non-negative bit patterns spread over every exponent (zero, subnormals, normals, infinity);
/// `match=1` when all agree.
fn check_sqrt<W: embedded_io::Write>(out: &mut W) -> Result<(), W::Error> {
    const STEP: u32 = 0x7f80_0000 / (1 << 20);
    let same = (0..=(1u32 << 20)).all(|i| {
        let x = f32::from_bits((i * STEP).min(0x7f80_0000));
        kernels::M4F.sqrt(black_box(x)).to_bits() == PORTABLE.sqrt(x).to_bits()
    });
    stat(out, &[("kernel", 7), ("values", 1 << 20), ("match", u64::from(same))])
}

/// `kernel=6` lines: the assembly kernels (four-row dot and axpy, one-row axpy) against the portable ones
/// (`match=1` when the bits agree) on
/// `cols = DIM - 2` columns, an odd number of 4-element chunks plus a 2-element tail (the paths the
/// default blobs' shapes never take): f32 rows (the first values of `f32_rows`) and f16 rows of
/// pseudo-random finite binary16 bits (subnormals included).
fn check_odd_shapes<W: embedded_io::Write>(
    out: &mut W,
    f32_rows: &[u8],
    rows: usize,
    x: &[f32],
) -> Result<(), W::Error> {
    const COLS: usize = if DIM >= 6 { DIM - 2 } else { DIM };
    const ROWS: usize = 8;
    let rows = rows.min(ROWS);
    let mut b32 = Aligned([0u8; ROWS * COLS * 4]);
    let mut b16 = Aligned([0u8; ROWS * COLS * 2]);
    for r in 0..rows {
        let src = &f32_rows[r * DIM * 4..][..COLS * 4];
        b32.0[r * COLS * 4..][..COLS * 4].copy_from_slice(src);
        for c in 0..COLS {
            let z = ((r * COLS + c) as u32).wrapping_mul(0x9e37_79b9) >> 16;
            // Bit 14 clear: exponent at most 15, so finite (|v| < 2), subnormals included.
            let h = (z as u16) & 0xbfff;
            b16.0[(r * COLS + c) * 2..][..2].copy_from_slice(&h.to_le_bytes());
        }
    }
    let x = &x[..COLS];
    let mut alpha = [0.0f32; ROWS];
    for (i, a) in alpha.iter_mut().enumerate() {
        *a = 0.25 * i as f32 - 0.9;
    }
    let tensors = [(DType::F32, &b32.0[..rows * COLS * 4]), (DType::F16, &b16.0[..rows * COLS * 2])];
    for (dtype, bytes) in tensors {
        let Ok(t) = Tensor::new(dtype, rows, COLS, bytes) else { continue };
        let mut dots = [[0.0f32; ROWS]; 2];
        let mut ys = [[0.5f32; COLS]; 2];
        let mut ys1 = [[0.5f32; COLS]; 2];
        let kernels: [&dyn BlockKernels; 2] = [&PORTABLE, &kernels::M4F];
        for (which, k) in kernels.into_iter().enumerate() {
            t.rows_dot_with(k, 0, x, &mut dots[which][..rows]);
            t.rows_axpy_with(k, 0, &alpha[..rows], &mut ys[which]);
            // One-row axpys (the mean passes), with a coefficient beyond the f16 fold limit too.
            t.row_axpy_with(k, 0, -1.0, &mut ys1[which]);
            t.row_axpy_with(k, rows - 1, 1.5e5, &mut ys1[which]);
        }
        let same = same_bits(&dots[0], &dots[1]) && same_bits(&ys[0], &ys[1]) && same_bits(&ys1[0], &ys1[1]);
        stat(
            out,
            &[
                ("kernel", 6),
                ("dtype", dtype as u64),
                ("rows", rows as u64),
                ("cols", COLS as u64),
                ("match", u64::from(same)),
            ],
        )?;
    }
    Ok(())
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits())
}

/// One accumulator, bytes decoded one at a time: the first kernel this project measured (4.28 instr/MAC).
#[inline(never)]
fn naive_dot(w: &[u8], x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (c, xc) in x.iter().enumerate() {
        s += xc * f32::from_le_bytes([w[4 * c], w[4 * c + 1], w[4 * c + 2], w[4 * c + 3]]);
    }
    s
}

/// Times `Tensor::rows_dot_with` (kernel 1) and `rows_axpy` (kernel 2) over all rows of `t` with the portable
/// kernels, then the same with the assembly kernels (kernels 3 and 4, with `match=1` when their bits agree).
fn measure<W: embedded_io::Write, C: Counter>(
    out: &mut W,
    counter: &mut C,
    t: &Tensor<'_>,
    x: &[f32],
) -> Result<(), W::Error> {
    const MAX_ROWS: usize = 128;
    let n = t.rows().min(MAX_ROWS);
    let dtype = t.dtype() as u64;
    let (rows, cols) = (n as u64, t.cols() as u64);
    let mut dots = [[0.0f32; MAX_ROWS]; 2];
    let mut ys = [[0.0f32; DIM]; 2];
    let mut alpha = [0.0f32; MAX_ROWS];
    for (i, a) in alpha.iter_mut().enumerate().take(n) {
        *a = 1e-3 * (i as f32 - 3.5);
    }
    let kernels: [&dyn BlockKernels; 2] = [&PORTABLE, &kernels::M4F];
    for (which, k) in kernels.into_iter().enumerate() {
        let t0 = counter.now();
        black_box(t).rows_dot_with(k, 0, black_box(x), &mut dots[which][..n]);
        let t1 = counter.now();
        black_box(&dots[which]);
        let t2 = counter.now();
        black_box(t).rows_axpy_with(k, 0, black_box(&alpha[..n]), &mut ys[which][..t.cols()]);
        let t3 = counter.now();
        black_box(&ys[which]);
        let (kd, ka) = (1 + 2 * which as u64, 2 + 2 * which as u64);
        if which == 0 {
            stat(out, &[("kernel", kd), ("dtype", dtype), ("rows", rows), ("cols", cols), (C::KEY, t1 - t0)])?;
            stat(out, &[("kernel", ka), ("dtype", dtype), ("rows", rows), ("cols", cols), (C::KEY, t3 - t2)])?;
        } else {
            let dot_same = u64::from(same_bits(&dots[0], &dots[1]));
            let axpy_same = u64::from(same_bits(&ys[0], &ys[1]));
            let (dt, at) = (t1 - t0, t3 - t2);
            stat(
                out,
                &[("kernel", kd), ("dtype", dtype), ("rows", rows), ("cols", cols), (C::KEY, dt), ("match", dot_same)],
            )?;
            stat(
                out,
                &[("kernel", ka), ("dtype", dtype), ("rows", rows), ("cols", cols), (C::KEY, at), ("match", axpy_same)],
            )?;
        }
    }
    Ok(())
}
