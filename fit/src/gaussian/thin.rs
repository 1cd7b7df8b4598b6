//! The fit for few images of many pixels (`n < d`, e.g. faces: 400 images of 4,096 or 10,304 pixels),
//! from the `n x n` Gram matrix of the centred data instead of the `d x d` covariance.
//!
//! With `X_c` the centred data (`n x d`, rows = images) and `G = X_c X_c^T = V diag(s) V^T`, the covariance
//! `Sigma = X_c^T X_c / (n - ddof)` has the same nonzero eigenvalues `lambda_i = s_i / (n - ddof)` and the
//! eigenvectors `u_i = X_c^T v_i / sqrt(s_i)` (the thin SVD `X_c = V diag(sqrt s) U^T`); all its other
//! eigenvalues are 0. So the cost is `n^2 d / 2` multiply-adds for `G`, an `n x n` eigendecomposition and
//! `k n d` for the kept vectors, against `n d^2 / 2` and a `d x d` decomposition for the covariance path,
//! and the memory `O(n d)` instead of `O(d^2)`.
//!
//! **Accuracy.** `u_i` computed this way has an orthogonality error of about `eps s_1 / s_i`; the kept
//! vectors are re-orthonormalised (modified Gram-Schmidt, in descending order, twice), which also supplies a
//! unit vector where `s_i` is round-off (rank-deficient data asked for more vectors than it has directions).
//! Tested against the covariance path (eigenvalues to 1e-10 relative, subspace angles).
//!
//! **8-bit data.** When every value is a reader's 8-bit level and the CPU has AVX-512 VNNI (the covariance
//! path's condition), `G` comes from integers instead (`levels::centred_gram`: the levels transposed, their
//! Gram product over the pixels by `gaussdiff-gram`, one division per entry), the correctly rounded Gram
//! matrix of the exact values `(2 l - 255) / 255`; the mean and `U` still take the f32 values.
//!
//! **Determinism.** The mean sums every pixel's deviations from the first image over the images in order;
//! `G` (unless from integers) and `U^T = diag(s^-1/2) V^T X_c` are faer products, which sum every entry in
//! the same order whatever the thread count; the `n x n` eigensolver is the covariance path's
//! (`eigh_descending`). Signs follow the same rule (largest-magnitude component positive).

use faer::linalg::matmul::{self, triangular};
use faer::{Accum, Mat, MatMut, MatRef};
use rayon::prelude::*;

use super::levels::{self, LevelPath};
use super::{eigh_descending, eigh_top, par, FitError};

/// The centred data and the eigendecomposition of its Gram matrix: everything the fit needs before it
/// knows the rank.
pub(super) struct ThinGram {
    d: usize,
    n: usize,
    /// The mean, length `d`.
    pub mean: Vec<f64>,
    /// Centred data, `n x d` row-major.
    xc: Vec<f64>,
    /// Eigenvalues of `G`, descending, and its eigenvectors as rows (`n x n`).
    eig: super::Eigen,
    /// `1 / (n - ddof)`.
    scale: f64,
    trace_g: f64,
}

impl ThinGram {
    /// Mean, centred data and the eigendecomposition of `G = X_c X_c^T` for `images` (`n x d` row-major):
    /// all `n` eigenpairs, or with `top = Some(k)` only the largest `k` ([`super::eigh_top`], the partial
    /// solver where it pays off).
    pub fn new(images: &[f32], d: usize, ddof: usize, top: Option<usize>) -> Result<Self, FitError> {
        let n = images.len() / d;
        let (mean, _) = mean_and_scatter(images, d)?;
        // G from exact integers for 8-bit images where the VNNI kernel runs (as the covariance path's
        // moments), before the centred data is made, so that the two are not held at once.
        let exact = LevelPath::Auto.kernel().and_then(|kernel| levels::centred_gram(images, d, kernel));
        let mut xc = vec![0.0f64; n * d];
        center_rows(&mut xc, images, &mean);
        let g = exact.unwrap_or_else(|| {
            // G = X_c X_c^T (n x n, lower triangle); X_c row-major is X_c^T column-major (d x n).
            let xt = MatRef::from_column_major_slice(&xc, d, n);
            let mut g = Mat::<f64>::zeros(n, n);
            triangular::matmul(
                g.as_mut(),
                triangular::BlockStructure::TriangularLower,
                Accum::Replace,
                xt.transpose(),
                triangular::BlockStructure::Rectangular,
                xt,
                triangular::BlockStructure::Rectangular,
                1.0,
                par(),
            );
            g
        });
        let trace_g: f64 = (0..n).map(|i| g[(i, i)]).sum();
        let eig = match top {
            Some(k) => eigh_top(g.as_ref(), k)?,
            None => eigh_descending(g.as_ref())?,
        };
        Ok(Self { d, n, mean, xc, eig, scale: 1.0 / (n - ddof) as f64, trace_g })
    }

