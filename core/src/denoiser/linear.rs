//! Per-noise-level affine denoisers `D_i(x) = W_i x + b_i` on a sigma grid, with log-sigma interpolation.
//!
//! # Storage
//! A grid `sigma_0 > sigma_1 > ... > sigma_{L-1} > 0` (`1 x L`, f32) and per level `i`:
//!
//! * **dense**: `W_i` (`d x d`) stacked as the `(L d) x d` tensor `w` (rows `i d .. (i+1) d` are `W_i`),
//!   `b` (`L x d`, row `i` is `b_i`). For small `d`.
//! * **shared basis**: `W_i = U M_i U^T + a_i (I - U U^T)` with one `U^T` (`k x d`, orthonormal rows) for
//!   all levels, `M_i` (`k x k`) stacked as `(L k) x k`, `a` (`1 x L`, f32) and `b` (`L x d`). For `d = 784`
//!   and `k = 64` this is `~50k + 4k L` values instead of `~615k L`. Computed as
//!   `D_i(x) = a_i x + U (M_i c - a_i c) + b_i` with `c = U^T x` (about `2 d k + k^2` MACs).
//!
//! # Between and outside the grid
//! For `sigma_i >= sigma >= sigma_{i+1}` the **outputs** of the two neighbouring levels are interpolated
//! linearly in `ln sigma`:
//!
//! ```text
//! t = (ln sigma_i - ln sigma) / (ln sigma_i - ln sigma_{i+1})        (0 at sigma_i, 1 at sigma_{i+1})
//! D(x; sigma) = (1 - t) D_i(x) + t D_{i+1}(x)
//! ```
//!
//! Outside the grid the nearest end level is used unchanged (clamping): `sigma >= sigma_0` gives `D_0`,
//! `sigma <= sigma_{L-1}` (including `sigma = 0`) gives `D_{L-1}`; so does a NaN sigma. Exactly on a grid
//! point only that level is evaluated (`t = 0`). In the shared basis the interpolation is done on the
//! `k`-dimensional coefficients, `a` and `b` (the same map, since everything is linear in the outputs, at
//! about half the cost). [`LinearDenoiser::weights`] exposes `(i, t)`; [`log_sigma_weights`] is the rule
//! itself, for any grid, in f32 or f64.
//!
//! `ln` goes through [`crate::math`] (libm), so `t` has the same bits on every platform.

use super::Denoiser;
use crate::blob::format::field;
use crate::error::BlobError;
use crate::kernels;
use crate::math;
use crate::tensor::{DType, Tensor};

#[derive(Clone, Copy, Debug)]
enum Maps<'a> {
    Dense { w: Tensor<'a> },
    Basis { u_t: Tensor<'a>, m: Tensor<'a>, a: Tensor<'a> },
}

/// Affine denoisers `W_i x + b_i` on a sigma grid, dense or in a shared basis (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct LinearDenoiser<'a> {
    sigmas: Tensor<'a>,
    b: Tensor<'a>,
    maps: Maps<'a>,
    /// The block kernels of the shared-basis products `U^T x` and `U z` ([`kernels::PORTABLE`] unless
    /// [`LinearDenoiser::with_kernels`]).
    kernels: &'a dyn kernels::BlockKernels,
}

