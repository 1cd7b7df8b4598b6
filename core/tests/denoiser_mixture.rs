//! The mixture denoiser (kind 4) against an f64 reference computed from the values the blob stores, for
//! f32, f16 and int8 storage: moderate inputs, inputs far from every component, equal components, a
//! component of weight 0, floor 0, sigma -> 0, full rank; plus the exact identities (K = 1 is the Gaussian
//! bit for bit, a component is the Gaussian blob of its parameters bit for bit) and the samplers on it.
#![cfg(feature = "std")]
#![allow(clippy::needless_range_loop)] // the f64 reference reads like its formula

use gaussdiff_core::blob::format::section;
use gaussdiff_core::blob::write::{write_gaussian, write_mixture, GaussianParams, MixtureParams, WriteOptions};
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::pixel::ImageShape;
use gaussdiff_core::rng::Rng;
use gaussdiff_core::sampler::{pick_component, SampleSpec, Sampler};
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_core::tensor::DType;

/// A random component: mean, `r` orthonormal rows (Gram-Schmidt in f64), descending eigenvalues.
fn component(rng: &mut Rng, d: usize, r: usize, floor: f32, shift: f32) -> GaussianParams {
    let mu: Vec<f32> = (0..d).map(|_| rng.normal() * 0.5 + shift).collect();
    let mut rows: Vec<Vec<f64>> = Vec::new();
    while rows.len() < r {
        let mut v: Vec<f64> = (0..d).map(|_| f64::from(rng.normal())).collect();
        for u in &rows {
            let p: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= p * b);
        }
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        rows.push(v.iter().map(|a| a / n).collect());
    }
    let u_t = rows.iter().flatten().map(|&v| v as f32).collect();
    let lambda = (0..r).map(|i| 3.0 * 0.7f32.powi(i as i32)).collect();
    GaussianParams { shape: ImageShape { channels: 1, height: 1, width: d as u16 }, mu, u_t, lambda, floor }
}

fn mixture(components: Vec<GaussianParams>, weights: Vec<f32>, dtype: DType) -> Vec<u8> {
    let p = MixtureParams { components, weights, labels: vec![] };
    write_mixture(&p, &WriteOptions { dtype, ..WriteOptions::default() }).unwrap()
}

/// f64 reference of `D(x; sigma)` and the weights from the stored (decoded) values.
fn reference(blob: &Blob<'_>, x: &[f32], sigma: f64) -> (Vec<f64>, Vec<f64>) {
    let (k, r, d) = (blob.num_components(), blob.rank(), blob.dim());
    let weights = blob.section(section::WEIGHTS).unwrap();
    let floors = blob.section(section::FLOORS).unwrap();
    let s2 = sigma * sigma;
    let mut scores = vec![0.0f64; k];
    let mut outs = vec![vec![0.0f64; d]; k];
    for j in 0..k {
        let mu = blob.section_block(section::MU, j).unwrap();
        let u = blob.section_block(section::U_T, j).unwrap();
        let lam = blob.section_block(section::LAMBDA, j).unwrap();
        let c = f64::from(floors.get(0, j));
        let diff: Vec<f64> = (0..d).map(|i| f64::from(x[i]) - f64::from(mu.get(0, i))).collect();
        let a: Vec<f64> = (0..r).map(|i| (0..d).map(|t| f64::from(u.get(i, t)) * diff[t]).sum()).collect();
        let n2: f64 = diff.iter().map(|v| v * v).sum();
        let a2: f64 = a.iter().map(|v| v * v).sum();
        let mut s = f64::from(weights.get(0, j)).ln();
        let vc = (c + s2).max(f64::from(f32::MIN_POSITIVE));
        for i in 0..r {
            let v = (f64::from(lam.get(0, i)) + s2).max(f64::from(f32::MIN_POSITIVE));
            s -= 0.5 * (a[i] * a[i] / v + v.ln());
        }
        if r < d {
            s -= 0.5 * ((n2 - a2).max(0.0) / vc + (d - r) as f64 * vc.ln());
        }
        scores[j] = s;
        // D_j = mu + f diff + U diag(g - f) a
        let f = if r < d && c + s2 > 0.0 { c / (c + s2) } else { 0.0 };
        for t in 0..d {
            outs[j][t] = f64::from(mu.get(0, t)) + f * diff[t];
        }
        for i in 0..r {
            let l = f64::from(lam.get(0, i));
            let g = if l + s2 > 0.0 { l / (l + s2) } else { 0.0 };
            for t in 0..d {
                outs[j][t] += (g - f) * a[i] * f64::from(u.get(i, t));
            }
        }
    }
    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    let w: Vec<f64> = e.iter().map(|v| v / sum).collect();
    let out = (0..d).map(|t| (0..k).map(|j| w[j] * outs[j][t]).sum()).collect();
    (out, w)
}

