//! The fit for many images of many pixels and a small fixed rank (`n >= d`, `--rank K` with
//! `K + OVERSAMPLE` well below `d`; e.g. 50,000 CIFAR-sized images at rank 64): randomized subspace
//! iteration on the covariance (Halko, Martinsson & Tropp 2011, Algorithm 4.4, with Rayleigh-Ritz), so the
//! memory beyond the images is `O((n + d) l)` for `l = K + OVERSAMPLE` columns (plus one chunk of centred
//! images in the f64 passes), never `d x d`.
//!
//! One iteration is one pass over the data giving `Z = X_c^T X_c Q = (n - ddof) Sigma Q`: the early passes in
//! f32 on the images as stored (the centring applied as rank-one corrections, `X_c Q = X Q - 1 mu^T Q`,
//! `X_c^T Y = X^T Y - mu 1^T Y`), the last ones in f64 on chunks `X_B` centred on the fly
//! (`Z += X_B^T (X_B Q)`); then the Ritz values of
//! `Q^T Z` are compared with the previous iteration's and `Q = orth(Z)`. The start `Q` is `l` centred
//! images at evenly spaced positions with a small Gaussian part from [`Rng`] with a fixed seed (see
//! [`start`]), so the result is deterministic. The f32 passes hand over to f64 when the next pass is
//! predicted to reach the tolerance (on low rank plus noise: 2 f32 passes and 1 f64). Iteration stops when the
//! residuals of the top `K` Ritz pairs are below [`TOL`] (relative to the largest; at most [`MAX_ITERS`] passes); the last pass's
//! Rayleigh-Ritz step gives the eigenpairs. The error of a Ritz value falls like `(lambda_{l+1} /
//! lambda_K)^(2 t)` after `t` passes, so data with a spectral gap after `K` (low rank plus noise: the case
//! this path is for) converges in a few passes; slowly decaying spectra take more, never an answer worse
//! than [`TOL`] unless [`MAX_ITERS`] is reached, which the result reports (`iterations`).
//!
//! Products are faer's (every entry summed in the same order whatever the thread count), chunks are
//! accumulated in order and the orthonormalisation is sequential, so the bits do not depend on the thread
//! count.

use faer::linalg::matmul;
use faer::{Accum, Mat, MatRef};
use gaussdiff_core::rng::Rng;
use rayon::prelude::*;

use super::{eigh_descending, par, thin, FitError};

/// Extra columns beyond the rank (Halko et al. recommend 5 to 10; more converges in fewer passes).
pub(super) const OVERSAMPLE: usize = 16;
/// Largest residual `||Sigma u_j - lambda_j u_j|| / lambda_1` of the top `K` Ritz pairs that ends the
/// iteration (the angle of `u_j` to its eigenvector is at most the residual over the relative gap; a Ritz
/// value's error is of the order of the residual squared): four units of f32 rounding, `2^-21`. The
/// vectors are stored in f32 at most (f16 and int8 blobs round far more), and the f32 passes leave `Q`
/// one or two units of f32 rounding from the exact subspace, so the f64 pass that checks it could not
/// reliably show `2^-23`; the Ritz values then err by about `1e-13` relative, and the vectors' angle
/// (`5e-7` over the relative gap) is far below any fit's sampling error (`1 / sqrt(n)`).
pub(super) const TOL: f64 = 4.0 * f32::EPSILON as f64;
/// Most passes over the data.
pub(super) const MAX_ITERS: usize = 60;
/// Residual at which the f32 passes have done all they can (their products are good to about `1e-6`
/// relative) and hand over to f64.
const F32_FLOOR: f64 = 1e-6;
/// Images per block of an f32 pass's `X^T Y` (summed in f32 within a block, in f64 across blocks).
const F32_BLOCK: usize = 2048;
/// Seed of the start matrix.
const SEED: u64 = 0x6761_7573_7364_6966; // "gausdif"

/// Images per chunk of an f64 pass: about 32 MiB of f64 (larger chunks keep faer's GEMM near its peak rate).
fn chunk_rows(d: usize) -> usize {
    ((4usize << 20) / d.max(1)).clamp(64, 4096)
}

/// Whether the randomized path pays off for rank `k` of `d` pixels: each pass costs `2 n d l`
/// multiply-adds against the covariance's `n d^2 / 2`, and a handful of passes are expected.
pub(super) fn worthwhile(k: usize, d: usize) -> bool {
    16 * (k + OVERSAMPLE) <= d
}

/// The result: the top `k` eigenvalues (descending) and eigenvectors (rows, `k x d`), the mean, the trace of
/// the covariance and the number of passes over the data.
pub(super) struct Randomized {
    pub mean: Vec<f64>,
    pub values: Vec<f64>,
    pub u_t: Vec<f64>,
    pub trace: f64,
    pub iterations: usize,
}