/// Saturating `usize -> u32` for error payloads.
fn sat(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Checks the grid (`1 x L`, f32, finite, `> 0`, strictly descending) and returns `L`.
fn check_sigmas(sigmas: &Tensor<'_>) -> Result<usize, BlobError> {
    if sigmas.dtype() != DType::F32 {
        return Err(BlobError::BadField { field: field::SIGMAS, value: sigmas.dtype() as u32 });
    }
    if sigmas.rows() != 1 {
        return Err(BlobError::BadField { field: field::TENSOR_SHAPE, value: sat(sigmas.rows()) });
    }
    let l = sigmas.cols();
    if l == 0 {
        return Err(BlobError::BadField { field: field::NUM_SIGMAS, value: 0 });
    }
    let mut prev = f32::INFINITY;
    for i in 0..l {
        let s = sigmas.get(0, i);
        if !s.is_finite() {
            return Err(BlobError::NonFinite { field: field::SIGMAS });
        }
        if s <= 0.0 || s >= prev {
            return Err(BlobError::BadField { field: field::SIGMAS, value: s.to_bits() });
        }
        prev = s;
    }
    Ok(l)
}

/// Checks `b` is `L x d` with `d >= 1` and returns `d`.
fn check_bias(b: &Tensor<'_>, l: usize) -> Result<usize, BlobError> {
    if b.rows() != l {
        return Err(BlobError::BadField { field: field::TENSOR_SHAPE, value: sat(b.rows()) });
    }
    if b.cols() == 0 {
        return Err(BlobError::BadField { field: field::DIM, value: 0 });
    }
    Ok(b.cols())
}

fn check_shape(t: &Tensor<'_>, rows: Option<usize>, cols: usize) -> Result<(), BlobError> {
    if t.cols() != cols {
        return Err(BlobError::BadField { field: field::TENSOR_SHAPE, value: sat(t.cols()) });
    }
    match rows {
        Some(r) if t.rows() != r => Err(BlobError::BadField { field: field::TENSOR_SHAPE, value: sat(t.rows()) }),
        _ => Ok(()),
    }
}

impl<'a> LinearDenoiser<'a> {
    /// Dense maps: `sigmas` `1 x L` (f32, finite, `> 0`, strictly descending), `w` `(L d) x d`, `b` `L x d`.
    ///
    /// # Errors
    /// * [`BlobError::BadField`] `{ field: SIGMAS, value }`: grid not f32 (value = dtype code), `<= 0` or not
    ///   strictly descending (value = the offending f32 bits); `{ field: NUM_SIGMAS, value: 0 }` for an empty
    ///   grid; `{ field: DIM, value: 0 }` for `d = 0`; `{ field: TENSOR_SHAPE, value }` when a tensor's rows or
    ///   cols (the value) disagree with `L` and `d`.
    /// * [`BlobError::NonFinite`] `{ field: SIGMAS }` for a NaN or infinite grid value.
    pub fn dense(sigmas: Tensor<'a>, w: Tensor<'a>, b: Tensor<'a>) -> Result<Self, BlobError> {
        let l = check_sigmas(&sigmas)?;
        let d = check_bias(&b, l)?;
        let rows = l.checked_mul(d).ok_or(BlobError::BadField { field: field::TENSOR_SHAPE, value: u32::MAX })?;
        check_shape(&w, Some(rows), d)?;
        Ok(Self { sigmas, b, maps: Maps::Dense { w }, kernels: &kernels::PORTABLE })
    }

    /// Shared-basis maps `W_i = U M_i U^T + a_i (I - U U^T)`: `sigmas` as for [`LinearDenoiser::dense`],
    /// `u_t` `k x d` (`k <= d`, orthonormal rows, not checked), `m` `(L k) x k`, `a` `1 x L` (f32, finite),
    /// `b` `L x d`.
    ///
    /// # Errors
    /// As [`LinearDenoiser::dense`], plus [`BlobError::LimitExceeded`] `{ field: RANK, value: k, max: d }` for
    /// `k > d`, [`BlobError::BadField`] `{ field: COMPLEMENT, value: dtype code }` if `a` is not f32, and
    /// [`BlobError::NonFinite`] `{ field: COMPLEMENT }` for a NaN or infinite `a_i`.
    pub fn basis(
        sigmas: Tensor<'a>,
        u_t: Tensor<'a>,
        m: Tensor<'a>,
        a: Tensor<'a>,
        b: Tensor<'a>,
    ) -> Result<Self, BlobError> {
        let l = check_sigmas(&sigmas)?;
        let d = check_bias(&b, l)?;
        check_shape(&u_t, None, d)?;
        let k = u_t.rows();
        if k > d {
            return Err(BlobError::LimitExceeded { field: field::RANK, value: sat(k), max: sat(d) });
        }
        let rows = l.checked_mul(k).ok_or(BlobError::BadField { field: field::TENSOR_SHAPE, value: u32::MAX })?;
        check_shape(&m, Some(rows), k)?;
        if a.dtype() != DType::F32 {
            return Err(BlobError::BadField { field: field::COMPLEMENT, value: a.dtype() as u32 });
        }
        check_shape(&a, Some(1), l)?;
        if (0..l).any(|i| !a.get(0, i).is_finite()) {
            return Err(BlobError::NonFinite { field: field::COMPLEMENT });
        }
        Ok(Self { sigmas, b, maps: Maps::Basis { u_t, m, a }, kernels: &kernels::PORTABLE })
    }

    /// The same denoiser computing the shared-basis products `U^T x` and `U z` with `kernels` (e.g. the
    /// firmware's Cortex-M4F assembly); a correct [`kernels::BlockKernels`] gives the same bits as the default
    /// [`kernels::Portable`]. Dense maps are computed row by row either way.
    pub fn with_kernels(self, kernels: &'a dyn kernels::BlockKernels) -> Self {
        Self { kernels, ..self }
    }

    /// Number of grid levels `L`.
    pub fn num_levels(&self) -> usize {
        self.sigmas.cols()
    }
    /// Grid value `sigma_i` (descending in `i`).
    ///
    /// # Panics
    /// If `i >= num_levels()`.
    pub fn sigma(&self, i: usize) -> f32 {
        self.sigmas.get(0, i)
    }
    /// Basis rank `k`, or `None` for dense maps.
    pub fn basis_rank(&self) -> Option<usize> {
        match self.maps {
            Maps::Dense { .. } => None,
            Maps::Basis { u_t, .. } => Some(u_t.rows()),
        }
    }

    /// Which levels `D(x; sigma)` blends: `(i, t)` meaning `(1 - t) D_i + t D_{i+1}`, `t` in `[0, 1)`; `t = 0`
    /// means level `i` alone (always so outside the grid, where `i` is `0` or `L - 1`). This is
    /// [`log_sigma_weights`] on the blob's grid.
    pub fn weights(&self, sigma: f32) -> (usize, f32) {
        log_sigma_weights(sigma, self.num_levels(), |i| self.sigma(i))
    }
}

/// A float the log-sigma interpolation ([`log_sigma_weights`]) runs in: f32 (the denoiser; libm `logf`
/// through [`crate::math::ln`]) or f64 (host references; libm `log` through [`crate::math::ln_f64`]).
pub trait GridFloat:
    Copy + PartialOrd + core::ops::Sub<Output = Self> + core::ops::Div<Output = Self> + sealed::Sealed
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Natural logarithm (libm in every build).
    fn ln(self) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl GridFloat for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn ln(self) -> Self {
        math::ln(self)
    }
}

