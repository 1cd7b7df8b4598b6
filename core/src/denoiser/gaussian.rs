//! The optimal denoiser of a Gaussian with a low-rank covariance plus an isotropic floor.
//!
//! # Model
//! Data `x_0 ~ N(mu, Sigma)` with `Sigma = U diag(lambda) U^T + c (I - U U^T)`:
//!
//! | symbol | stored as | shape | meaning |
//! |---|---|---|---|
//! | `mu` | [`mu()`](GaussianDenoiser::mu) | `1 x d` | mean |
//! | `U` | [`u_t()`](GaussianDenoiser::u_t) (`U^T`, rows = eigenvectors `u_k`) | `k x d` | orthonormal columns |
//! | `lambda` | [`lambda(i)`](GaussianDenoiser::lambda) | `1 x k`, f32 | eigenvalues (variances), descending, `>= 0` |
//! | `c` | [`floor()`](GaussianDenoiser::floor) | scalar | variance of every direction outside span(U) |
//!
//! `k = d` is the full-rank Gaussian (the complement is empty and `c` is ignored); `k < d` with `c = 0` is the
//! truncated denoiser of Li, Dai & Qu (2024), `c > 0` the regularised `N(mu, Sigma_0 + c I)` of Merger &
//! Goldt (2025).
//!
//! # Denoiser (Tweedie / Wiener filter), for noise `x = x_0 + sigma n`
//! ```text
//! D(x; sigma) = mu + U diag(g) U^T (x - mu) + f (I - U U^T)(x - mu)
//!             = mu + f (x - mu) + U diag(g - f) U^T (x - mu)          (what is computed, ~2dk MACs)
//! g_k = lambda_k / (lambda_k + sigma^2),   f = c / (c + sigma^2)
//! ```
//! with the limits `g_k = 0` when `lambda_k = sigma = 0` and `f = 0` when `c = sigma = 0` (a direction with
//! zero variance is projected out at every sigma, also at 0).
//!
//! # Exact probability-flow solution
//! The EDM ODE `dx/dsigma = (x - D(x; sigma)) / sigma` is diagonal in the eigenbasis; mode `k` scales by
//! `sqrt((lambda_k + sigma^2) / (lambda_k + sigma_t^2))` between `sigma_t` and `sigma`:
//! ```text
//! x(sigma) = mu + sum_k h_k u_k u_k^T (x_t - mu) + h_c (I - U U^T)(x_t - mu)
//! h_k = sqrt((lambda_k + sigma^2) / (lambda_k + sigma_t^2)),   h_c = sqrt((c + sigma^2) / (c + sigma_t^2))
//! ```
//! computed like `D` as `mu + h_c (x_t - mu) + U diag(h - h_c) U^T (x_t - mu)`. A zero denominator (a
//! zero-variance mode at `sigma_t = 0`) gives the factor 1 if the numerator is also zero, else 0.
//!
//! # Requirements not checked at construction
//! The rows of `u_t` must be orthonormal (the exporter guarantees it; checking costs `O(d k^2)`), and `mu`,
//! `u_t` should be finite (non-finite values give non-finite outputs, never a panic).

use super::Denoiser;
use crate::blob::format::field;
use crate::error::BlobError;
use crate::kernels::{self, BlockKernels};
use crate::tensor::{DType, Tensor};

/// `D(x; sigma)` of `N(mu, U diag(lambda) U^T + c (I - U U^T))`, evaluated straight from tensor storage.
#[derive(Clone, Copy, Debug)]
pub struct GaussianDenoiser<'a> {
    mu: Tensor<'a>,
    u_t: Tensor<'a>,
    lambda: Tensor<'a>,
    floor: f32,
    /// The matrix-vector block kernels ([`kernels::PORTABLE`] unless [`GaussianDenoiser::with_kernels`]).
    kernels: &'a dyn BlockKernels,
}

