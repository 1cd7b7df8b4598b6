//! The one sample recipe: what a [`SampleSpec`] (sampler, steps, seed) means, bit for bit.
//!
//! 1. Initial noise ([`initial_noise`]): sample `i` of a run with seed `S` draws `z` with
//!    `Rng::new(S.wrapping_add(i)).fill_normal(z)` and starts at `x = sigma_max * z` (element-wise f32).
//!    A spec's `seed` is the per-sample seed (`i = 0`); [`SampleSpec::nth`] gives the spec of sample `i`.
//! 2. `exact`: [`sample_exact`] from `sigma_max` to 0; `euler` / `heun`: the EDM schedule
//!    ([`EdmSchedule::fill`]) with `steps` steps, then [`sample`] without churn.
//! 3. Mixture models: `euler` / `heun` integrate the mixture's ODE; `exact` picks component
//!    `j = pick(u)` by its weight ([`MixtureDenoiser::pick`], `u` = the first
//!    `Rng::new(seed ^ PICK_STREAM).uniform_f32()`, [`pick_component`]) and runs the exact solution of that
//!    component from the same initial noise. Class-conditional sampling runs the recipe on
//!    [`Model::component`] (a Gaussian model), so a class is chosen outside the spec.
//!
//! The firmware, the CLI (`sample`, `demo`, `bench`, `capture`), the trainer and the tests all go through
//! [`SampleSpec::run`] (or, for timings that keep the noise outside, [`initial_noise`] and
//! [`SampleSpec::scratch_len`]), so a frame's `seed`, `sampler` and `steps` mean the same bits everywhere.

use core::fmt;

use super::{exact_scratch_len, sample, sample_exact, scratch_len, Sampler};
use crate::denoiser::{Denoiser, MixtureDenoiser, Model};
use crate::rng::Rng;
use crate::schedule::EdmSchedule;

/// The initial state of sample `i` of a run seeded `seed`: `z` from
/// `Rng::new(seed.wrapping_add(i)).fill_normal`, then `x = sigma_max * z` element by element (f32).
pub fn initial_noise(seed: u64, i: u64, sigma_max: f32, x: &mut [f32]) {
    Rng::new(seed.wrapping_add(i)).fill_normal(x);
    for v in x.iter_mut() {
        *v *= sigma_max;
    }
}

/// Salt of the generator that picks a mixture component for the exact sampler (a stream apart from the
/// initial noise's, so the noise of sample `i` is the same for every kind of model): ASCII `mixpick!`.
pub const PICK_STREAM: u64 = 0x6d69_7870_6963_6b21;

/// The component the exact sampler uses for a mixture and `seed` (the spec's per-sample seed):
/// `m.pick(Rng::new(seed ^ PICK_STREAM).uniform_f32())`.
pub fn pick_component(m: &MixtureDenoiser<'_>, seed: u64) -> usize {
    m.pick(Rng::new(seed ^ PICK_STREAM).uniform_f32())
}

/// What a sample is: sampler, number of steps and the seed of the initial noise (also what a frame of the
/// protocol carries, `crate::frame`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SampleSpec {
    /// The sampler.
    pub sampler: Sampler,
    /// Steps on the EDM schedule (0 for [`Sampler::Exact`] by convention; ignored there).
    pub steps: u32,
    /// Seed of the [`Rng`] that draws the initial noise ([`initial_noise`] with `i = 0`).
    pub seed: u64,
}

/// Why a [`SampleSpec`] cannot run on a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SpecError {
    /// The exact sampler needs a Gaussian (or mixture) model; the blob holds a linear one.
    ExactNeedsGaussian,
    /// Euler and Heun need at least one step.
    ZeroSteps,
    /// More steps than the caller's `sigmas` buffer holds (`max` = its length - 1).
    TooManySteps {
        /// Steps asked for.
        steps: u32,
        /// The most the buffer allows.
        max: u32,
    },
    /// [`SampleSpec::run_on_levels`] was given a number of noise levels other than `steps + 1`.
    LevelCount {
        /// Steps of the spec.
        steps: u32,
        /// Levels given.
        levels: u32,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ExactNeedsGaussian => f.write_str("the exact sampler needs a Gaussian blob, this one is linear"),
            Self::ZeroSteps => f.write_str("euler and heun need steps >= 1"),
            Self::TooManySteps { steps, max } => write!(f, "steps = {steps} exceeds the maximum {max}"),
            Self::LevelCount { steps, levels } => {
                write!(f, "{levels} noise levels for {steps} steps (expected steps + 1 = {})", u64::from(steps) + 1)
            }
        }
    }
}

impl core::error::Error for SpecError {}

impl SampleSpec {
    /// The spec of sample `i` of a run with this spec: the same sampler and steps, seed
    /// `seed.wrapping_add(i)` (so its noise is [`initial_noise`]`(seed, i, ..)`).
    pub const fn nth(self, i: u64) -> Self {
        Self { seed: self.seed.wrapping_add(i), ..self }
    }

    /// Scratch floats [`SampleSpec::run`] needs for `model` (enough for every sampler).
    pub fn scratch_len(model: &Model<'_>) -> usize {
        let ode = scratch_len(model.dim(), model.scratch_len());
        match (model.as_gaussian(), model.as_mixture()) {
            (Some(g), _) => ode.max(exact_scratch_len(g)),
            (_, Some(m)) => ode.max(exact_scratch_len(&m.component(0))),
            _ => ode,
        }
    }

