//! Convergence order of the ODE solvers against the exact probability-flow solution of a Gaussian.
//!
//! The solvers integrate from sigma_max = 80 to sigma_min = 0.002 on EDM schedules (rho = 7) of N, 2N, 4N,
//! ... steps; the error is measured at sigma_min against the f64 closed form (the step from sigma_min to 0
//! is one denoiser evaluation whose error does not depend on N, so it is left out). Doubling N should divide
//! Euler's error by ~2 (first order) and Heun's by ~4 (second order).
//!
//! Measured on x86-64 (`--nocapture` prints them): max error over 8 starts
//! * Euler, N = 16, 32, 64, 128, 256: 4.49e-1, 2.33e-1, 1.19e-1, 5.99e-2, 3.01e-2; ratios 1.93, 1.96, 1.98, 1.99
//! * Heun, N = 8, 16, 32, 64, 128: 6.21e-1, 1.40e-1, 3.31e-2, 8.05e-3, 1.99e-3; ratios 4.43, 4.23, 4.11, 4.06

mod denoiser_support;

use denoiser_support::*;
use gaussdiff_core::denoiser::{Denoiser, GaussianDenoiser};
use gaussdiff_core::rng::Rng;
use gaussdiff_core::sampler::{sample, scratch_len, Sampler};
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_core::tensor::DType;

const D: usize = 12;
const K: usize = 4;
const C: f32 = 0.02;

fn max_error(solver: Sampler, steps: usize) -> f64 {
    let mut rng = Rng::new(77);
    let u = orthonormal(&mut rng, D, K);
    let mu = normals(&mut rng, D, 1).column(0) * 0.5;
    let lambda = [3.0f32, 0.8, 0.1, 0.03];
    let (mu_b, u_b, lam_b) = (
        encode(DType::F32, 1, D, &mu.iter().map(|&v| v as f32).collect::<Vec<_>>()),
        encode(DType::F32, K, D, &row_major(&u.transpose())),
        encode(DType::F32, 1, K, &lambda),
    );
    let g = GaussianDenoiser::new(
        view(DType::F32, 1, D, &mu_b),
        view(DType::F32, K, D, &u_b),
        view(DType::F32, 1, K, &lam_b),
        C,
    )
    .unwrap();
    let reference = GaussianRef::stored(&g);

    let sched = EdmSchedule::default();
    let mut sigmas = vec![0.0f32; steps + 2];
    sched.fill(steps + 1, &mut sigmas); // steps + 1 levels down to sigma_min, then 0 (dropped below)
    let sigmas = &sigmas[..steps + 1];
    let mut scratch = vec![0.0f32; scratch_len(D, g.scratch_len())];
    let mut worst = 0.0f64;
    for _ in 0..8 {
        let mut x: Vec<f32> = (0..D).map(|_| 80.0 * rng.normal()).collect();
        let exact = reference.flow(&to_f64(&x), 80.0, sched.sigma_min as f64);
        sample(&g, solver, sigmas, None, &mut x, &mut scratch, |_, _| {});
        worst = worst.max(x.iter().zip(exact.iter()).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max));
    }
    worst
}

fn ratios(solver: Sampler, steps: &[usize]) -> Vec<f64> {
    let errs: Vec<f64> = steps.iter().map(|&n| max_error(solver, n)).collect();
    eprintln!("{solver:?}: steps {steps:?} errors {:?}", errs.iter().map(|e| format!("{e:.3e}")).collect::<Vec<_>>());
    let r: Vec<f64> = errs.windows(2).map(|w| w[0] / w[1]).collect();
    eprintln!("{solver:?}: ratios {:?}", r.iter().map(|e| format!("{e:.2}")).collect::<Vec<_>>());
    r
}

#[test]
fn euler_is_first_order() {
    let r = ratios(Sampler::Euler, &[16, 32, 64, 128, 256]);
    for x in &r[1..] {
        assert!((1.7..2.3).contains(x), "Euler ratio {x} is not ~2: {r:?}");
    }
}

#[test]
fn heun_is_second_order() {
    let r = ratios(Sampler::Heun, &[8, 16, 32, 64, 128]);
    for x in &r[1..] {
        assert!((3.4..4.6).contains(x), "Heun ratio {x} is not ~4: {r:?}");
    }
}
