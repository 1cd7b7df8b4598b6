//! The optimal denoiser of a mixture of low-rank Gaussians.
//!
//! # Model
//! Data `x_0 ~ sum_j pi_j N(mu_j, Sigma_j)`, `Sigma_j = U_j diag(lambda_j) U_j^T + c_j (I - U_j U_j^T)`, every
//! component of the same rank `r` (the blob's `k`), each a [`GaussianDenoiser`] of its own
//! ([`MixtureDenoiser::component`]). The weights `pi_j` need not sum to 1 (they are normalised here).
//!
//! # Denoiser
//! ```text
//! D(x; sigma) = sum_j w_j D_j(x; sigma)
//! w_j = softmax_j( ln pi_j + ln N(x; mu_j, Sigma_j + sigma^2 I) )
//! ln N(x; ..) = -1/2 [ sum_i a_i^2 / v_i + rho / v_c + sum_i ln v_i + (d - r) ln v_c ] + const
//! a = U_j^T (x - mu_j),  rho = max(||x - mu_j||^2 - ||a||^2, 0),  v_i = lambda_ji + sigma^2,  v_c = c_j + sigma^2
//! ```
//! (the `d ln 2 pi` constant cancels in the softmax; at full rank `r = d` the complement terms are absent).
//! No `d x d` matrix is formed: one evaluation costs `K (2 r d + 3 d)` multiply-adds (the projections
//! `a` are computed once per component and reused by `D_j`).
//!
//! # Numerics (f32)
//! * Log-sum-exp: `w_j = exp(s_j - max_l s_l) / sum_l exp(s_l - max_l s_l)`, so far from every component
//!   (scores of -1e6 and below) the weights stay finite and the nearest component wins.
//! * A variance `v` that is 0 (a zero eigenvalue or floor at `sigma = 0`) is replaced by the smallest
//!   normal f32 (`f32::MIN_POSITIVE`), so every score is a number or `-inf`; components with `pi_j = 0` get
//!   `-inf` and weight exactly 0. If every score is `-inf` (or NaN), the weights fall back to `pi / sum pi`.
//! * Components whose weight is exactly 0 are skipped (no change in value).
//! * With `K = 1` the weight is exactly 1 and `D` is the component's [`GaussianDenoiser`] bit for bit.
//!
//! Reductions use [`kernels::dot`] / the tensor row kernels (the `dot4` order) and the scalar loops run
//! in a fixed order, so host and Cortex-M give identical bits.

use super::{Denoiser, GaussianDenoiser};
use crate::blob::format::field;
use crate::error::BlobError;
use crate::kernels::{self, BlockKernels};
use crate::math;
use crate::tensor::{DType, Tensor};

/// `D(x; sigma)` of a mixture of K low-rank Gaussians, evaluated straight from (block-stacked) storage.
#[derive(Clone, Copy, Debug)]
pub struct MixtureDenoiser<'a> {
    /// `K x d`, one block per component.
    mu: Tensor<'a>,
    /// `(K r) x d`, one `r x d` block per component.
    u_t: Tensor<'a>,
    /// `K x r`, f32.
    lambda: Tensor<'a>,
    /// `1 x K`, f32.
    weights: Tensor<'a>,
    /// `1 x K`, f32.
    floors: Tensor<'a>,
    kernels: &'a dyn BlockKernels,
}

