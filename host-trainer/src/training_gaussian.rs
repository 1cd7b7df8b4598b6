//! The Gaussian of the training data and its optimal denoiser, in f64.
//!
//! `D_G(x; sigma) = mu + U diag(lambda / (lambda + sigma^2)) U^T (x - mu)` with the full-rank
//! eigendecomposition `Sigma = U diag(lambda) U^T` of the data covariance (eigenvalues descending).
//! This is the reference that `metrics` compares the trained and distilled denoisers with.

use anyhow::Result;
use faer::Mat;
use gaussdiff_core::blob::write::{write_gaussian, GaussianParams};
use gaussdiff_core::tensor::DType;
use gaussdiff_fit::dataset::Dataset;
use gaussdiff_fit::export::{metadata_name, Provenance};
use gaussdiff_fit::gaussian as fit;
use gaussdiff_fit::io::write_atomic;
use std::path::Path;

/// The `tool_version` metadata of the blobs the trainer writes.
pub const TOOL: &str = concat!("gaussdiff-train ", env!("CARGO_PKG_VERSION"));

/// Provenance of a blob the trainer writes from `data`: the metadata-safe dataset name, the training
/// image count, the trainer's version and `source`.
pub fn provenance(data: &Dataset, source: &str) -> Provenance {
    Provenance::new(metadata_name(&data.name), data.len(), TOOL).with_source(source)
}

/// Mean and eigendecomposition of the training images' covariance (f64, the 1/N normalisation).
#[derive(Clone, Debug)]
pub struct TrainingGaussian {
    /// Dimension d.
    pub d: usize,
    /// Mean (d).
    pub mu: Vec<f64>,
    /// Eigenvectors as rows, `d x d`, row i belongs to `lambda[i]`.
    pub u_rows: Vec<f64>,
    /// Eigenvalues, descending, clamped at 0.
    pub lambda: Vec<f64>,
}

impl TrainingGaussian {
    /// Fit mean and the empirical (1/N) covariance of `images` (`n x d`): the Gaussian of the training
    /// distribution itself, the one Li et al. compare with. The moments, the normalisation and the
    /// eigendecomposition are `gaussdiff_fit::gaussian`'s (streaming f64 moments, `DDOF` = 0, faer's
    /// eigensolver, descending, fixed signs), the same as `gaussdiff export`'s; this keeps all `d`
    /// eigenpairs in f64.
    ///
    /// # Errors
    /// If there are fewer than 2 images, a value is not finite, or the eigendecomposition fails.
    pub fn fit(images: &[f32], d: usize) -> Result<Self> {
        let m = fit::moments(images, d)?;
        let e = fit::eigh_descending(m.covariance()?.as_ref())?;
        let lambda = e.values.iter().map(|&l| l.max(0.0)).collect();
        Ok(Self { d, mu: m.mean().to_vec(), u_rows: e.vectors, lambda })
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

    /// Write this Gaussian of `data`'s training images (mean, the first `rank` eigenvectors and
    /// eigenvalues, default all; floor 0) as a blob with f32 storage, with `gaussdiff_fit::export`'s
    /// metadata. Returns the byte count.
    ///
    /// # Errors
    /// If core's writer rejects the parameters or the file cannot be written.
    pub fn write_blob(&self, data: &Dataset, rank: Option<usize>, path: &Path) -> Result<usize> {
        let d = data.dim();
        let k = rank.unwrap_or(d).clamp(1, d);
        let params = GaussianParams {
            shape: data.shape,
            mu: self.mu.iter().map(|&v| v as f32).collect(),
            u_t: self.u_rows[..k * d].iter().map(|&v| v as f32).collect(),
            lambda: self.lambda[..k].iter().map(|&v| v as f32).collect(),
            floor: 0.0,
        };
        let opts = provenance(data, "gaussian-of-training-data").write_options(DType::F32, data.pixel);
        let bytes = write_gaussian(&params, &opts).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        write_atomic(path, &bytes)?;
        Ok(bytes.len())
    }
}