impl GridFloat for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn ln(self) -> Self {
        math::ln_f64(self)
    }
}

/// The log-sigma interpolation on a strictly descending grid `level(0) > ... > level(levels - 1) > 0` (the
/// module docs): `(i, t)` meaning the outputs blend as `(1 - t) D_i + t D_{i+1}`, with
/// `t = (ln sigma_i - ln sigma) / (ln sigma_i - ln sigma_{i+1})` clamped to `[0, 1]` for
/// `sigma_i > sigma > sigma_{i+1}`; `(i, 0)` exactly on a grid point; `(0, 0)` for `sigma >= sigma_0` and
/// `(L - 1, 0)` for `sigma <= sigma_{L-1}` (including 0) or a NaN `sigma`.
///
/// The one definition of the rule: [`LinearDenoiser::weights`] uses it in f32 on the blob's grid, and host
/// code (the trainer's distilled maps) calls it in f64 (`level = |i| grid[i]`).
///
/// # Panics
/// If `levels == 0` (caller contract).
#[inline]
pub fn log_sigma_weights<F: GridFloat>(sigma: F, levels: usize, level: impl Fn(usize) -> F) -> (usize, F) {
    contract!(levels > 0, "log_sigma_weights: empty grid");
    if sigma >= level(0) {
        return (0, F::ZERO);
    }
    for i in 0..levels - 1 {
        let (hi, lo) = (level(i), level(i + 1));
        if sigma <= hi && sigma > lo {
            if sigma == hi {
                return (i, F::ZERO);
            }
            let (ln_hi, ln_lo) = (hi.ln(), lo.ln());
            let t = (ln_hi - sigma.ln()) / (ln_hi - ln_lo);
            // Rounding could give t outside [0, 1) only by an ulp; clamp so the blend stays convex.
            // (Written as `clamp` does it: NaN stays NaN, -0.0 stays -0.0.)
            let t = if t < F::ZERO {
                F::ZERO
            } else if t > F::ONE {
                F::ONE
            } else {
                t
            };
            return (i, t);
        }
    }
    // sigma <= sigma_{L-1}, or NaN.
    (levels - 1, F::ZERO)
}