fn sat(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Checks a `1 x K` f32 vector of finite values `>= 0`.
fn check_vector(t: &Tensor<'_>, k: usize, id: u8) -> Result<(), BlobError> {
    if t.dtype() != DType::F32 || t.rows() != 1 || t.cols() != k {
        return Err(BlobError::BadField { field: id, value: sat(t.cols()) });
    }
    for j in 0..k {
        let v = t.get(0, j);
        if !v.is_finite() {
            return Err(BlobError::NonFinite { field: id });
        }
        if v < 0.0 {
            return Err(BlobError::BadField { field: id, value: v.to_bits() });
        }
    }
    Ok(())
}

impl<'a> MixtureDenoiser<'a> {
    /// Builds the denoiser after validating shapes and values.
    ///
    /// * `mu`: `K x d`, `K >= 1`; `u_t`: `(K r) x d`; `lambda`: `K x r`, f32, each row a valid
    ///   [`GaussianDenoiser`] eigenvalue list; all three stored block by block ([`Tensor::block`]).
    /// * `weights`: `1 x K`, f32, finite, `>= 0`, at least one `> 0`.
    /// * `floors`: `1 x K`, f32, finite, `>= 0`.
    ///
    /// # Errors
    /// [`BlobError::BadField`] `{ field: COMPONENTS }` for `K = 0` or inconsistent block counts,
    /// `{ field: WEIGHTS | FLOOR }` for a bad weight or floor vector (value = cols, or the offending bits;
    /// all-zero weights give value 0), [`BlobError::NonFinite`] for non-finite weights or floors, and
    /// every error of [`GaussianDenoiser::new`] for a component.
    pub fn new(
        mu: Tensor<'a>,
        u_t: Tensor<'a>,
        lambda: Tensor<'a>,
        weights: Tensor<'a>,
        floors: Tensor<'a>,
    ) -> Result<Self, BlobError> {
        Self::new_with(mu, u_t, lambda, weights, floors, &kernels::PORTABLE)
    }

    /// [`MixtureDenoiser::new`] computing with `kernels` (the same bits with every correct [`BlockKernels`]).
    ///
    /// # Errors
    /// As [`MixtureDenoiser::new`].
    pub(crate) fn new_with(
        mu: Tensor<'a>,
        u_t: Tensor<'a>,
        lambda: Tensor<'a>,
        weights: Tensor<'a>,
        floors: Tensor<'a>,
        kernels: &'a dyn BlockKernels,
    ) -> Result<Self, BlobError> {
        let k = mu.rows();
        if k == 0 || !u_t.rows().is_multiple_of(k) || lambda.rows() != k {
            return Err(BlobError::BadField { field: field::COMPONENTS, value: sat(k) });
        }
        check_vector(&weights, k, field::WEIGHTS)?;
        check_vector(&floors, k, field::FLOOR)?;
        if (0..k).all(|j| weights.get(0, j) == 0.0) {
            return Err(BlobError::BadField { field: field::WEIGHTS, value: 0 });
        }
        for j in 0..k {
            let block =
                |t: &Tensor<'a>| t.block(j, k).ok_or(BlobError::BadField { field: field::COMPONENTS, value: sat(k) });
            GaussianDenoiser::validate(&block(&mu)?, &block(&u_t)?, &block(&lambda)?, floors.get(0, j))?;
        }
        Ok(Self { mu, u_t, lambda, weights, floors, kernels })
    }

    /// The same denoiser computing its matrix-vector products with `kernels` (same bits with every
    /// correct [`BlockKernels`]).
    pub fn with_kernels(self, kernels: &'a dyn BlockKernels) -> Self {
        Self { kernels, ..self }
    }

    /// Number of components K.
    pub fn components(&self) -> usize {
        self.mu.rows()
    }

    /// Rank `r` of every component.
    pub fn rank(&self) -> usize {
        self.u_t.rows() / self.components()
    }

    /// Stored weight `pi_j` (not normalised).
    ///
    /// # Panics
    /// If `j >= components()`.
    pub fn weight(&self, j: usize) -> f32 {
        self.weights.get(0, j)
    }

    /// Component `j` as a Gaussian denoiser (views into the same storage, the same kernels): the exact
    /// closed form of class-conditional sampling.
    ///
    /// # Panics
    /// If `j >= components()` (caller contract).
    pub fn component(&self, j: usize) -> GaussianDenoiser<'a> {
        let k = self.components();
        contract!(j < k, "MixtureDenoiser::component: index out of range");
        let block = |t: &Tensor<'a>| t.block(j, k).expect("validated at construction");
        GaussianDenoiser::from_validated(
            block(&self.mu),
            block(&self.u_t),
            block(&self.lambda),
            self.floors.get(0, j),
            self.kernels,
        )
    }

    /// The component "pick a component by its weight" chooses for a uniform `u` in `[0, 1)`: the first `j`
    /// with `u * sum(pi) < pi_0 + ... + pi_j` (sums in f32, in order), or the last component with
    /// `pi_j > 0` if rounding leaves none.
    pub fn pick(&self, u: f32) -> usize {
        let k = self.components();
        let total = (0..k).fold(0.0f32, |s, j| s + self.weight(j));
        let target = u * total;
        let mut cum = 0.0f32;
        let mut last = 0;
        for j in 0..k {
            let w = self.weight(j);
            if w > 0.0 {
                cum += w;
                last = j;
                if target < cum {
                    return j;
                }
            }
        }
        last
    }

    /// Scratch floats [`MixtureDenoiser::posterior`] needs: `d + K r + K`.
    pub fn posterior_scratch_len(&self) -> usize {
        self.mu.cols() + self.u_t.rows() + self.components()
    }

    /// The responsibilities `w_j(x, sigma)` (module docs) into `w` (length K). `scratch` as for `denoise`.
    ///
    /// # Panics
    /// If `x.len() != dim()`, `w.len() != components()` or `scratch.len() < scratch_len()`.
    pub fn posterior(&self, x: &[f32], sigma: f32, w: &mut [f32], scratch: &mut [f32]) {
        contract!(w.len() == self.components(), "MixtureDenoiser::posterior: w must have length K");
        let (diff, rest) = scratch.split_at_mut(self.mu.cols());
        let (proj, _) = rest.split_at_mut(self.u_t.rows());
        self.responsibilities(x, sigma, diff, proj, w);
    }

    /// Pass 1: projections of every component into `proj` (`K r`), scores, then the weights into `w`.
    fn responsibilities(&self, x: &[f32], sigma: f32, diff: &mut [f32], proj: &mut [f32], w: &mut [f32]) {
        let (k, r, d) = (self.components(), self.rank(), self.mu.cols());
        let sigma_sq = sigma * sigma;
        let var = |v: f32| {
            let v = v + sigma_sq;
            if v > f32::MIN_POSITIVE {
                v
            } else {
                f32::MIN_POSITIVE
            }
        };
        let mut max = f32::NEG_INFINITY;
        for j in 0..k {
            let g = self.component(j);
            let a = &mut proj[j * r..(j + 1) * r];
            g.project(x, diff, a);
            let n2 = kernels::dot(diff, diff);
            let (mut quad, mut logdet, mut a2) = (0.0f32, 0.0f32, 0.0f32);
            for (i, &ai) in a.iter().enumerate() {
                let v = var(self.lambda.get(j, i));
                let sq = ai * ai;
                a2 += sq;
                quad += sq / v;
                logdet += math::ln(v);
            }
            if r < d {
                let v = var(self.floors.get(0, j));
                let rho = n2 - a2;
                let rho = if rho > 0.0 { rho } else { 0.0 };
                quad += rho / v;
                logdet += (d - r) as f32 * math::ln(v);
            }
            let s = math::ln(self.weight(j)) - 0.5 * (quad + logdet);
            w[j] = s;
            if s > max {
                max = s;
            }
        }
        if max > f32::NEG_INFINITY {
            let mut sum = 0.0f32;
            for s in w.iter_mut() {
                *s = math::exp(*s - max);
                sum += *s;
            }
            w.iter_mut().for_each(|s| *s /= sum);
        } else {
            // Every score is -inf or NaN: the prior.
            let total = (0..k).fold(0.0f32, |s, j| s + self.weight(j));
            for (j, s) in w.iter_mut().enumerate() {
                *s = self.weight(j) / total;
            }
        }
    }
}

