//! Samplers for the EDM probability-flow ODE `dx/dsigma = (x - D(x; sigma)) / sigma` (Karras et al. 2022).
//!
//! [`sample`] runs EDM's Algorithm 2 over any [`Denoiser`] and a descending list of noise levels
//! `sigmas[0] > ... > sigmas[N] (= 0 usually)`, e.g. from [`crate::schedule::EdmSchedule::fill`]. Step `i`,
//! with `sigma_cur = sigmas[i]`, `sigma_next = sigmas[i+1]`:
//!
//! ```text
//! gamma     = min(S_churn / N, sqrt(2) - 1)  if S_min <= sigma_cur <= S_max (and churn enabled), else 0
//! sigma_hat = sigma_cur + gamma sigma_cur
//! x_hat     = x + sqrt(sigma_hat^2 - sigma_cur^2) S_noise eps,   eps ~ N(0, I)   (only drawn when gamma > 0)
//! denoised  = D(x_hat; sigma_hat)
//! d_cur     = (x_hat - denoised) / sigma_hat
//! x_next    = x_hat + (sigma_next - sigma_hat) d_cur                          (Euler)
//! Heun, if sigma_next != 0:
//!   denoised = D(x_next; sigma_next)
//!   d_prime  = (x_next - denoised) / sigma_next
//!   x_next   = x_hat + (sigma_next - sigma_hat) (d_cur / 2 + d_prime / 2)
//! ```
//!
//! So Euler costs `N` denoiser evaluations and Heun `2N - 1` when the last level is 0. A step to
//! `sigma_next = 0` sets `x_next = denoised` exactly (the Euler formula's value in exact arithmetic), so the
//! final step returns `D(x_hat; sigma_hat)` bit for bit.
//!
//! Without churn the sampler is deterministic in its input. With churn the noise comes from a caller-seeded
//! [`Rng`] (in step order, `d` normals per churned step via [`Rng::fill_normal`]): same seed, same bits.
//!
//! For Gaussian denoisers [`sample_exact`] skips the ODE solver: it applies the closed-form solution
//! ([`GaussianDenoiser::exact_flow`]) from `sigma_t` to 0.
//!
//! No function here allocates: the state `x` and a scratch buffer of [`scratch_len`] floats are the caller's.
//!
//! # The sample recipe
//! [`SampleSpec`] (sampler, steps, seed) names one sample, and [`SampleSpec::run`] is the one definition of
//! how it is produced (initial noise, schedule, scratch size, sampler), shared by the firmware, the CLI
//! (`sample`, `demo`, `bench`, `capture`), the trainer and the tests; see the [`recipe`] module.

pub mod recipe;

use core::fmt;

use crate::denoiser::{Denoiser, GaussianDenoiser};
use crate::error::ParseNameError;
use crate::kernels;
use crate::math;
use crate::rng::Rng;

pub use recipe::{initial_noise, pick_component, SampleSpec, SpecError};

/// The sampler: the exact probability-flow solution or an ODE solver on the EDM schedule. The one sampler
/// enum of the workspace (the frame protocol, the CLI and the firmware all name samplers with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Sampler {
    /// The exact solution of the probability-flow ODE ([`sample_exact`]; Gaussian denoisers only); a spec's
    /// `steps` is ignored.
    Exact,
    /// Euler steps: first order, one evaluation per step.
    Euler,
    /// Heun steps: second order (trapezoidal correction), two evaluations per step except a final step to 0.
    #[default]
    Heun,
}

impl Sampler {
    /// All samplers, in protocol order.
    pub const ALL: [Self; 3] = [Self::Exact, Self::Euler, Self::Heun];

    /// The name used by the frame protocol and the command lines: `exact`, `euler` or `heun`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Euler => "euler",
            Self::Heun => "heun",
        }
    }

    /// The sampler for a name ([`Sampler::name`]), `None` for any other text. The one sampler-name parser
    /// (also behind [`core::str::FromStr`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// True for the ODE solvers (Euler, Heun), which step along a schedule.
    pub const fn is_ode(self) -> bool {
        !matches!(self, Self::Exact)
    }
}

impl fmt::Display for Sampler {
    /// [`Sampler::name`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Sampler {
    type Err = ParseNameError;

    /// [`Sampler::from_name`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(ParseNameError::new("expected exact, euler or heun"))
    }
}

/// EDM's stochastic churn (Algorithm 2): at levels in `[s_min, s_max]`, noise is added to raise `sigma_cur`
/// by the factor `1 + gamma`, `gamma = min(s_churn / N, sqrt(2) - 1)`, before the step.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Churn {
    /// Total churn `S_churn` (spread over the `N` steps); 0 disables it.
    pub s_churn: f32,
    /// Lowest level that is churned, `S_min`.
    pub s_min: f32,
    /// Highest level that is churned, `S_max`.
    pub s_max: f32,
    /// Scale of the added noise, `S_noise` (slightly above 1 compensates detail loss).
    pub s_noise: f32,
}

impl Churn {
    /// `gamma` for a step at `sigma_cur` in a schedule of `steps` steps.
    pub fn gamma(&self, sigma_cur: f32, steps: usize) -> f32 {
        if self.s_min <= sigma_cur && sigma_cur <= self.s_max && steps > 0 {
            let g = self.s_churn / steps as f32;
            if g < core::f32::consts::SQRT_2 - 1.0 {
                g
            } else {
                core::f32::consts::SQRT_2 - 1.0
            }
        } else {
            0.0
        }
    }
}