impl Denoiser for LinearDenoiser<'_> {
    fn dim(&self) -> usize {
        self.b.cols()
    }

    /// 0 for dense maps; `2 k` for the shared basis (`U^T x` and the mixed `M c`).
    fn scratch_len(&self) -> usize {
        match self.maps {
            Maps::Dense { .. } => 0,
            Maps::Basis { u_t, .. } => 2 * u_t.rows(),
        }
    }

    fn denoise(&self, x: &[f32], sigma: f32, out: &mut [f32], scratch: &mut [f32]) {
        let d = self.dim();
        contract!(x.len() == d && out.len() == d, "LinearDenoiser: x and out must have length dim()");
        contract!(scratch.len() >= self.scratch_len(), "LinearDenoiser: scratch shorter than scratch_len()");
        let (i, t) = self.weights(sigma);
        let blend = t > 0.0;
        let s = 1.0 - t;
        match self.maps {
            Maps::Dense { w } => {
                for (r, o) in out.iter_mut().enumerate() {
                    let v = w.row_dot(i * d + r, x) + self.b.get(i, r);
                    *o = if blend { s * v + t * (w.row_dot((i + 1) * d + r, x) + self.b.get(i + 1, r)) } else { v };
                }
            }
            Maps::Basis { u_t, m, a } => {
                let k = u_t.rows();
                let (c, z) = scratch[..2 * k].split_at_mut(k);
                u_t.rows_dot_with(self.kernels, 0, x, c);
                let a_mix = if blend { s * a.get(0, i) + t * a.get(0, i + 1) } else { a.get(0, i) };
                // z = (M_mix - a_mix I) c, with M_mix the blended M.
                for (r, zr) in z.iter_mut().enumerate() {
                    let v = m.row_dot(i * k + r, c);
                    let v = if blend { s * v + t * m.row_dot((i + 1) * k + r, c) } else { v };
                    *zr = v - a_mix * c[r];
                }
                // out = a_mix x + (1 - t) b_i + t b_{i+1} + U z
                for (o, &xj) in out.iter_mut().zip(x) {
                    *o = a_mix * xj;
                }
                if blend {
                    self.b.row_axpy(i, s, out);
                    self.b.row_axpy(i + 1, t, out);
                } else {
                    self.b.row_axpy(i, 1.0, out);
                }
                u_t.rows_axpy_with(self.kernels, 0, z, out);
            }
        }
    }

    /// Worst case (between two grid levels): dense `2 d^2`, shared basis `2 d k + 2 k^2 + d`.
    fn macs_per_eval(&self) -> u64 {
        let d = self.dim() as u64;
        match self.maps {
            Maps::Dense { .. } => 2 * d * d,
            Maps::Basis { u_t, .. } => {
                let k = u_t.rows() as u64;
                2 * d * k + 2 * k * k + d
            }
        }
    }
}