impl Denoiser for MixtureDenoiser<'_> {
    fn dim(&self) -> usize {
        self.mu.cols()
    }

    /// `d + K r + K` floats: one component output, the `K` projections, the `K` weights.
    fn scratch_len(&self) -> usize {
        self.posterior_scratch_len()
    }

    fn denoise(&self, x: &[f32], sigma: f32, out: &mut [f32], scratch: &mut [f32]) {
        let (k, r, d) = (self.components(), self.rank(), self.mu.cols());
        contract!(x.len() == d && out.len() == d, "MixtureDenoiser: x and out must have length dim()");
        contract!(scratch.len() >= self.scratch_len(), "MixtureDenoiser: scratch shorter than scratch_len()");
        let (tmp, rest) = scratch.split_at_mut(d);
        let (proj, rest) = rest.split_at_mut(k * r);
        let w = &mut rest[..k];
        self.responsibilities(x, sigma, tmp, proj, w);
        // Pass 2: out = sum_j w_j D_j, components in order, zero weights skipped.
        // The first term is stored, not added, so K = 1 gives the component's bits exactly (signed zeros too).
        out.iter_mut().for_each(|o| *o = 0.0);
        let mut first = true;
        for j in 0..k {
            if w[j] == 0.0 {
                continue;
            }
            let g = self.component(j);
            tmp.copy_from_slice(x);
            g.mu().row_axpy_with(self.kernels, 0, -1.0, tmp);
            g.denoise_projected(sigma, tmp, &mut proj[j * r..(j + 1) * r]);
            if first {
                out.iter_mut().zip(tmp.iter()).for_each(|(o, &t)| *o = w[j] * t);
                first = false;
            } else {
                kernels::axpy(w[j], tmp, out);
            }
        }
    }

    /// `K (2 r d + 3 d)`: projections, norms, component outputs and the weighted sum.
    fn macs_per_eval(&self) -> u64 {
        let (k, r, d) = (self.components() as u64, self.rank() as u64, self.mu.cols() as u64);
        k * (2 * r * d + 3 * d)
    }
}