/// Scratch floats [`sample`] needs for dimension `d` and a denoiser needing `denoiser_scratch`
/// (`x_hat`, `denoised`, `d_cur`, then the denoiser's own scratch).
pub const fn scratch_len(d: usize, denoiser_scratch: usize) -> usize {
    3 * d + denoiser_scratch
}

/// Scratch floats [`sample_exact`] needs: a copy of `x` plus the flow's scratch.
pub fn exact_scratch_len(g: &GaussianDenoiser<'_>) -> usize {
    g.dim() + g.exact_flow_scratch_len()
}

/// Integrates from `sigmas[0]` to `sigmas[N]` (`N = sigmas.len() - 1`) in place and returns the number of
/// denoiser evaluations. See the module docs for the algorithm.
///
/// * `x`: on entry the state at `sigmas[0]` (typically `sigma_max * z`, `z ~ N(0, I)`); on exit the sample.
/// * `churn`: `None` for the deterministic sampler, or the churn parameters and the generator for `eps`.
/// * `on_step(i, sigma_next)` is called after step `i` (0-based) has finished (progress reports).
///
/// * `sampler`: [`Sampler::Euler`] or [`Sampler::Heun`].
///
/// # Panics
/// Caller contract: `sampler` is an ODE solver (not [`Sampler::Exact`], which is [`sample_exact`]);
/// `sigmas` non-empty, every level before the last `> 0` and every level `>= 0`; `x.len() == den.dim()`;
/// `scratch.len() >= scratch_len(den.dim(), den.scratch_len())`.
pub fn sample<D: Denoiser + ?Sized>(
    den: &D,
    sampler: Sampler,
    sigmas: &[f32],
    churn: Option<(&Churn, &mut Rng)>,
    x: &mut [f32],
    scratch: &mut [f32],
    mut on_step: impl FnMut(usize, f32),
) -> u32 {
    let d = den.dim();
    contract!(sampler.is_ode(), "sample: the exact sampler has no steps (use sample_exact or SampleSpec::run)");
    contract!(!sigmas.is_empty(), "sample: sigmas must hold at least the start level");
    contract!(x.len() == d, "sample: x must have length den.dim()");
    contract!(scratch.len() >= scratch_len(d, den.scratch_len()), "sample: scratch shorter than scratch_len()");
    let steps = sigmas.len() - 1;
    let (x_hat, rest) = scratch.split_at_mut(d);
    let (denoised, rest) = rest.split_at_mut(d);
    let (d_cur, den_scratch) = rest.split_at_mut(d);
    let mut churn = churn;
    let mut evals = 0u32;

    for i in 0..steps {
        let (sigma_cur, sigma_next) = (sigmas[i], sigmas[i + 1]);
        contract!(sigma_cur > 0.0 && sigma_next >= 0.0, "sample: levels must be > 0 (the last >= 0)");

        // Churn: raise the noise level to sigma_hat by adding fresh noise.
        let gamma = churn.as_ref().map_or(0.0, |(c, _)| c.gamma(sigma_cur, steps));
        let sigma_hat = sigma_cur + gamma * sigma_cur;
        x_hat.copy_from_slice(x);
        if gamma > 0.0 {
            if let Some((c, rng)) = churn.as_mut() {
                let scale = math::sqrt(sigma_hat * sigma_hat - sigma_cur * sigma_cur) * c.s_noise;
                rng.fill_normal(d_cur); // d_cur is free until the Euler step: use it for eps
                kernels::axpy(scale, d_cur, x_hat);
            }
        }

        // Euler step from sigma_hat to sigma_next.
        den.denoise(x_hat, sigma_hat, denoised, den_scratch);
        evals += 1;
        if sigma_next == 0.0 {
            // Exact in exact arithmetic: x_hat - sigma_hat (x_hat - denoised) / sigma_hat = denoised.
            x.copy_from_slice(denoised);
        } else {
            let h = sigma_next - sigma_hat;
            for j in 0..d {
                d_cur[j] = (x_hat[j] - denoised[j]) / sigma_hat;
                x[j] = x_hat[j] + h * d_cur[j];
            }
            // Heun's second-order correction (x holds x_next).
            if sampler == Sampler::Heun {
                den.denoise(x, sigma_next, denoised, den_scratch);
                evals += 1;
                for j in 0..d {
                    let d_prime = (x[j] - denoised[j]) / sigma_next;
                    x[j] = x_hat[j] + h * (0.5 * d_cur[j] + 0.5 * d_prime);
                }
            }
        }
        on_step(i, sigma_next);
    }
    evals
}

/// Closed-form sample for a Gaussian denoiser: replaces `x` (the state at `sigma_t`, e.g. `sigma_max * z`)
/// by the exact probability-flow solution at `sigma = 0`. Returns the number of flow evaluations (1).
///
/// # Panics
/// If `x.len() != g.dim()` or `scratch.len() < exact_scratch_len(g)` (caller contract).
pub fn sample_exact(g: &GaussianDenoiser<'_>, sigma_t: f32, x: &mut [f32], scratch: &mut [f32]) -> u32 {
    let d = x.len();
    contract!(scratch.len() >= exact_scratch_len(g), "sample_exact: scratch shorter than exact_scratch_len()");
    let (x_t, flow_scratch) = scratch.split_at_mut(d);
    x_t.copy_from_slice(x);
    g.exact_flow(x_t, sigma_t, 0.0, x, flow_scratch);
    1
}
