//! Same seed, same bits: the whole pipeline (initial noise, churn noise, solver) is a pure function of the
//! seed, and churn draws exactly `d` normals per churned step from the caller's generator.

mod denoiser_support;

use denoiser_support::*;
use gaussdiff_core::denoiser::{Denoiser, GaussianDenoiser};
use gaussdiff_core::rng::Rng;
use gaussdiff_core::sampler::{sample, scratch_len, Churn, Sampler};
use gaussdiff_core::tensor::DType;

const D: usize = 20;
const K: usize = 5;

struct Bytes(Vec<u8>, Vec<u8>, Vec<u8>);

fn bytes() -> Bytes {
    let mut rng = Rng::new(1);
    let u = orthonormal(&mut rng, D, K);
    let mu: Vec<f32> = (0..D).map(|i| (i as f32 * 0.3).sin() * 0.5).collect();
    Bytes(
        encode(DType::F16, 1, D, &mu),
        encode(DType::F16, K, D, &row_major(&u.transpose())),
        encode(DType::F32, 1, K, &[2.0, 1.0, 0.5, 0.2, 0.1]),
    )
}

fn gaussian(b: &Bytes) -> GaussianDenoiser<'_> {
    GaussianDenoiser::new(
        view(DType::F16, 1, D, &b.0),
        view(DType::F16, K, D, &b.1),
        view(DType::F32, 1, K, &b.2),
        0.01,
    )
    .unwrap()
}

/// EDM's stochastic settings (their ImageNet-64 values).
const CHURN: Churn = Churn { s_churn: 40.0, s_min: 0.05, s_max: 50.0, s_noise: 1.003 };

/// Seed -> x_T = sigma_max z -> Heun (optionally with churn from the same generator) -> bits.
fn run(g: &GaussianDenoiser<'_>, seed: u64, churn: Option<&Churn>) -> (Vec<u32>, [u32; 4]) {
    let sigmas = edm_sigmas_18();
    let mut rng = Rng::new(seed);
    let mut x = vec![0.0f32; D];
    rng.fill_normal(&mut x);
    x.iter_mut().for_each(|v| *v *= sigmas[0]);
    let mut scratch = vec![0.0f32; scratch_len(D, g.scratch_len())];
    sample(g, Sampler::Heun, &sigmas, churn.map(|c| (c, &mut rng)), &mut x, &mut scratch, |_, _| {});
    (x.iter().map(|v| v.to_bits()).collect(), rng.state())
}

#[test]
fn deterministic_sampling_repeats_bit_for_bit() {
    let b = bytes();
    let g = gaussian(&b);
    assert_eq!(run(&g, 3, None), run(&g, 3, None));
    assert_ne!(run(&g, 3, None).0, run(&g, 4, None).0, "different seeds must give different samples");
}

#[test]
fn churned_sampling_repeats_bit_for_bit_and_depends_on_the_seed() {
    let b = bytes();
    let g = gaussian(&b);
    let (a1, s1) = run(&g, 11, Some(&CHURN));
    let (a2, s2) = run(&g, 11, Some(&CHURN));
    assert_eq!(a1, a2);
    assert_eq!(s1, s2);
    assert_ne!(a1, run(&g, 12, Some(&CHURN)).0);
    // Churn really changes the trajectory.
    assert_ne!(a1, run(&g, 11, None).0);
}

#[test]
fn churn_draws_d_normals_per_churned_step_and_none_when_off() {
    let b = bytes();
    let g = gaussian(&b);
    let sigmas = edm_sigmas_18();
    let churned = sigmas[..18].iter().filter(|&&s| (CHURN.s_min..=CHURN.s_max).contains(&s)).count();
    assert!(churned > 0 && churned < 18);
    // Replay the generator: initial noise, then one fill_normal(d) per churned step.
    let mut replay = Rng::new(11);
    let mut buf = [0.0f32; D];
    replay.fill_normal(&mut buf);
    for _ in 0..churned {
        replay.fill_normal(&mut buf);
    }
    assert_eq!(run(&g, 11, Some(&CHURN)).1, replay.state());

    // S_churn = 0: no draws and the deterministic result.
    let off = Churn { s_churn: 0.0, ..CHURN };
    let mut after_init = Rng::new(11);
    after_init.fill_normal(&mut buf);
    assert_eq!(run(&g, 11, Some(&off)), (run(&g, 11, None).0, after_init.state()));
}