/// Runs the f32 denoiser and compares with the reference: weights within `wtol`, outputs within `tol`
/// relative to the output scale.
fn check(bytes: &[u8], x: &[f32], sigma: f32, wtol: f64, tol: f64, what: &str) -> Vec<f32> {
    let blob = Blob::parse(bytes).unwrap();
    let model = blob.model().unwrap();
    let m = model.as_mixture().unwrap();
    let d = blob.dim();
    let mut out = vec![0.0f32; d];
    let mut scratch = vec![0.0f32; model.scratch_len()];
    model.denoise(x, sigma, &mut out, &mut scratch);
    let mut w = vec![0.0f32; m.components()];
    m.posterior(x, sigma, &mut w, &mut scratch);
    let (want, want_w) = reference(&blob, x, f64::from(sigma));
    for (j, (&a, &b)) in w.iter().zip(&want_w).enumerate() {
        assert!((f64::from(a) - b).abs() <= wtol, "{what}: weight {j}: {a} vs {b}");
    }
    let scale = want.iter().fold(1.0f64, |s, v| s.max(v.abs()));
    for (t, (&a, &b)) in out.iter().zip(&want).enumerate() {
        assert!(a.is_finite(), "{what}: output {t} not finite");
        assert!((f64::from(a) - b).abs() <= tol * scale, "{what}: output {t}: {a} vs {b} (scale {scale})");
    }
    out
}

const D: usize = 24;

#[test]
fn matches_the_f64_reference_for_every_storage_type() {
    for dtype in [DType::F32, DType::F16, DType::I8] {
        let mut rng = Rng::new(1);
        let comps = (0..3).map(|j| component(&mut rng, D, 4, 0.05 * j as f32, j as f32 - 1.0)).collect();
        let bytes = mixture(comps, vec![0.5, 0.3, 0.2], dtype);
        for (sigma, scale) in [(80.0f32, 80.0f32), (5.0, 5.0), (1.0, 1.0), (0.3, 0.3), (0.05, 0.05)] {
            // Noisy data from component 1, and a point between components.
            let x: Vec<f32> = (0..D).map(|_| rng.normal() * scale + 0.2).collect();
            check(&bytes, &x, sigma, 2e-4, 2e-5, &format!("{dtype:?} sigma {sigma}"));
        }
    }
}

#[test]
fn far_from_every_component_the_weights_stay_finite() {
    let mut rng = Rng::new(2);
    let comps = (0..3).map(|j| component(&mut rng, D, 3, 0.1, 2.0 * j as f32)).collect();
    let bytes = mixture(comps, vec![0.2, 0.3, 0.5], DType::F32);
    for far in [1e3f32, 1e5] {
        let x: Vec<f32> = (0..D).map(|i| if i % 2 == 0 { far } else { -far }).collect();
        // Scores of order -1e10: a naive exp underflows to 0/0.
        check(&bytes, &x, 0.5, 1e-3, 1e-4, &format!("far {far}"));
    }
}