/// The top `k` eigenpairs of `X_c^T X_c / (n - ddof)` for `images` (`n x d` row-major).
pub(super) fn top_eigenpairs(images: &[f32], d: usize, k: usize, ddof: usize) -> Result<Randomized, FitError> {
    let n = images.len() / d;
    let (mean, scatter) = thin::mean_and_scatter(images, d)?;
    let l = (k + OVERSAMPLE).min(d).min(n);
    let scale = 1.0 / (n - ddof) as f64;
    let mut q_t = start(images, &mean, l);
    let trace = scatter * scale;
    let mut iterations = 0;
    // The first passes run in f32 on the images as they are (no copy: the centring is a rank-one correction,
    // and f32 GEMMs run at twice the f64 rate) until the subspace is as good as f32 can make it; the passes
    // that reach TOL and give the result run in f64 on centred chunks (buffers made then).
    let mut single = true;
    let mut double: Option<Pass> = None;
    let mut last_residual = f64::INFINITY;
    loop {
        iterations += 1;
        let q = MatRef::from_row_major_slice(&q_t, l, d).transpose(); // d x l
                                                                      // Z = X_c^T X_c Q (d x l), one pass over the data.
        let z = if single {
            product_f32(images, &mean, &q_t)
        } else {
            double.get_or_insert_with(|| Pass::new(chunk_rows(d), d, l)).product(images, &mean, &q_t)
        };
        // Rayleigh-Ritz: H = Q^T Z (l x l, symmetric), H = W diag(theta) W^T.
        let mut h = Mat::<f64>::zeros(l, l);
        matmul::matmul(h.as_mut(), Accum::Replace, q.transpose(), z.as_ref(), 1.0, par());
        let eig = eigh_descending(h.as_ref())?;
        let theta: Vec<f64> = eig.values.iter().take(k).map(|&v| v.max(0.0) * scale).collect();
        // Ritz vectors U = Q W_k (rows of u_t = W_k^T Q^T) and their residuals ||Z w_j - theta_j u_j||,
        // which bound the angle of u_j to the true eigenvector by residual / gap.
        let mut u_t = vec![0.0f64; k * d];
        let mut zw = vec![0.0f64; k * d];
        u_t.par_chunks_mut(d).zip(zw.par_chunks_mut(d)).enumerate().for_each(|(j, (row, zrow))| {
            let w = &eig.vectors[j * l..(j + 1) * l];
            for (c, &wc) in w.iter().enumerate() {
                let qc = &q_t[c * d..(c + 1) * d];
                row.iter_mut().zip(qc).for_each(|(o, &v)| *o += wc * v);
                zrow.iter_mut().zip(z.col(c).iter()).for_each(|(o, &v)| *o += wc * v);
            }
        });
        let top = eig.values[0].max(f64::MIN_POSITIVE);
        let residual = (0..k)
            .map(|j| {
                let th = eig.values[j];
                let r2: f64 = zw[j * d..(j + 1) * d]
                    .iter()
                    .zip(&u_t[j * d..(j + 1) * d])
                    .map(|(a, b)| (a - th * b).powi(2))
                    .sum();
                r2.sqrt() / top
            })
            .fold(0.0f64, f64::max);
        if single {
            // f32 hands over to f64 when the next pass, at the rate of the last one, is predicted to reach
            // TOL (so that f64 pass gives the result: the f32 product's rounding costs the next `Q` about
            // 3e-8), when f32 has reached its rounding level, or when it stops falling by 10x a pass. The
            // rate is unknown after the first pass (NaN: no comparison holds).
            let rate = if last_residual.is_finite() { residual / last_residual } else { f64::NAN };
            if residual * rate <= 0.5 * TOL || residual <= F32_FLOOR || rate > 0.1 {
                single = false;
            }
            last_residual = residual;
        } else if residual <= TOL || iterations >= MAX_ITERS {
            thin::orthonormalise(&mut u_t, d);
            thin::fix_signs(&mut u_t, d);
            return Ok(Randomized { mean, values: theta, u_t, trace, iterations });
        }
        // Q = orth(Z).
        q_t.par_chunks_mut(d).enumerate().for_each(|(c, row)| {
            for (i, o) in row.iter_mut().enumerate() {
                *o = z[(i, c)];
            }
        });
        thin::orthonormalise(&mut q_t, d);
    }
}

/// The start `Q` (`l x d`, orthonormal rows): `l` centred images at evenly spaced positions, each with a
/// Gaussian direction from [`Rng`] added at `1e-3` of its length. The centred images are draws of
/// `N(0, Sigma)`, i.e. `Sigma^(1/2) G`: half a pass of the iteration for free, against a Gaussian start's
/// none (on low rank plus noise this saves one pass of the data); the Gaussian part keeps the rows
/// independent when images repeat or the data have fewer than `l` dimensions.
fn start(images: &[f32], mean: &[f64], l: usize) -> Vec<f64> {
    let d = mean.len();
    let n = images.len() / d;
    let mut rng = Rng::new(SEED);
    let mut q_t = vec![0.0f64; l * d];
    let mut g = vec![0.0f64; d];
    for (c, row) in q_t.chunks_exact_mut(d).enumerate() {
        let img = &images[(c * n / l) * d..][..d];
        row.iter_mut().zip(img).zip(mean).for_each(|((o, &v), &mu)| *o = f64::from(v) - mu);
        g.iter_mut().for_each(|v| *v = f64::from(rng.normal()));
        let (rn, gn) = (thin::norm(row), thin::norm(&g));
        let (a, b) = (if rn > 0.0 { 1.0 / rn } else { 0.0 }, 1e-3 / gn.max(f64::MIN_POSITIVE));
        row.iter_mut().zip(&g).for_each(|(o, &v)| *o = a * *o + b * v);
    }
    thin::orthonormalise(&mut q_t, d);
    q_t
}