    /// Checks that the spec can run on `model` with a `sigmas` buffer of `sigmas_len` floats (the schedule
    /// needs `steps + 1`), in this order: the exact sampler needs a Gaussian model, the ODE samplers at
    /// least one step and at most `sigmas_len - 1`.
    ///
    /// # Errors
    /// The [`SpecError`] [`SampleSpec::run`] would return.
    pub fn check(&self, model: &Model<'_>, sigmas_len: usize) -> Result<(), SpecError> {
        let steps = self.steps as usize;
        match self.sampler {
            Sampler::Exact if model.as_linear().is_some() => Err(SpecError::ExactNeedsGaussian),
            Sampler::Euler | Sampler::Heun if steps == 0 => Err(SpecError::ZeroSteps),
            Sampler::Euler | Sampler::Heun if steps >= sigmas_len => {
                let max = u32::try_from(sigmas_len.saturating_sub(1)).unwrap_or(u32::MAX);
                Err(SpecError::TooManySteps { steps: self.steps, max })
            }
            _ => Ok(()),
        }
    }

    /// Produces the sample this spec names (the recipe in the module docs):
    ///
    /// 1. `x = schedule.sigma_max * z`, `z` from `Rng::new(seed).fill_normal` ([`initial_noise`]);
    /// 2. `exact`: [`sample_exact`] from `sigma_max` to 0 (a mixture: on the component
    ///    [`pick_component`] names); `euler`/`heun`: `schedule.fill(steps)` into `sigmas[..=steps]`, then
    ///    [`sample`] without churn.
    ///
    /// `on_step(i, sigma_next)` is called after each step (once for `exact`). Returns the number of
    /// denoiser (or flow) evaluations.
    ///
    /// # Errors
    /// [`SpecError`] when the spec does not fit the model or the `sigmas` buffer ([`SampleSpec::check`]).
    ///
    /// # Panics
    /// If `x.len() != model.dim()` or `scratch.len() < SampleSpec::scratch_len(model)` (caller contract).
    pub fn run(
        &self,
        model: &Model<'_>,
        schedule: &EdmSchedule,
        sigmas: &mut [f32],
        x: &mut [f32],
        scratch: &mut [f32],
        on_step: impl FnMut(usize, f32),
    ) -> Result<u32, SpecError> {
        self.check(model, sigmas.len())?;
        let levels: &[f32] = if self.sampler.is_ode() {
            let levels = &mut sigmas[..=self.steps as usize];
            schedule.fill(self.steps as usize, levels);
            levels
        } else {
            &[]
        };
        self.run_on_levels(model, schedule.sigma_max, levels, x, scratch, on_step)
    }

    /// [`SampleSpec::run`] on noise levels computed beforehand: `levels` holds the `steps + 1` levels that
    /// `schedule.fill(steps, ..)` writes, for euler and heun (the exact sampler ignores it: pass `&[]`), and
    /// `sigma_max` is the schedule's. Given the same levels it is the same computation as `run`, bit for bit;
    /// a firmware whose runs are fixed at build time computes the levels on the host (`firmware/build.rs`)
    /// and so links no `powf`.
    ///
    /// # Errors
    /// [`SpecError`] as for [`SampleSpec::run`], and [`SpecError::LevelCount`] when an ODE sampler is given
    /// other than `steps + 1` levels.
    ///
    /// # Panics
    /// If `x.len() != model.dim()` or `scratch.len() < SampleSpec::scratch_len(model)` (caller contract).
    pub fn run_on_levels(
        &self,
        model: &Model<'_>,
        sigma_max: f32,
        levels: &[f32],
        x: &mut [f32],
        scratch: &mut [f32],
        mut on_step: impl FnMut(usize, f32),
    ) -> Result<u32, SpecError> {
        contract!(x.len() == model.dim(), "SampleSpec::run: x must have length model.dim()");
        self.check(model, usize::MAX)?;
        if self.sampler.is_ode() && levels.len() != self.steps as usize + 1 {
            let levels = u32::try_from(levels.len()).unwrap_or(u32::MAX);
            return Err(SpecError::LevelCount { steps: self.steps, levels });
        }
        initial_noise(self.seed, 0, sigma_max, x);
        Ok(match (self.sampler, model) {
            (Sampler::Exact, Model::Gaussian(g)) => {
                let evals = sample_exact(g, sigma_max, x, scratch);
                on_step(0, 0.0);
                evals
            }
            #[cfg(feature = "mixture")]
            (Sampler::Exact, Model::Mixture(m)) => {
                let g = m.component(pick_component(m, self.seed));
                let evals = sample_exact(&g, sigma_max, x, scratch);
                on_step(0, 0.0);
                evals
            }
            #[allow(unreachable_patterns)]
            (Sampler::Exact, _) => return Err(SpecError::ExactNeedsGaussian),
            (sampler, _) => sample(model, sampler, levels, None, x, scratch, on_step),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_names_round_trip() {
        for k in Sampler::ALL {
            assert_eq!(Sampler::from_name(k.name()), Some(k));
            assert_eq!(k.name().parse::<Sampler>(), Ok(k));
        }
        assert_eq!(Sampler::from_name("ddim"), None);
        assert!("Heun".parse::<Sampler>().is_err());
    }

    #[test]
    fn nth_adds_the_index_to_the_seed() {
        let spec = SampleSpec { sampler: Sampler::Heun, steps: 18, seed: u64::MAX };
        assert_eq!(spec.nth(0), spec);
        assert_eq!(spec.nth(2).seed, 1);
        let (mut a, mut b) = ([0.0f32; 5], [0.0f32; 5]);
        initial_noise(7, 3, 80.0, &mut a);
        initial_noise(10, 0, 80.0, &mut b);
        assert_eq!(a, b);
    }
}