/// `num / den` with `0/0 -> 0` (a zero-variance direction at `sigma = 0`); `den >= 0` in every use.
#[inline]
fn shrink(num: f32, den: f32) -> f32 {
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// `sqrt(num / den)`, with `0/0 -> 1` and `x/0 -> 0` (see the module docs); the square root is the kernels'
/// ([`BlockKernels::sqrt`], the same bits as [`crate::math::sqrt`]).
#[inline]
fn flow_factor(kernels: &dyn BlockKernels, num: f32, den: f32) -> f32 {
    if den > 0.0 {
        kernels.sqrt(num / den)
    } else if num == 0.0 {
        1.0
    } else {
        0.0
    }
}

impl<'a> GaussianDenoiser<'a> {
    /// Builds the denoiser after validating shapes and values.
    ///
    /// * `mu`: `1 x d`, `d >= 1`, any dtype.
    /// * `u_t`: `k x d` (rows = eigenvectors), `k <= d`, any dtype. `k = 0` is allowed (isotropic Gaussian).
    /// * `lambda`: `1 x k`, f32, finite, `>= 0`, descending (ties allowed).
    /// * `floor`: finite, `>= 0`.
    ///
    /// # Errors
    /// * [`BlobError::BadField`] `{ field: DIM, value: d }` if `d = 0` or `u_t` has `cols != d`;
    ///   `{ field: TENSOR_SHAPE, value: rows }` if `mu` is not one row; `{ field: LAMBDA, value }` if `lambda`
    ///   is not `1 x k` (value = its cols), not f32 (value = dtype code), negative or ascending (value = the
    ///   offending f32 bits); `{ field: FLOOR, value: bits }` for a negative floor.
    /// * [`BlobError::LimitExceeded`] `{ field: RANK, value: k, max: d }` if `k > d`.
    /// * [`BlobError::NonFinite`] `{ field: LAMBDA | FLOOR }` for NaN or infinite eigenvalues or floor.
    pub fn new(mu: Tensor<'a>, u_t: Tensor<'a>, lambda: Tensor<'a>, floor: f32) -> Result<Self, BlobError> {
        Self::validate(&mu, &u_t, &lambda, floor)?;
        Ok(Self::from_validated(mu, u_t, lambda, floor, &kernels::PORTABLE))
    }

    /// The checks of [`GaussianDenoiser::new`] without building the denoiser (so a caller that supplies its
    /// own [`BlockKernels`] never refers to [`kernels::PORTABLE`], and a build that does not use it leaves
    /// it out).
    ///
    /// # Errors
    /// As [`GaussianDenoiser::new`].
    pub(crate) fn validate(
        mu: &Tensor<'_>,
        u_t: &Tensor<'_>,
        lambda: &Tensor<'_>,
        floor: f32,
    ) -> Result<(), BlobError> {
        let d = mu.cols();
        if mu.rows() != 1 {
            return Err(BlobError::BadField { field: field::TENSOR_SHAPE, value: sat(mu.rows()) });
        }
        if d == 0 {
            return Err(BlobError::BadField { field: field::DIM, value: 0 });
        }
        if u_t.cols() != d {
            return Err(BlobError::BadField { field: field::DIM, value: sat(u_t.cols()) });
        }
        let k = u_t.rows();
        if k > d {
            return Err(BlobError::LimitExceeded { field: field::RANK, value: sat(k), max: sat(d) });
        }
        if lambda.dtype() != DType::F32 {
            return Err(BlobError::BadField { field: field::LAMBDA, value: lambda.dtype() as u32 });
        }
        if lambda.rows() != 1 || lambda.cols() != k {
            return Err(BlobError::BadField { field: field::LAMBDA, value: sat(lambda.cols()) });
        }
        let mut prev = f32::INFINITY;
        for i in 0..k {
            let l = lambda.get(0, i);
            if !l.is_finite() {
                return Err(BlobError::NonFinite { field: field::LAMBDA });
            }
            if l < 0.0 || l > prev {
                return Err(BlobError::BadField { field: field::LAMBDA, value: l.to_bits() });
            }
            prev = l;
        }
        if !floor.is_finite() {
            return Err(BlobError::NonFinite { field: field::FLOOR });
        }
        if floor < 0.0 {
            return Err(BlobError::BadField { field: field::FLOOR, value: floor.to_bits() });
        }
        Ok(())
    }

    /// A denoiser over tensors [`GaussianDenoiser::validate`] has accepted (a blob's Gaussian, a mixture's
    /// components).
    pub(crate) fn from_validated(
        mu: Tensor<'a>,
        u_t: Tensor<'a>,
        lambda: Tensor<'a>,
        floor: f32,
        kernels: &'a dyn BlockKernels,
    ) -> Self {
        Self { mu, u_t, lambda, floor, kernels }
    }

    /// The same denoiser computing its matrix-vector products `U^T (x - mu)` and `U coef` with `kernels`
    /// (e.g. the firmware's Cortex-M4F assembly). A correct implementation of [`BlockKernels`] gives the
    /// same bits as the default [`kernels::Portable`].
    pub fn with_kernels(self, kernels: &'a dyn BlockKernels) -> Self {
        Self { kernels, ..self }
    }

    /// Rank `k` (number of stored eigenvectors).
    pub fn rank(&self) -> usize {
        self.u_t.rows()
    }
    /// Isotropic floor `c` (variance outside span(U); irrelevant when `k = d`).
    pub fn floor(&self) -> f32 {
        self.floor
    }
    /// Eigenvalue `lambda_i` (descending in `i`).
    ///
    /// # Panics
    /// If `i >= rank()`.
    pub fn lambda(&self, i: usize) -> f32 {
        self.lambda.get(0, i)
    }
    /// The mean, `1 x d`.
    pub fn mu(&self) -> Tensor<'a> {
        self.mu
    }
    /// `U^T`, `k x d` (rows are the eigenvectors).
    pub fn u_t(&self) -> Tensor<'a> {
        self.u_t
    }

    /// Scratch length for [`GaussianDenoiser::exact_flow`] (same as for `denoise`: `k`).
    pub fn exact_flow_scratch_len(&self) -> usize {
        self.rank()
    }

    /// `out = mu + h_c (x - mu) + U diag(coef_scale) U^T (x - mu)` where `coef_scale[i] = h(i) - h_c`.
    ///
    /// Shared by `denoise` (`h = g`) and `exact_flow` (`h` = the flow factors).
    fn apply(&self, x: &[f32], h_c: f32, h: impl Fn(usize) -> f32, out: &mut [f32], scratch: &mut [f32]) {
        let k = self.rank();
        contract!(scratch.len() >= k, "GaussianDenoiser: scratch shorter than scratch_len()");
        let coef = &mut scratch[..k];
        self.project(x, out, coef);
        self.finish(h_c, h, out, coef);
    }

    /// `diff = x - mu` and `coef = U^T (x - mu)` (`k` values): the first half of every evaluation, also
    /// what the mixture denoiser's log-densities need.
    pub(crate) fn project(&self, x: &[f32], diff: &mut [f32], coef: &mut [f32]) {
        let d = self.mu.cols();
        contract!(x.len() == d && diff.len() == d, "GaussianDenoiser: x and out must have length dim()");
        // diff = x - mu  (x + (-1) mu is exactly x - mu)
        diff.copy_from_slice(x);
        self.mu.row_axpy_with(self.kernels, 0, -1.0, diff);
        // coef_i = u_i^T (x - mu)  (four rows of U^T per pass over `diff`)
        self.u_t.rows_dot_with(self.kernels, 0, diff, coef);
    }

    /// The second half: given `out = x - mu` and `coef = U^T (x - mu)` from [`GaussianDenoiser::project`],
    /// `out = mu + h_c (x - mu) + U diag(h - h_c) coef` (`coef` is scaled in place).
    pub(crate) fn finish(&self, h_c: f32, h: impl Fn(usize) -> f32, out: &mut [f32], coef: &mut [f32]) {
        let d = self.mu.cols();
        let k = self.rank();
        // Complement factor: irrelevant (empty complement) at full rank; 0 keeps that case free of rounding.
        let h_c = if k == d { 0.0 } else { h_c };
        for (i, ci) in coef.iter_mut().enumerate() {
            *ci *= h(i) - h_c;
        }
        // out = mu + h_c (x - mu) + sum_i coef_i u_i  (rows added in order i = 0, 1, ..., four per pass)
        out.iter_mut().for_each(|o| *o *= h_c);
        self.mu.row_axpy_with(self.kernels, 0, 1.0, out);
        self.u_t.rows_axpy_with(self.kernels, 0, coef, out);
    }

    /// [`Denoiser::denoise`] from a projection already computed: `out = x - mu` and `coef = U^T (x - mu)`
    /// as [`GaussianDenoiser::project`] leaves them (same bits as `denoise`); `coef` is overwritten.
    pub(crate) fn denoise_projected(&self, sigma: f32, out: &mut [f32], coef: &mut [f32]) {
        let sigma_sq = sigma * sigma;
        let c = self.floor;
        self.finish(
            shrink(c, c + sigma_sq),
            |i| {
                let l = self.lambda.get(0, i);
                shrink(l, l + sigma_sq)
            },
            out,
            coef,
        );
    }

    /// Exact solution of the probability-flow ODE: moves `x_t` (at noise level `sigma_t`) to noise level
    /// `sigma` (any value, including 0, and also upwards) and writes it to `out`. See the module docs for
    /// the formula. Costs about `2 d k` multiply-adds plus `k` square roots.
    ///
    /// # Panics
    /// If `x_t.len() != dim()`, `out.len() != dim()` or `scratch.len() < exact_flow_scratch_len()` (caller
    /// contract).
    pub fn exact_flow(&self, x_t: &[f32], sigma_t: f32, sigma: f32, out: &mut [f32], scratch: &mut [f32]) {
        let (sigma_sq, sigma_t_sq) = (sigma * sigma, sigma_t * sigma_t);
        let c = self.floor;
        let h_c = flow_factor(self.kernels, c + sigma_sq, c + sigma_t_sq);
        self.apply(
            x_t,
            h_c,
            |i| {
                let l = self.lambda.get(0, i);
                flow_factor(self.kernels, l + sigma_sq, l + sigma_t_sq)
            },
            out,
            scratch,
        );
    }
}

/// Saturating `usize -> u32` for error payloads.
fn sat(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl Denoiser for GaussianDenoiser<'_> {
    fn dim(&self) -> usize {
        self.mu.cols()
    }

    /// `k` floats (the projections `U^T (x - mu)`).
    fn scratch_len(&self) -> usize {
        self.rank()
    }

    fn denoise(&self, x: &[f32], sigma: f32, out: &mut [f32], scratch: &mut [f32]) {
        let k = self.rank();
        contract!(scratch.len() >= k, "GaussianDenoiser: scratch shorter than scratch_len()");
        let coef = &mut scratch[..k];
        self.project(x, out, coef);
        self.denoise_projected(sigma, out, coef);
    }

    /// `2 d k + d`: projections `U^T (x - mu)`, the rank-k update, and the floor scaling.
    fn macs_per_eval(&self) -> u64 {
        let (d, k) = (self.mu.cols() as u64, self.rank() as u64);
        2 * d * k + d
    }
}