/// `Z = X_c^T X_c Q` (`q_t` = `Q^T`, `l x d`) in f32, straight from the images (no centred copy):
/// `Y = X Q - 1 (mu^T Q)` is `X_c Q`, and `X_c^T Y = X^T Y - mu (1^T Y)`. Products in f32 (faer's GEMM
/// over the whole `n x d` matrix), the two rank-one corrections in f64; returned in f64.
fn product_f32(images: &[f32], mean: &[f64], q_t: &[f64]) -> Mat<f64> {
    let d = mean.len();
    let (n, l) = (images.len() / d, q_t.len() / d);
    let x = MatRef::from_row_major_slice(images, n, d);
    let q = Mat::<f32>::from_fn(d, l, |i, c| q_t[c * d + i] as f32);
    // mu^T Q (1 x l), in f64.
    let mu_q: Vec<f64> = (0..l).map(|c| q_t[c * d..(c + 1) * d].iter().zip(mean).map(|(a, b)| a * b).sum()).collect();
    let mut y = Mat::<f32>::zeros(n, l);
    matmul::matmul(y.as_mut(), Accum::Replace, x, q.as_ref(), 1.0f32, par());
    for (c, &m) in mu_q.iter().enumerate() {
        y.col_mut(c).iter_mut().for_each(|v| *v = (f64::from(*v) - m) as f32);
    }
    // 1^T Y (1 x l), in f64 (zero up to rounding: the centred images sum to zero).
    let ones: Vec<f64> = (0..l).map(|c| y.col(c).iter().map(|&v| f64::from(v)).sum()).collect();
    // X^T Y by blocks of rows, each block's f32 product added into f64 in order: the f32 sums run over
    // F32_BLOCK images, not all n, so their rounding does not grow with n.
    let mut z = Mat::<f64>::from_fn(d, l, |i, c| -mean[i] * ones[c]);
    let mut zb = Mat::<f32>::zeros(d, l);
    for a in (0..n).step_by(F32_BLOCK) {
        let m = F32_BLOCK.min(n - a);
        matmul::matmul(
            zb.as_mut(),
            Accum::Replace,
            x.subrows(a, m).transpose(),
            y.as_ref().subrows(a, m),
            1.0f32,
            par(),
        );
        z.as_mut().col_iter_mut().zip(zb.col_iter()).for_each(|(zc, bc)| {
            zc.iter_mut().zip(bc.iter()).for_each(|(o, &v)| *o += f64::from(v));
        });
    }
    z
}

/// The chunk buffers of an f64 pass.
struct Pass {
    m: usize,
    d: usize,
    xb: Vec<f64>,
    yb: Mat<f64>,
}

impl Pass {
    /// Buffers for chunks of `m` images of `d` pixels and `l` columns.
    fn new(m: usize, d: usize, l: usize) -> Self {
        Self { m, d, xb: vec![0.0; m * d], yb: Mat::zeros(m, l) }
    }

    /// `Z = X_c^T X_c Q` (`q_t` = `Q^T`, `l x d`) in f64, chunk by chunk, each chunk centred into the buffer.
    fn product(&mut self, images: &[f32], mean: &[f64], q_t: &[f64]) -> Mat<f64> {
        let (m, d) = (self.m, self.d);
        let l = q_t.len() / d;
        let q = MatRef::from_row_major_slice(q_t, l, d).transpose();
        let mut z = Mat::<f64>::zeros(d, l);
        for chunk in images.chunks(m * d) {
            let rows = chunk.len() / d;
            let xbuf = &mut self.xb[..rows * d];
            xbuf.par_chunks_mut(d).zip(chunk.par_chunks(d)).for_each(|(row, img)| {
                for ((o, &v), &mu) in row.iter_mut().zip(img).zip(mean) {
                    *o = f64::from(v) - mu;
                }
            });
            let x = MatRef::from_row_major_slice(xbuf, rows, d);
            let mut y = self.yb.as_mut().subrows_mut(0, rows);
            matmul::matmul(y.as_mut(), Accum::Replace, x, q, 1.0, par());
            matmul::matmul(z.as_mut(), Accum::Add, x.transpose(), y.as_ref(), 1.0, par());
        }
        z
    }
}
