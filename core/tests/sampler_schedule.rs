//! The EDM schedule against EDM's published values and an f64 evaluation of eq. 5.

use gaussdiff_core::schedule::{edm_levels_f64, EdmSchedule};

/// The f64 reference of Karras et al. (2022) eq. 5 ([`edm_levels_f64`]) for an f32 schedule, plus the final 0.
fn reference(s: &EdmSchedule, steps: usize) -> Vec<f64> {
    let mut v = vec![0.0f64; steps];
    edm_levels_f64(s.sigma_min.into(), s.sigma_max.into(), s.rho.into(), &mut v);
    v.push(0.0);
    v
}

/// The f64 reference is the plain formula: within an ulp of std's `powf` evaluation (libm's `pow` and the
/// platform's differ in the last bit for a few arguments), on EDM's parameters for 2 to 300 levels; the
/// 10-level grid (the trainer's default distillation grid) is identical bit for bit.
#[test]
fn f64_reference_is_the_plain_formula() {
    let (lo, hi, rho) = (0.002f64, 80.0f64, 7.0f64);
    let (a, b) = (hi.powf(1.0 / rho), lo.powf(1.0 / rho));
    for n in 2usize..=300 {
        let mut got = vec![0.0f64; n];
        edm_levels_f64(lo, hi, rho, &mut got);
        for (i, &g) in got.iter().enumerate() {
            let want = (a + i as f64 / (n - 1) as f64 * (b - a)).powf(rho);
            assert!(g.to_bits().abs_diff(want.to_bits()) <= 1, "N={n} i={i}: {g:e} vs {want:e}");
            if n == 10 {
                assert_eq!(g.to_bits(), want.to_bits(), "N={n} i={i}: {g:e} vs {want:e}");
            }
        }
    }
    let mut one = [0.0f64];
    edm_levels_f64(lo, hi, rho, &mut one);
    assert_eq!(one, [80.0]);
}

#[test]
fn eighteen_steps_match_edm() {
    let mut out = [0.0f32; 19];
    EdmSchedule::default().fill(18, &mut out);
    // EDM's 18-step schedule (sigma_min 0.002, sigma_max 80, rho 7), as printed by the reference code
    // `edm/generate.py` (t_steps) to 4-5 significant digits.
    let edm = [
        (0, 80.0),
        (1, 57.586),
        (2, 40.786),
        (3, 28.375),
        (4, 19.352),
        (5, 12.910),
        (6, 8.4009),
        (9, 1.9233),
        (12, 0.29644),
        (15, 0.022935),
        (16, 0.0075280),
        (17, 0.002),
    ];
    for (i, want) in edm {
        let rel = (out[i] as f64 - want).abs() / want;
        assert!(rel < 5e-5, "sigma_{i} = {} vs EDM {want}", out[i]);
    }
    assert_eq!(out[18], 0.0);
    assert_eq!(out[0], 80.0);
    assert_eq!(out[17], 0.002);
}

#[test]
fn matches_f64_reference_and_descends() {
    let schedules = [
        EdmSchedule::EDM,
        EdmSchedule { sigma_min: 0.01, sigma_max: 10.0, rho: 3.0 },
        EdmSchedule { sigma_min: 0.5, sigma_max: 0.5, rho: 7.0 },
    ];
    for s in schedules {
        assert!(s.is_valid());
        for steps in [2usize, 3, 10, 18, 40, 256] {
            let mut out = vec![0.0f32; steps + 1];
            s.fill(steps, &mut out);
            let want = reference(&s, steps);
            for (i, (&o, &w)) in out.iter().zip(&want).enumerate() {
                let err = (o as f64 - w).abs();
                assert!(err <= 1e-5 * w, "{s:?} N={steps} i={i}: {o} vs {w}");
            }
            assert!(out.windows(2).all(|p| p[0] >= p[1]), "{s:?} N={steps}: not descending");
        }
    }
}

#[test]
fn edge_cases() {
    let s = EdmSchedule::default();
    let mut one = [f32::NAN; 2];
    s.fill(1, &mut one);
    assert_eq!(one, [80.0, 0.0]);
    let mut zero = [f32::NAN; 1];
    s.fill(0, &mut zero);
    assert_eq!(zero, [0.0]);
    assert!(!EdmSchedule { sigma_min: 0.0, ..s }.is_valid());
    assert!(!EdmSchedule { sigma_min: 100.0, ..s }.is_valid());
    assert!(!EdmSchedule { rho: f32::NAN, ..s }.is_valid());
}

#[test]
#[should_panic(expected = "steps + 1")]
fn wrong_output_length_is_a_caller_error() {
    EdmSchedule::default().fill(18, &mut [0.0; 18]);
}