#[test]
fn gamma_follows_edm() {
    let n = 18;
    assert_eq!(CHURN.gamma(10.0, n), (40.0f32 / 18.0).min(2f32.sqrt() - 1.0));
    assert_eq!(Churn { s_churn: 1.8, ..CHURN }.gamma(10.0, n), 1.8f32 / 18.0);
    assert_eq!(CHURN.gamma(60.0, n), 0.0);
    assert_eq!(CHURN.gamma(0.01, n), 0.0);
    assert_eq!(CHURN.gamma(50.0, n), CHURN.gamma(0.05, n));
}

#[test]
fn churned_samples_stay_finite_and_on_the_data_scale() {
    // A loose sanity check of the stochastic sampler: final samples are finite and of the data's size.
    let b = bytes();
    let g = gaussian(&b);
    for seed in 0..20 {
        let (x, _) = run(&g, seed, Some(&CHURN));
        let norm = x.iter().map(|&v| (f32::from_bits(v) as f64).powi(2)).sum::<f64>().sqrt();
        assert!(norm.is_finite() && norm < 20.0, "seed {seed}: |x| = {norm}");
    }
}

/// `SampleSpec::run_on_levels` on the levels `EdmSchedule::fill` writes is `SampleSpec::run`, bit for bit
/// (the firmware computes the levels at build time), and refuses a level count other than `steps + 1`.
#[test]
fn run_on_levels_is_run_given_the_schedules_levels() {
    use gaussdiff_core::denoiser::Model;
    use gaussdiff_core::sampler::{SampleSpec, SpecError};
    use gaussdiff_core::schedule::EdmSchedule;

    let b = bytes();
    let model = Model::Gaussian(gaussian(&b));
    let mut scratch = vec![0.0f32; SampleSpec::scratch_len(&model)];
    let schedule = EdmSchedule { sigma_min: 0.004, sigma_max: 60.0, rho: 5.0 };
    for (sampler, steps) in [(Sampler::Exact, 0), (Sampler::Euler, 7), (Sampler::Heun, 18), (Sampler::Heun, 1)] {
        for seed in [0u64, 5, u64::MAX] {
            let spec = SampleSpec { sampler, steps, seed };
            let mut sigmas = [0.0f32; 40];
            let (mut a, mut b) = (vec![0.0f32; D], vec![0.0f32; D]);
            let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
            let evals_a = spec.run(&model, &schedule, &mut sigmas, &mut a, &mut scratch, |i, s| seen_a.push((i, s)));
            let mut levels = vec![0.0f32; steps as usize + 1];
            schedule.fill(steps as usize, &mut levels);
            let levels: &[f32] = if sampler.is_ode() { &levels } else { &[] };
            let evals_b = spec
                .run_on_levels(&model, schedule.sigma_max, levels, &mut b, &mut scratch, |i, s| seen_b.push((i, s)));
            assert_eq!(evals_a, evals_b);
            assert!(evals_a.is_ok());
            assert_eq!(
                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            assert_eq!(seen_a, seen_b);
        }
    }
    let spec = SampleSpec { sampler: Sampler::Euler, steps: 4, seed: 0 };
    let mut x = vec![0.0f32; D];
    for n in [0usize, 4, 6] {
        let levels = vec![1.0f32; n];
        let r = spec.run_on_levels(&model, 80.0, &levels, &mut x, &mut scratch, |_, _| {});
        assert_eq!(r, Err(SpecError::LevelCount { steps: 4, levels: n as u32 }));
    }
    let zero = SampleSpec { sampler: Sampler::Heun, steps: 0, seed: 0 };
    assert_eq!(zero.run_on_levels(&model, 80.0, &[80.0], &mut x, &mut scratch, |_, _| {}), Err(SpecError::ZeroSteps));
}