    /// The covariance's eigenvalues that `G` gives (`min(n, d)` of them, or the `k` asked for, descending,
    /// clamped at 0); the remaining ones are 0 (or not computed).
    pub fn values(&self) -> Vec<f64> {
        self.eig.values.iter().take(self.n.min(self.d)).map(|&s| s.max(0.0) * self.scale).collect()
    }

    /// The covariance's trace (the total variance).
    pub fn trace(&self) -> f64 {
        self.trace_g * self.scale
    }

    /// The top `k` eigenvectors of the covariance as rows (`k x d` row-major), orthonormal, signs fixed.
    pub fn vectors(&self, k: usize) -> Vec<f64> {
        let (n, d) = (self.n, self.d);
        let k = k.min(n.min(d));
        let xt = MatRef::from_column_major_slice(&self.xc, d, n);
        // U (d x k) = X_c^T V_k diag(s^-1/2); directions with s at round-off level get 0 here and a unit
        // vector from the re-orthonormalisation.
        let s_max = self.eig.values.first().copied().unwrap_or(0.0).max(0.0);
        let tiny = s_max * f64::EPSILON * n as f64;
        let vk = Mat::<f64>::from_fn(n, k, |i, j| {
            let s = self.eig.values[j];
            if s > tiny {
                self.eig.vectors[j * n + i] / s.sqrt()
            } else {
                0.0
            }
        });
        // U column-major (d x k) is U^T row-major (k x d): the product goes straight into the rows.
        let mut u_t = vec![0.0f64; k * d];
        let u = MatMut::from_column_major_slice_mut(&mut u_t, d, k);
        matmul::matmul(u, Accum::Replace, xt, vk.as_ref(), 1.0, par());
        orthonormalise(&mut u_t, d);
        fix_signs(&mut u_t, d);
        u_t
    }
}

/// `dst = src - mean` row by row, in f64 (`src` a whole number of rows of `mean.len()` pixels; `dst` the same
/// length): the centred data of the Gram and randomized paths.
pub(super) fn center_rows(dst: &mut [f64], src: &[f32], mean: &[f64]) {
    let d = mean.len();
    dst.par_chunks_mut(d).zip(src.par_chunks(d)).for_each(|(row, img)| {
        for ((o, &v), &m) in row.iter_mut().zip(img).zip(mean) {
            *o = f64::from(v) - m;
        }
    });
}

/// Pixels per parallel task of [`mean_and_scatter`]: 2 KiB of each image's f32 row, so that a task reads
/// runs the prefetcher follows (blocks of 64 pixels, 256 B at the row stride, made the 50,000 x 3,072 mean
/// four times slower).
const MEAN_BLOCK: usize = 512;

/// Mean of `images` (`n x d` row-major) and their centred sum of squares `sum_i ||x_i - mu||^2`, in one
/// pass over the data. Each pixel's deviations from the first image, `a_p = sum_i (x_ip - x_0p)` and
/// `b_p = sum_i (x_ip - x_0p)^2`, are summed over the images in order (f64), so the bits do not depend on
/// the thread count; then `mu_p = x_0p + a_p / n` (a constant pixel gets its value exactly) and the pixel's
/// centred sum of squares is `b_p - a_p^2 / n` (data shifted by one of its images: the cancellation costs
/// digits only for a pixel whose first value lies many standard deviations out). Errors on the first
/// non-finite value.
pub(super) fn mean_and_scatter(images: &[f32], d: usize) -> Result<(Vec<f64>, f64), FitError> {
    let n = images.len() / d;
    let first = &images[..d];
    let mut mean = vec![0.0f64; d];
    let mut scatter = vec![0.0f64; d];
    mean.par_chunks_mut(MEAN_BLOCK).zip(scatter.par_chunks_mut(MEAN_BLOCK)).enumerate().for_each(|(blk, (a, b))| {
        let p0 = blk * MEAN_BLOCK;
        let f = &first[p0..p0 + a.len()];
        for img in images.chunks_exact(d) {
            for (((a, b), &v), &f) in a.iter_mut().zip(b.iter_mut()).zip(&img[p0..]).zip(f) {
                let dv = f64::from(v) - f64::from(f);
                *a += dv;
                *b += dv * dv;
            }
        }
        for ((a, b), &f) in a.iter_mut().zip(b.iter_mut()).zip(f) {
            let shift = *a / n as f64;
            *b = (*b - *a * shift).max(0.0);
            *a = f64::from(f) + shift;
        }
    });
    // A NaN or infinity makes its pixel's sums non-finite (f32 values cannot overflow an f64 sum); only then
    // is the data searched for the first bad value.
    if mean.iter().chain(&scatter).any(|m| !m.is_finite()) {
        if let Some(pos) = images.iter().position(|v| !v.is_finite()) {
            return Err(FitError::NonFinite { image: pos / d, pixel: pos % d, value: images[pos] });
        }
    }
    Ok((mean, scatter.iter().sum()))
}