#[test]
fn equal_components_zero_weight_and_floor_zero() {
    let mut rng = Rng::new(3);
    let c = component(&mut rng, D, 4, 0.0, 0.0);
    let other = component(&mut rng, D, 4, 0.2, 3.0);
    // Two equal components (floor 0): weights 1/2 each and D equal to the single Gaussian's.
    let bytes = mixture(vec![c.clone(), c.clone()], vec![0.5, 0.5], DType::F32);
    let x: Vec<f32> = (0..D).map(|_| rng.normal()).collect();
    let out = check(&bytes, &x, 0.7, 1e-6, 1e-5, "equal");
    let g = write_gaussian(&c, &WriteOptions::default()).unwrap();
    let gm = Blob::parse(&g).unwrap().model().unwrap();
    let mut want = vec![0.0f32; D];
    gm.denoise(&x, 0.7, &mut want, &mut vec![0.0; gm.scratch_len()]);
    for (a, b) in out.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "equal components: {a} vs {b}");
    }
    // A zero-weight component gets weight exactly 0 and the rest is the other component.
    let bytes = mixture(vec![c.clone(), other], vec![1.0, 0.0], DType::F32);
    let blob = Blob::parse(&bytes).unwrap();
    let model = blob.model().unwrap();
    let mut w = [1.0f32; 2];
    let mut scratch = vec![0.0f32; model.scratch_len()];
    // Even at a point of the zero-weight component.
    let x3: Vec<f32> = (0..D).map(|_| 3.0 + rng.normal() * 0.1).collect();
    model.as_mixture().unwrap().posterior(&x3, 0.1, &mut w, &mut scratch);
    assert_eq!(w, [1.0, 0.0]);
    let mut out = vec![0.0f32; D];
    model.denoise(&x3, 0.1, &mut out, &mut scratch);
    gm.denoise(&x3, 0.1, &mut want, &mut vec![0.0; gm.scratch_len()]);
    assert_eq!(
        out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn sigma_to_zero_picks_the_component_the_point_lies_on() {
    let mut rng = Rng::new(4);
    let comps: Vec<GaussianParams> = (0..3).map(|j| component(&mut rng, D, 3, 0.0, j as f32 - 1.0)).collect();
    let on1: Vec<f32> = {
        let c = &comps[1];
        let mut x = c.mu.clone();
        for (i, row) in c.u_t.chunks(D).enumerate() {
            let a = rng.normal() * c.lambda[i].sqrt();
            x.iter_mut().zip(row).for_each(|(x, u)| *x += a * u);
        }
        x
    };
    let bytes = mixture(comps, vec![0.3, 0.3, 0.4], DType::F32);
    for sigma in [1e-2f32, 1e-4, 1e-8, 0.0] {
        let blob = Blob::parse(&bytes).unwrap();
        let model = blob.model().unwrap();
        let mut w = [0.0f32; 3];
        let mut scratch = vec![0.0f32; model.scratch_len()];
        model.as_mixture().unwrap().posterior(&on1, sigma, &mut w, &mut scratch);
        assert!(w[1] > 0.999 && w.iter().all(|v| v.is_finite()), "sigma {sigma}: {w:?}");
        let mut out = vec![0.0f32; D];
        model.denoise(&on1, sigma, &mut out, &mut scratch);
        // On the component's support, D(x; 0) = x.
        for (a, b) in out.iter().zip(&on1) {
            assert!((a - b).abs() <= 1e-4 + 1e-2 * sigma, "sigma {sigma}: {a} vs {b}");
        }
    }
    // Above the underflow of sigma^2, against the reference too.
    check(&bytes, &on1, 1e-2, 1e-4, 1e-4, "sigma 1e-2");
}

#[test]
fn full_rank_components() {
    let mut rng = Rng::new(5);
    let d = 6;
    let comps = (0..2).map(|j| component(&mut rng, d, d, 0.0, j as f32)).collect();
    let bytes = mixture(comps, vec![0.6, 0.4], DType::F32);
    let x: Vec<f32> = (0..d).map(|_| rng.normal()).collect();
    for sigma in [3.0f32, 0.5, 0.01] {
        check(&bytes, &x, sigma, 2e-4, 2e-5, &format!("full rank sigma {sigma}"));
    }
}

#[test]
fn one_component_and_each_component_are_the_gaussian_bit_for_bit() {
    let mut rng = Rng::new(6);
    for dtype in [DType::F32, DType::F16, DType::I8] {
        let comps: Vec<GaussianParams> = (0..3).map(|j| component(&mut rng, D, 5, 0.03, j as f32)).collect();
        let opts = WriteOptions { dtype, ..WriteOptions::default() };
        let one = mixture(vec![comps[0].clone()], vec![1.0], dtype);
        let three = mixture(comps.clone(), vec![0.2, 0.3, 0.5], dtype);
        let (one, three) = (Blob::parse(&one).unwrap(), Blob::parse(&three).unwrap());
        let (m1, m3) = (one.model().unwrap(), three.model().unwrap());
        let x: Vec<f32> = (0..D).map(|_| rng.normal() * 2.0).collect();
        let spec = |sampler, steps| SampleSpec { sampler, steps, seed: 11 };
        for (j, c) in comps.iter().enumerate() {
            let gb = write_gaussian(c, &opts).unwrap();
            let g = Blob::parse(&gb).unwrap().model().unwrap();
            let class = m3.component(j).unwrap();
            let mut scratch = vec![0.0f32; SampleSpec::scratch_len(&m3)];
            for (model, label) in [(&class, "component")].into_iter().chain((j == 0).then_some((&m1, "K = 1"))) {
                for sigma in [40.0f32, 1.0, 0.02] {
                    let (mut a, mut b) = (vec![0.0f32; D], vec![0.0f32; D]);
                    model.denoise(&x, sigma, &mut a, &mut scratch);
                    g.denoise(&x, sigma, &mut b, &mut scratch);
                    assert_eq!(bits(&a), bits(&b), "{dtype:?} {label} {j} sigma {sigma}");
                }
                for (sampler, steps) in [(Sampler::Exact, 0), (Sampler::Heun, 6)] {
                    let (mut a, mut b, mut sig) = (vec![0.0f32; D], vec![0.0f32; D], [0.0f32; 8]);
                    spec(sampler, steps)
                        .run(model, &EdmSchedule::EDM, &mut sig, &mut a, &mut scratch, |_, _| {})
                        .unwrap();
                    spec(sampler, steps).run(&g, &EdmSchedule::EDM, &mut sig, &mut b, &mut scratch, |_, _| {}).unwrap();
                    assert_eq!(bits(&a), bits(&b), "{dtype:?} {label} {j} {sampler}");
                }
            }
        }
        assert!(m3.component(3).is_none());
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn samplers_run_on_the_mixture_and_exact_picks_by_weight() {
    let mut rng = Rng::new(7);
    let comps: Vec<GaussianParams> = (0..3).map(|j| component(&mut rng, D, 4, 0.01, 4.0 * j as f32)).collect();
    let bytes = mixture(comps, vec![0.5, 0.0, 0.5], DType::F32);
    let blob = Blob::parse(&bytes).unwrap();
    let model = blob.model().unwrap();
    let m = model.as_mixture().unwrap();
    let mut scratch = vec![0.0f32; SampleSpec::scratch_len(&model)];
    let mut sig = [0.0f32; 33];
    let mut counts = [0usize; 3];
    for seed in 0..200u64 {
        let j = pick_component(m, seed);
        counts[j] += 1;
        let mut x = vec![0.0f32; D];
        SampleSpec { sampler: Sampler::Exact, steps: 0, seed }
            .run(&model, &EdmSchedule::EDM, &mut sig, &mut x, &mut scratch, |_, _| {})
            .unwrap();
        // The exact sample of the picked component, bit for bit.
        let mut y = vec![0.0f32; D];
        let class = model.component(j).unwrap();
        SampleSpec { sampler: Sampler::Exact, steps: 0, seed }
            .run(&class, &EdmSchedule::EDM, &mut sig, &mut y, &mut scratch, |_, _| {})
            .unwrap();
        assert_eq!(bits(&x), bits(&y));
    }
    assert_eq!(counts[1], 0, "weight 0 is never picked");
    assert!(counts[0] > 70 && counts[2] > 70, "{counts:?}");
    // Euler, Heun and churn on the mixture ODE: finite samples near one of the two live components.
    for sampler in [Sampler::Euler, Sampler::Heun] {
        for seed in 0..8u64 {
            let mut x = vec![0.0f32; D];
            SampleSpec { sampler, steps: 32, seed }
                .run(&model, &EdmSchedule::EDM, &mut sig, &mut x, &mut scratch, |_, _| {})
                .unwrap();
            let mut w = [0.0f32; 3];
            m.posterior(&x, 0.05, &mut w, &mut scratch);
            assert!(x.iter().all(|v| v.is_finite()) && w[1] < 1e-3 && w[0].max(w[2]) > 0.99, "{sampler} {w:?}");
        }
    }
    let churn = gaussdiff_core::sampler::Churn { s_churn: 10.0, s_min: 0.05, s_max: 50.0, s_noise: 1.0 };
    let mut levels = [0.0f32; 17];
    EdmSchedule::EDM.fill(16, &mut levels);
    let mut x = vec![0.0f32; D];
    gaussdiff_core::sampler::initial_noise(3, 0, 80.0, &mut x);
    let mut crng = Rng::new(9);
    let mut sc = vec![0.0f32; gaussdiff_core::sampler::scratch_len(D, model.scratch_len())];
    gaussdiff_core::sampler::sample(
        &model,
        Sampler::Heun,
        &levels,
        Some((&churn, &mut crng)),
        &mut x,
        &mut sc,
        |_, _| {},
    );
    assert!(x.iter().all(|v| v.is_finite()));
}
