//! The fit for many images of many pixels and a small fixed rank (`n >= d`, `--rank K` with
//! `K + OVERSAMPLE` well below `d`; e.g. 50,000 CIFAR-sized images at rank 64): randomized subspace
//! iteration on the covariance (Halko, Martinsson & Tropp 2011, Algorithm 4.4, with Rayleigh-Ritz), streaming
//! over chunks of the data, so the memory is `O((m + d) l)` for chunks of `m` images and `l = K +
//! OVERSAMPLE` columns, never `d x d`.
//!
//! One iteration is one pass over the data: for each chunk `X_B` (centred on the fly with the mean of a first
//! pass) `Z += X_B^T (X_B Q)`, so `Z = X_c^T X_c Q = (n - ddof) Sigma Q`; then the Ritz values of
//! `Q^T Z` are compared with the previous iteration's and `Q = orth(Z)`. The start `Q` is a Gaussian
//! `d x l` matrix from [`Rng`] with a fixed seed, so the result is deterministic. Iteration stops when the
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
/// value's error is of the order of the residual squared): f32's epsilon `2^-23`, since the vectors are
/// stored in f32 at most (f16 and int8 blobs round far more).
pub(super) const TOL: f64 = f32::EPSILON as f64;
/// Most passes over the data.
pub(super) const MAX_ITERS: usize = 60;
/// Residual at which the f32 passes hand over to f64 (f32 products are good to about `1e-6` relative).
const F32_RESIDUAL: f64 = 1e-5;
/// Seed of the start matrix.
const SEED: u64 = 0x6761_7573_7364_6966; // "gausdif"

/// Images per chunk: about 8 MiB of f64.
fn chunk_rows(d: usize) -> usize {
    ((1usize << 20) / d.max(1)).clamp(64, 4096)
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
    let mean = thin::mean(images, d)?;
    let l = (k + OVERSAMPLE).min(d).min(n);
    let scale = 1.0 / (n - ddof) as f64;
    // Start: Gaussian d x l, orthonormal columns (stored as rows of q_t, l x d).
    let mut rng = Rng::new(SEED);
    let mut q_t: Vec<f64> = (0..l * d).map(|_| f64::from(rng.normal())).collect();
    thin::orthonormalise(&mut q_t, d);
    let m = chunk_rows(d);
    let mut trace = 0.0f64;
    let mut iterations = 0;
    // The first passes run in f32 (half the memory traffic, twice the GEMM rate) until the subspace is as
    // good as f32 can make it; the passes that reach TOL and give the result run in f64 (buffers made then).
    let mut single = Some(Pass::<f32>::new(m, d, l));
    let mut double: Option<Pass<f64>> = None;
    let mut last_residual = f64::INFINITY;
    loop {
        iterations += 1;
        let q = MatRef::from_row_major_slice(&q_t, l, d).transpose(); // d x l
                                                                      // Z = X_c^T X_c Q (d x l), one pass; the first (always f32) also gives the trace.
        let z = match single.as_mut() {
            Some(pass) => pass.product(images, &mean, &q_t, (iterations == 1).then_some(&mut trace)),
            None => double.get_or_insert_with(|| Pass::new(m, d, l)).product(images, &mean, &q_t, None),
        };
        if iterations == 1 {
            trace *= scale;
        }
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
        if single.is_some() {
            // f32 is done when its residual is at its rounding level or stops falling by 10x a pass.
            if residual <= F32_RESIDUAL || residual > 0.1 * last_residual {
                single = None;
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

/// The element type of a pass over the data: f32 for the early passes, f64 for the last ones.
trait Word: faer::traits::ComplexField + Copy {
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Word for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Word for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// The chunk buffers of a pass in `T`.
struct Pass<T: Word> {
    m: usize,
    d: usize,
    xb: Vec<T>,
    yb: Mat<T>,
}

impl<T: Word> Pass<T> {
    /// Buffers for chunks of `m` images of `d` pixels and `l` columns.
    fn new(m: usize, d: usize, l: usize) -> Self {
        Self { m, d, xb: vec![T::from_f64(0.0); m * d], yb: Mat::zeros(m, l) }
    }

    /// `Z = X_c^T X_c Q` (`q_t` = `Q^T`, `l x d`) with the centred chunks and the products in `T` (the centring
    /// itself in f64, then rounded), returned in f64; with `trace`, also adds `sum X_c^2` to it, in f64 from
    /// the unrounded centred values (row by row, rows in order).
    fn product(&mut self, images: &[f32], mean: &[f64], q_t: &[f64], mut trace: Option<&mut f64>) -> Mat<f64> {
        let (m, d) = (self.m, self.d);
        let l = q_t.len() / d;
        let q = Mat::<T>::from_fn(d, l, |i, c| T::from_f64(q_t[c * d + i]));
        let mut z = Mat::<T>::zeros(d, l);
        for chunk in images.chunks(m * d) {
            let rows = chunk.len() / d;
            let xbuf = &mut self.xb[..rows * d];
            let center = |(row, img): (&mut [T], &[f32])| {
                let mut s = 0.0f64;
                for ((o, &v), &mu) in row.iter_mut().zip(img).zip(mean) {
                    let c = f64::from(v) - mu;
                    s += c * c;
                    *o = T::from_f64(c);
                }
                s
            };
            let rows_iter = xbuf.par_chunks_mut(d).zip(chunk.par_chunks(d));
            match trace.as_deref_mut() {
                Some(tr) => *tr += rows_iter.map(center).collect::<Vec<f64>>().iter().sum::<f64>(),
                None => rows_iter.for_each(|r| {
                    center(r);
                }),
            }
            let x = MatRef::from_row_major_slice(xbuf, rows, d);
            let mut y = self.yb.as_mut().subrows_mut(0, rows);
            let one = T::from_f64(1.0);
            matmul::matmul(y.as_mut(), Accum::Replace, x, q.as_ref(), one, par());
            matmul::matmul(z.as_mut(), Accum::Add, x.transpose(), y.as_ref(), one, par());
        }
        Mat::from_fn(d, l, |i, c| z[(i, c)].to_f64())
    }
}