/// Orthonormalise the rows (`k x d` row-major), keeping their order and span: Cholesky QR twice ("CholQR2",
/// Yamamoto et al. 2015), matrix products that run at faer's GEMM rate, which suits rows that are already
/// nearly orthonormal (the Gram and randomized paths' vectors); rows that are rank-deficient or too far from
/// orthonormal for Cholesky go through modified Gram-Schmidt ([`gram_schmidt`]).
pub(super) fn orthonormalise(rows: &mut [f64], d: usize) {
    if !(cholesky_qr(rows, d) && cholesky_qr(rows, d)) {
        gram_schmidt(rows, d);
    }
}

/// One Cholesky QR step: `A <- L^-1 A` with `A A^T = L L^T`. `false` (rows unchanged) if `A A^T` is not
/// safely positive definite (a pivot below `1e-10` of the largest diagonal entry).
fn cholesky_qr(rows: &mut [f64], d: usize) -> bool {
    let k = rows.len() / d.max(1);
    if k == 0 {
        return true;
    }
    let a = MatRef::from_row_major_slice(rows, k, d);
    let mut g = Mat::<f64>::zeros(k, k);
    matmul::matmul(g.as_mut(), Accum::Replace, a, a.transpose(), 1.0, par());
    // Cholesky G = L L^T (lower), sequential: k is at most a few hundred.
    let gmax = (0..k).map(|i| g[(i, i)]).fold(0.0f64, f64::max);
    let mut l = Mat::<f64>::zeros(k, k);
    for j in 0..k {
        let mut diag = g[(j, j)];
        for p in 0..j {
            diag -= l[(j, p)] * l[(j, p)];
        }
        if diag.is_nan() || diag <= 1e-10 * gmax {
            return false;
        }
        let ljj = diag.sqrt();
        l[(j, j)] = ljj;
        for i in j + 1..k {
            let mut v = g[(i, j)];
            for p in 0..j {
                v -= l[(i, p)] * l[(j, p)];
            }
            l[(i, j)] = v / ljj;
        }
    }
    // L^-1 (lower), column by column by forward substitution.
    let mut li = Mat::<f64>::zeros(k, k);
    for c in 0..k {
        for i in c..k {
            let mut v = if i == c { 1.0 } else { 0.0 };
            for p in c..i {
                v -= l[(i, p)] * li[(p, c)];
            }
            li[(i, c)] = v / l[(i, i)];
        }
    }
    // The product row-major, as the rows are (then one copy back, not a transpose).
    let mut q = vec![0.0f64; k * d];
    matmul::matmul(MatMut::from_row_major_slice_mut(&mut q, k, d), Accum::Replace, li.as_ref(), a, 1.0, par());
    rows.copy_from_slice(&q);
    true
}

/// Modified Gram-Schmidt over the rows, twice ("twice is enough", Giraud et al. 2005); a row that vanishes
/// (no direction of its own) is replaced by the first unit vector `e_p` that keeps a norm above 1/2 after
/// the projection.
fn gram_schmidt(rows: &mut [f64], d: usize) {
    let k = rows.len() / d;
    for j in 0..k {
        let (done, rest) = rows.split_at_mut(j * d);
        let row = &mut rest[..d];
        let norm0 = norm(row);
        for _ in 0..2 {
            project_out(row, done, d);
        }
        let mut nrm = norm(row);
        if nrm <= 1e-8 * norm0.max(f64::MIN_POSITIVE) || norm0 == 0.0 {
            for p in 0..d {
                row.iter_mut().for_each(|v| *v = 0.0);
                row[p] = 1.0;
                for _ in 0..2 {
                    project_out(row, done, d);
                }
                nrm = norm(row);
                if nrm > 0.5 {
                    break;
                }
            }
        }
        row.iter_mut().for_each(|v| *v /= nrm);
    }
}

/// Euclidean norm.
pub(super) fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn project_out(row: &mut [f64], done: &[f64], d: usize) {
    for q in done.chunks_exact(d) {
        let dot: f64 = q.iter().zip(row.iter()).map(|(a, b)| a * b).sum();
        row.iter_mut().zip(q).for_each(|(r, &qv)| *r -= dot * qv);
    }
}

/// The covariance path's sign rule: each row's largest-magnitude component (the first one on a tie) is
/// positive.
pub(super) fn fix_signs(rows: &mut [f64], d: usize) {
    rows.par_chunks_mut(d).for_each(|row| {
        let mut arg = 0;
        for i in 1..d {
            if row[i].abs() > row[arg].abs() {
                arg = i;
            }
        }
        if row[arg] < 0.0 {
            row.iter_mut().for_each(|v| *v = -*v);
        }
    });
}
