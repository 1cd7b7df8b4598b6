//! The Gaussian of the training data and its optimal denoiser, in f64.
//!
//! `D_G(x; sigma) = mu + U diag(lambda / (lambda + sigma^2)) U^T (x - mu)` with the full-rank
//! eigendecomposition `Sigma = U diag(lambda) U^T` of the data covariance (eigenvalues descending).
//! This is the reference that `metrics` compares the trained and distilled denoisers with.

use anyhow::{bail, Result};
use faer::{Mat, Side};

/// Mean and eigendecomposition of the training images' covariance (f64).
#[derive(Clone, Debug)]
pub struct Gaussian {
    /// Dimension d.
    pub d: usize,
    /// Mean (d).
    pub mu: Vec<f64>,
    /// Eigenvectors as rows, `d x d`, row i belongs to `lambda[i]`.
    pub u_rows: Vec<f64>,
    /// Eigenvalues, descending, clamped at 0.
    pub lambda: Vec<f64>,
}

impl Gaussian {
    /// Fit mean and (biased, 1/N) covariance of `images` (`n x d`), then eigendecompose with faer.
    ///
    /// # Errors
    /// If there are no images or the eigendecomposition fails.
    pub fn fit(images: &[f32], d: usize) -> Result<Self> {
        let n = images.len() / d;
        if n == 0 {
            bail!("cannot fit a Gaussian to 0 images");
        }
        let mut mu = vec![0.0f64; d];
        for row in images.chunks_exact(d) {
            for (m, &v) in mu.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        for m in &mut mu {
            *m /= n as f64;
        }
        let xc = Mat::<f64>::from_fn(n, d, |i, j| images[i * d + j] as f64 - mu[j]);
        let cov = (xc.transpose() * &xc) * faer::Scale(1.0 / n as f64);
        let evd =
            cov.self_adjoint_eigen(Side::Lower).map_err(|e| anyhow::anyhow!("eigendecomposition failed: {e:?}"))?;
        let u = evd.U();
        let s = evd.S();
        // faer returns ascending eigenvalues: reverse explicitly.
        let mut lambda = Vec::with_capacity(d);
        let mut u_rows = Vec::with_capacity(d * d);
        for i in (0..d).rev() {
            lambda.push(s.column_vector()[i].max(0.0));
            for j in 0..d {
                u_rows.push(u[(j, i)]);
            }
        }
        Ok(Self { d, mu, u_rows, lambda })
    }

    /// Shrinkage factors `lambda / (lambda + sigma^2)`.
    pub fn factors(&self, sigma: f64) -> Vec<f64> {
        self.lambda.iter().map(|&l| l / (l + sigma * sigma)).collect()
    }

    /// `W_G(sigma) = U diag(lambda/(lambda+sigma^2)) U^T`, row-major `d x d`.
    pub fn w_matrix(&self, sigma: f64) -> Vec<f64> {
        let d = self.d;
        let f = self.factors(sigma);
        let u = Mat::<f64>::from_fn(d, d, |i, j| self.u_rows[j * d + i]); // columns = eigenvectors
        let us = Mat::<f64>::from_fn(d, d, |i, j| u[(i, j)] * f[j]);
        let w = &us * u.transpose();
        let mut out = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] = w[(i, j)];
            }
        }
        out
    }

    /// `D_G` as an affine map `W x + b` (f32): `W = W_G`, `b = mu - W_G mu`.
    pub fn affine(&self, sigma: f64) -> (Vec<f32>, Vec<f32>) {
        let d = self.d;
        let w = self.w_matrix(sigma);
        let mut b = self.mu.clone();
        for i in 0..d {
            let mut acc = 0.0;
            for j in 0..d {
                acc += w[i * d + j] * self.mu[j];
            }
            b[i] -= acc;
        }
        (w.iter().map(|&v| v as f32).collect(), b.iter().map(|&v| v as f32).collect())
    }
}
