//! Closed-form oracles on a small Gaussian whose eigenbasis is a known rotation of R^3: per-mode factors of
//! one exact, Euler and Heun step, the exactness of the final step to sigma = 0, evaluation counts, and the
//! convenience `sample_exact`.
//!
//! For a mode with variance `v` (an eigenvalue `lambda`, or the floor `c` for the complement) and coefficient
//! `a`, one step from `sigma_cur` to `sigma_next` multiplies `a` by
//! * exact: `sqrt((v + sigma_next^2) / (v + sigma_cur^2))`
//! * Euler: `(v + sigma_cur sigma_next) / (v + sigma_cur^2)`
//! * Heun: `1 + h/2 (sigma_cur / (v + sigma_cur^2) + sigma_next e / (v + sigma_next^2))`, `h = sigma_next -
//!   sigma_cur`, `e` the Euler factor.

mod denoiser_support;

use denoiser_support::*;
use gaussdiff_core::denoiser::{Denoiser, GaussianDenoiser};
use gaussdiff_core::sampler::{exact_scratch_len, sample, sample_exact, scratch_len, Sampler};
use gaussdiff_core::tensor::DType;
use nalgebra::{DMatrix, DVector, Rotation3, Vector3};

const LAMBDA: [f32; 2] = [2.0, 0.5];
const FLOOR: f32 = 0.3;
const MU: [f32; 3] = [0.2, -0.1, 0.3];

/// Columns: u_1, u_2 (the stored eigenvectors) and u_3 (the complement direction).
fn rotation() -> DMatrix<f64> {
    let r = Rotation3::from_axis_angle(&Vector3::z_axis(), 0.6) * Rotation3::from_axis_angle(&Vector3::x_axis(), 0.9);
    DMatrix::from_fn(3, 3, |i, j| r.matrix()[(i, j)])
}

struct Bytes {
    mu: Vec<u8>,
    u_t: Vec<u8>,
    lambda: Vec<u8>,
}

fn bytes() -> Bytes {
    let r = rotation();
    let u_t = r.columns(0, 2).transpose();
    Bytes {
        mu: encode(DType::F32, 1, 3, &MU),
        u_t: encode(DType::F32, 2, 3, &row_major(&u_t.into_owned())),
        lambda: encode(DType::F32, 1, 2, &LAMBDA),
    }
}

fn gaussian(b: &Bytes) -> GaussianDenoiser<'_> {
    GaussianDenoiser::new(
        view(DType::F32, 1, 3, &b.mu),
        view(DType::F32, 2, 3, &b.u_t),
        view(DType::F32, 1, 2, &b.lambda),
        FLOOR,
    )
    .unwrap()
}

/// Mode variances in column order of `rotation()`.
fn variances() -> [f64; 3] {
    [LAMBDA[0] as f64, LAMBDA[1] as f64, FLOOR as f64]
}

/// `x = mu + sum_i a_i u_i`.
fn compose(a: [f64; 3]) -> Vec<f32> {
    let r = rotation();
    let x = DVector::from_column_slice(&MU.map(|v| v as f64)) + &r * DVector::from_column_slice(&a);
    x.iter().map(|&v| v as f32).collect()
}

/// Coefficients `a_i = u_i^T (x - mu)` in f64.
fn coefficients(x: &[f32]) -> [f64; 3] {
    let a = rotation().transpose() * (to_f64(x) - DVector::from_column_slice(&MU.map(|v| v as f64)));
    [a[0], a[1], a[2]]
}

const STEPS: [(f32, f32); 5] = [(80.0, 57.586), (10.0, 3.0), (1.0, 0.5), (0.1, 0.02), (0.5, 0.002)];

fn start(sigma_cur: f32) -> [f64; 3] {
    let s = 1.0 + sigma_cur as f64;
    [1.3 * s, -0.8 * s, 0.6 * s]
}

fn assert_factors(got: [f64; 3], a: [f64; 3], factor: impl Fn(f64) -> f64, what: &str) {
    assert_factors_tol(got, a, factor, what, 1.0);
}

/// Tolerance `2e-6 * amplification * max(|a|, 1)`.
fn assert_factors_tol(got: [f64; 3], a: [f64; 3], factor: impl Fn(f64) -> f64, what: &str, amplification: f64) {
    let scale = amplification * a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, v) in variances().into_iter().enumerate() {
        let want = a[i] * factor(v);
        assert!((got[i] - want).abs() < 2e-6 * scale, "{what}: mode {i} (v = {v}): {} vs oracle {want}", got[i]);
    }
}

#[test]
fn one_exact_step_scales_each_mode_by_the_flow_factor() {
    let b = bytes();
    let g = gaussian(&b);
    let mut out = [0.0f32; 3];
    let mut scratch = vec![0.0f32; g.exact_flow_scratch_len()];
    for (sc, sn) in STEPS {
        let a = start(sc);
        g.exact_flow(&compose(a), sc, sn, &mut out, &mut scratch);
        let (sc, sn) = (sc as f64, sn as f64);
        assert_factors(coefficients(&out), a, |v| ((v + sn * sn) / (v + sc * sc)).sqrt(), "exact");
    }
}

