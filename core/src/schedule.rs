//! The EDM noise schedule (Karras et al. 2022, eq. 5).
//!
//! For `N` steps the noise levels are
//!
//! ```text
//! sigma_i = (sigma_max^(1/rho) + i/(N-1) * (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,  i = 0..N-1
//! sigma_N = 0
//! ```
//!
//! so `N` steps visit `N + 1` levels, descending from `sigma_max` through `sigma_min` to 0. EDM's defaults
//! are `sigma_min = 0.002`, `sigma_max = 80`, `rho = 7`.
//!
//! Arithmetic is f32 through [`crate::math`] (libm `powf`), so the values are the same bits on every
//! platform; they agree with the f64 reference [`edm_levels_f64`] to a relative 1e-5 (tested).
//!
//! [`edm_levels_f64`] is that reference: the same formula in f64 (libm `pow`), for host code that works in
//! f64 (the trainer's distillation grids). It is the reference of the f32 schedule, not a second schedule.

use crate::math;

/// The EDM schedule's parameters (standard deviations, not variances).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EdmSchedule {
    /// Smallest non-zero noise level (EDM: 0.002).
    pub sigma_min: f32,
    /// Largest noise level, where sampling starts (EDM: 80).
    pub sigma_max: f32,
    /// Curvature: larger `rho` spends more steps at low noise (EDM: 7).
    pub rho: f32,
}

impl Default for EdmSchedule {
    fn default() -> Self {
        Self::EDM
    }
}

impl EdmSchedule {
    /// EDM's defaults: `sigma_min = 0.002`, `sigma_max = 80`, `rho = 7`.
    pub const EDM: Self = Self { sigma_min: 0.002, sigma_max: 80.0, rho: 7.0 };

    /// True when the parameters make a descending schedule: all finite, `0 < sigma_min <= sigma_max`,
    /// `rho > 0`. [`EdmSchedule::fill`] does not check this (garbage in, garbage out, but no panic); callers
    /// that take the parameters from users should.
    pub fn is_valid(&self) -> bool {
        self.sigma_min.is_finite()
            && self.sigma_max.is_finite()
            && self.rho.is_finite()
            && self.sigma_min > 0.0
            && self.sigma_min <= self.sigma_max
            && self.rho > 0.0
    }

    /// Writes the `steps + 1` noise levels `sigma_0 = sigma_max, ..., sigma_{N-1} = sigma_min, sigma_N = 0`.
    ///
    /// Edge cases: `steps == 1` writes `[sigma_max, 0]`: the formula's `i/(N-1)` is `0/0` there (EDM's
    /// reference code yields NaN), and one step from the top straight to the data is the sensible reading.
    /// `steps == 0` writes just `[0]` (a sampler given it does nothing).
    /// The first and the `(N-1)`-th levels are exactly `sigma_max` and `sigma_min` (not recomputed through
    /// `powf`, which could be off by an ulp), and the levels between are kept inside `[sigma_min, sigma_max]`.
    ///
    /// # Panics
    /// If `out.len() != steps + 1` (caller contract).
    pub fn fill(&self, steps: usize, out: &mut [f32]) {
        contract!(out.len() == steps + 1, "EdmSchedule::fill: out must hold steps + 1 values");
        out[steps] = 0.0;
        if steps == 0 {
            return;
        }
        out[0] = self.sigma_max;
        if steps == 1 {
            return;
        }
        let inv_rho = 1.0 / self.rho;
        let hi = math::pow(self.sigma_max, inv_rho);
        let lo = math::pow(self.sigma_min, inv_rho);
        let last = (steps - 1) as f32;
        for (i, o) in out.iter_mut().enumerate().take(steps - 1).skip(1) {
            let sigma = math::pow(hi + i as f32 / last * (lo - hi), self.rho);
            // powf(powf(s, 1/rho), rho) can overshoot the end points by an ulp; keep the schedule monotone.
            // (Written out instead of `clamp`, which panics when sigma_min > sigma_max.)
            *o = if sigma > self.sigma_max {
                self.sigma_max
            } else if sigma < self.sigma_min {
                self.sigma_min
            } else {
                sigma
            };
        }
        out[steps - 1] = self.sigma_min;
    }
}

/// The f64 reference of [`EdmSchedule`]: writes the `N = out.len()` levels
/// `sigma_i = (sigma_max^(1/rho) + i/(N-1) * (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho`,
/// `i = 0..N-1`, descending from (about) `sigma_max` to (about) `sigma_min`, evaluated in f64 with libm's
/// `pow` (so the same bits on every platform), for host code that works in f64 (the trainer's distillation
/// grids and its f64 samplers). `N = 1` writes `[sigma_max]` (the formula's `0/0`), `N = 0` nothing.
///
/// Unlike [`EdmSchedule::fill`] it writes the `N` non-zero levels only (no final 0) and keeps the formula's
/// values at the end points (within an ulp of `sigma_max` and `sigma_min`, not pinned to them, and not
/// clamped): it is the plain formula, which the f32 levels approximate to a relative 1e-5 (tested).
pub fn edm_levels_f64(sigma_min: f64, sigma_max: f64, rho: f64, out: &mut [f64]) {
    let n = out.len();
    if n == 1 {
        out[0] = sigma_max;
    }
    if n < 2 {
        return;
    }
    let a = math::pow_f64(sigma_max, 1.0 / rho);
    let b = math::pow_f64(sigma_min, 1.0 / rho);
    for (i, o) in out.iter_mut().enumerate() {
        *o = math::pow_f64(a + i as f64 / (n - 1) as f64 * (b - a), rho);
    }
}