/// Each step of [`STEPS`] taken once by `solver` from `start(sigma_cur)`, `evals` denoiser evaluations each:
/// `(sigma_cur, sigma_next)` in f64, the start coefficients and the coefficients after the step.
fn one_steps(solver: Sampler, evals: u32) -> Vec<(f64, f64, [f64; 3], [f64; 3])> {
    let b = bytes();
    let g = gaussian(&b);
    let mut scratch = vec![0.0f32; scratch_len(3, g.scratch_len())];
    let step = |(sc, sn): (f32, f32)| {
        let a = start(sc);
        let mut x = compose(a);
        assert_eq!(sample(&g, solver, &[sc, sn], None, &mut x, &mut scratch, |_, _| {}), evals, "{solver:?}");
        (sc as f64, sn as f64, a, coefficients(&x))
    };
    STEPS.into_iter().map(step).collect()
}

#[test]
fn one_euler_step_scales_each_mode_by_the_euler_factor() {
    for (sc, sn, a, got) in one_steps(Sampler::Euler, 1) {
        assert_factors(got, a, |v| (v + sc * sn) / (v + sc * sc), "Euler");
    }
}

#[test]
fn one_heun_step_scales_each_mode_by_the_heun_factor() {
    for (sc, sn, a, got) in one_steps(Sampler::Heun, 2) {
        let heun = |v: f64| {
            let e = (v + sc * sn) / (v + sc * sc);
            1.0 + 0.5 * (sn - sc) * (sc / (v + sc * sc) + sn * e / (v + sn * sn))
        };
        // Heun's d_prime = (x_next - denoised) / sigma_next cancels in f32: x_next - denoised ~ sigma_next^2,
        // its rounding error ~ eps |x| is divided by sigma_next and multiplied by h / 2. So the attainable f32
        // accuracy is ~ eps |x| |h| / sigma_next (EDM's reference code samples in f64): the tolerance scales by
        // 1 + |h| / sigma_next (250 for the 0.5 -> 0.002 step, <= 3 on an EDM schedule).
        assert_factors_tol(got, a, heun, "Heun", 1.0 + (sc - sn) / sn);
    }
}

#[test]
fn final_step_to_zero_returns_exactly_the_denoiser() {
    let b = bytes();
    let g = gaussian(&b);
    let mut scratch = vec![0.0f32; scratch_len(3, g.scratch_len())];
    let mut den_scratch = vec![0.0f32; g.scratch_len()];
    for solver in [Sampler::Euler, Sampler::Heun] {
        for sc in [80.0f32, 1.0, 0.002] {
            let x0 = compose(start(sc));
            let mut want = [0.0f32; 3];
            g.denoise(&x0, sc, &mut want, &mut den_scratch);
            let mut x = x0.clone();
            let evals = sample(&g, solver, &[sc, 0.0], None, &mut x, &mut scratch, |_, _| {});
            assert_eq!(evals, 1, "{solver:?}: no correction on the step to 0");
            assert_eq!(x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.map(f32::to_bits), "{solver:?} at {sc}");
            // ... and that is D_G: each mode scaled by v / (v + sigma^2).
            let s2 = (sc as f64).powi(2);
            assert_factors(coefficients(&x), start(sc), |v| v / (v + s2), "D_G");
        }
    }
}

#[test]
fn evaluation_counts_and_step_callbacks() {
    let b = bytes();
    let g = gaussian(&b);
    let sigmas = edm_sigmas_18();
    let mut scratch = vec![0.0f32; scratch_len(3, g.scratch_len())];
    for (solver, want) in [(Sampler::Euler, 18), (Sampler::Heun, 35)] {
        let mut x = compose([80.0, -40.0, 20.0]);
        let mut seen = Vec::new();
        let evals = sample(&g, solver, &sigmas, None, &mut x, &mut scratch, |i, s| seen.push((i, s)));
        assert_eq!(evals, want, "{solver:?}");
        assert_eq!(seen, (0..18).map(|i| (i, sigmas[i + 1])).collect::<Vec<_>>());
    }
    // A zero-step schedule does nothing.
    let mut x = compose([1.0, 2.0, 3.0]);
    let before = x.clone();
    assert_eq!(sample(&g, Sampler::Heun, &[0.0], None, &mut x, &mut scratch, |_, _| {}), 0);
    assert_eq!(x, before);
}

#[test]
fn sample_exact_is_the_flow_to_zero() {
    let b = bytes();
    let g = gaussian(&b);
    let x_t = compose([60.0, -30.0, 45.0]);
    let mut want = [0.0f32; 3];
    let mut flow_scratch = vec![0.0f32; g.exact_flow_scratch_len()];
    g.exact_flow(&x_t, 80.0, 0.0, &mut want, &mut flow_scratch);
    let mut x = x_t.clone();
    let mut scratch = vec![0.0f32; exact_scratch_len(&g)];
    assert_eq!(sample_exact(&g, 80.0, &mut x, &mut scratch), 1);
    assert_eq!(x, want.to_vec());
    assert_factors(coefficients(&x), coefficients(&x_t), |v| (v / (v + 6400.0)).sqrt(), "exact to 0");
}
