//! Every metric kernel and denoiser against an f64 reference or a closed-form oracle.

use candle_core::Device;
use faer::{Mat, Side};
use gaussdiff_core::pixel::{ImageShape, PixelMap};
use gaussdiff_fit::dataset::Dataset;
use gaussdiff_trainer::denoisers::{BatchDenoiser, DistilledDenoiser, MemorisingDenoiser, TrainingGaussianDenoiser};
use gaussdiff_trainer::distill::{self, DistillConfig, DistilledMaps, Method};
use gaussdiff_trainer::measures;
use gaussdiff_trainer::network::{Arch, Network};
use gaussdiff_trainer::rng::TrainRng;
use gaussdiff_trainer::training_gaussian::TrainingGaussian;

const DEV: Device = Device::Cpu;

/// Correlated synthetic "images": y = A z + m with a random 8x8 mixing matrix (d = 64).
fn synthetic(n: usize, seed: u64) -> Dataset {
    let d = 64;
    let mut rng = TrainRng::new(seed);
    let a: Vec<f32> = (0..d * d).map(|i| if i % (d + 1) == 0 { 0.5 } else { 0.08 * rng.normal() as f32 }).collect();
    let mut images = Vec::with_capacity(n * d);
    for _ in 0..n {
        let z = rng.normals(d);
        for i in 0..d {
            let v: f32 = (0..d).map(|j| a[i * d + j] * z[j]).sum::<f32>() + 0.1 * (i as f32 / d as f32);
            images.push(v.tanh());
        }
    }
    let held_out = images.split_off((n - n / 5) * d);
    Dataset {
        name: "synthetic".into(),
        shape: ImageShape { channels: 1, height: 8, width: 8 },
        pixel: PixelMap::EDM,
        images,
        labels: None,
        label_names: None,
        held_out_labels: None,
        held_out,
    }
}

fn noisy(data: &[f32], d: usize, sigma: f64, m: usize, seed: u64) -> Vec<f32> {
    let mut rng = TrainRng::new(seed);
    let mut x = rng.normals(m * d);
    for i in 0..m * d {
        x[i] = data[i % (data.len())] + sigma as f32 * x[i];
    }
    x
}

#[test]
fn memorising_denoiser_matches_f64_softmax() {
    let data = synthetic(60, 1);
    let d = 64;
    let den = MemorisingDenoiser::new(&data.images, d, &DEV).unwrap();
    let n = data.len();
    for &sigma in &[0.2, 0.7, 3.0, 40.0] {
        let x = noisy(&data.held_out, d, sigma, 8, 2);
        let got = den.denoise(&x, sigma).unwrap();
        for r in 0..8 {
            // f64 reference: logits, max-subtracted softmax, weighted sum.
            let xr = &x[r * d..(r + 1) * d];
            let logits: Vec<f64> = (0..n)
                .map(|i| {
                    -(0..d).map(|j| (xr[j] as f64 - data.images[i * d + j] as f64).powi(2)).sum::<f64>()
                        / (2.0 * sigma * sigma)
                })
                .collect();
            let mx = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = logits.iter().map(|l| (l - mx).exp()).collect();
            let z: f64 = w.iter().sum();
            for j in 0..d {
                let want: f64 = (0..n).map(|i| w[i] / z * data.images[i * d + j] as f64).sum();
                let g = got[r * d + j] as f64;
                assert!((g - want).abs() < 2e-4, "sigma {sigma} row {r} px {j}: {g} vs {want}");
            }
        }
    }
}

#[test]
fn gaussian_w_matches_closed_form_and_denoiser_matches_f64() {
    let data = synthetic(400, 3);
    let d = 64;
    let g = TrainingGaussian::fit(&data.images, d).unwrap();
    assert!(g.lambda.windows(2).all(|w| w[0] >= w[1]), "eigenvalues must be descending");
    // Covariance in f64, then W_G = Sigma (Sigma + sigma^2 I)^-1 by a Cholesky solve.
    let n = data.len();
    let cov = Mat::<f64>::from_fn(d, d, |i, j| {
        (0..n)
            .map(|k| (data.images[k * d + i] as f64 - g.mu[i]) * (data.images[k * d + j] as f64 - g.mu[j]))
            .sum::<f64>()
            / n as f64
    });
    for &sigma in &[0.01, 0.3, 2.0] {
        let a = Mat::<f64>::from_fn(d, d, |i, j| cov[(i, j)] + if i == j { sigma * sigma } else { 0.0 });
        let llt = a.llt(Side::Lower).unwrap();
        // (Sigma + s^2 I) W^T = Sigma  (both symmetric, W_G symmetric).
        let mut wt = cov.clone();
        faer::linalg::solvers::Solve::solve_in_place(&llt, wt.as_mut());
        let w = g.w_matrix(sigma);
        let mut err: f64 = 0.0;
        for i in 0..d {
            for j in 0..d {
                err = err.max((w[i * d + j] - wt[(j, i)]).abs());
            }
        }
        assert!(err < 1e-9, "sigma {sigma}: max |W - closed form| = {err}");
        // The batched f32 denoiser against mu + W (x - mu) in f64.
        let den = TrainingGaussianDenoiser::new(g.clone(), &DEV).unwrap();
        let x = noisy(&data.held_out, d, sigma, 16, 4);
        let got = den.denoise(&x, sigma).unwrap();
        for r in 0..16 {
            for i in 0..d {
                let want = g.mu[i] + (0..d).map(|j| w[i * d + j] * (x[r * d + j] as f64 - g.mu[j])).sum::<f64>();
                assert!((got[r * d + i] as f64 - want).abs() < 1e-4, "{sigma} {r} {i}");
            }
        }
    }
}

#[test]
fn linearity_score_is_one_for_a_linear_map_and_below_one_for_memorisation() {
    let d = 64;
    let mut rng = TrainRng::new(9);
    let maps = DistilledMaps { sigmas: vec![1.0], d, w: rng.normals(d * d), b: vec![0.0; d] };
    let lin = DistilledDenoiser::new(maps, &DEV).unwrap();
    let x1 = rng.normals(32 * d);
    let x2 = rng.normals(32 * d);
    for &a in &measures::ALPHAS {
        let s = measures::linearity_score(&lin, &x1, &x2, d, 1.0, a).unwrap();
        assert!((s - 1.0).abs() < 1e-6, "a {a}: {s}");
    }
    let data = synthetic(50, 5);
    let mem = MemorisingDenoiser::new(&data.images, d, &DEV).unwrap();
    let x1 = noisy(&data.images, d, 0.3, 20, 6);
    let x2 = noisy(&data.images[20 * d..], d, 0.3, 20, 7);
    let s = measures::linearity_score(&mem, &x1, &x2, d, 0.3, 0.5).unwrap();
    assert!(s < 0.95, "the memorising denoiser is far from linear at small sigma, got {s}");
}

#[test]
fn difference_cosine_frobenius_and_nearest_match_f64() {
    let d = 64;
    let mut rng = TrainRng::new(11);
    let a = rng.normals(10 * d);
    let b = rng.normals(10 * d);
    let want_diff: f64 = (0..10)
        .map(|i| {
            let num: f64 = (0..d).map(|j| (a[i * d + j] as f64 - b[i * d + j] as f64).powi(2)).sum::<f64>().sqrt();
            let den: f64 = (0..d).map(|j| (a[i * d + j] as f64).powi(2)).sum::<f64>().sqrt();
            num / den
        })
        .sum::<f64>()
        / 10.0;
    assert!((measures::denoiser_difference(&a, &b, d) - want_diff).abs() < 1e-12);
    assert!((measures::mean_cosine(&a, &a, d) - 1.0).abs() < 1e-12);
    assert_eq!(measures::denoiser_difference(&a, &a, d), 0.0);
    let wg: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    assert_eq!(measures::rel_frobenius(&b, &wg), 0.0);
    let w2: Vec<f32> = b.iter().map(|&v| 1.5 * v).collect();
    assert!((measures::rel_frobenius(&w2, &wg) - 0.5).abs() < 1e-6);
    // Nearest two against brute force.
    let train = rng.normals(30 * d);
    let nn = measures::nearest_two(&a, &train, d);
    for i in 0..10 {
        let mut ds: Vec<f64> = (0..30)
            .map(|k| (0..d).map(|j| (a[i * d + j] as f64 - train[k * d + j] as f64).powi(2)).sum::<f64>().sqrt())
            .collect();
        ds.sort_by(|x, y| x.total_cmp(y));
        assert!((nn[i].0 - ds[0]).abs() < 1e-3 && (nn[i].1 - ds[1]).abs() < 1e-3);
    }
    // A copy of a training image is memorised; a far-away point is not.
    let mut probe = train[..d].to_vec();
    probe.extend(std::iter::repeat_n(50.0f32, d));
    let nn = measures::nearest_two(&probe, &train, d);
    assert_eq!(measures::memorisation_fraction(&nn), 0.5);
}

#[test]
fn diverged_samples_are_counted_and_left_out_of_sample_mse() {
    let d = 3;
    // Rows: fine, NaN, fine, beyond +-100, +inf, exactly at the bound (kept).
    let a = vec![
        0.0f32,
        0.5,
        -0.5, //
        f32::NAN,
        0.0,
        0.0, //
        1.0,
        1.0,
        1.0, //
        0.0,
        -100.5,
        0.0, //
        f32::INFINITY,
        0.0,
        0.0, //
        100.0,
        0.0,
        0.0,
    ];
    assert_eq!(measures::diverged_rows(&a, d), vec![false, true, false, true, true, false]);
    assert_eq!(measures::kept_rows(&a, d), vec![0.0, 0.5, -0.5, 1.0, 1.0, 1.0, 100.0, 0.0, 0.0]);
    let mut b = vec![0.0f32; 6 * d];
    b[2 * d] = f32::NAN; // b diverged on row 2, a on rows 1, 3, 4: rows 0 and 5 remain.
                         // f64 reference over the two kept rows.
    let want = ((0.25 + 0.25) + 100.0f64 * 100.0) / 6.0;
    assert!((measures::mse_kept_rows(&a, &b, d) - want).abs() < 1e-12);
    // Nothing left: NaN, not a misleading 0.
    let all_bad = vec![f32::NAN; 2 * d];
    assert!(measures::mse_kept_rows(&all_bad, &all_bad, d).is_nan());
}

#[test]
fn heun_with_gaussian_converges_to_the_exact_flow() {
    let data = synthetic(300, 13);
    let d = 64;
    let g = TrainingGaussian::fit(&data.images, d).unwrap();
    let den = TrainingGaussianDenoiser::new(g.clone(), &DEV).unwrap();
    let noise = TrainRng::new(14).normals(4 * d);
    // Exact solution at sigma = 0: mu + sum_k sqrt(lambda_k / (lambda_k + sigma_T^2)) u_k u_k^T (x_T - mu).
    let st = 80.0f64;
    let exact: Vec<f64> = (0..4)
        .flat_map(|r| {
            let xt: Vec<f64> = (0..d).map(|j| noise[r * d + j] as f64 * st - g.mu[j]).collect();
            let mut out = g.mu.clone();
            for k in 0..d {
                let u = &g.u_rows[k * d..(k + 1) * d];
                let c: f64 =
                    u.iter().zip(&xt).map(|(a, b)| a * b).sum::<f64>() * (g.lambda[k] / (g.lambda[k] + st * st)).sqrt();
                for j in 0..d {
                    out[j] += c * u[j];
                }
            }
            out
        })
        .collect();
    let err = |steps| {
        let s = measures::heun_sample(&den, &noise, steps).unwrap();
        s.iter().zip(&exact).map(|(&a, &b)| (a as f64 - b).powi(2)).sum::<f64>().sqrt()
    };
    let (e10, e40) = (err(10), err(40));
    assert!(e40 < e10 / 4.0, "Heun error should shrink: 10 steps {e10}, 40 steps {e40}");
    let norm: f64 = exact.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(e40 / norm < 0.02, "Heun-40 relative error {}", e40 / norm);
}

#[test]
fn distill_recovers_the_linear_teacher_and_gd_agrees_with_closed_form() {
    // A freshly initialised MLP has a zero output layer, so D(x; sigma) = c_skip(sigma) x exactly:
    // a linear teacher with W = c_skip I, b = 0.
    let data = synthetic(300, 17);
    let mut rng = TrainRng::new(18);
    let net = Network::new(Arch::Mlp { width: 32, depth: 1 }, (1, 8, 8), &mut rng, &DEV).unwrap();
    let sigmas = vec![2.0, 0.5, 0.1];
    let cfg = DistillConfig {
        sigmas: sigmas.clone(),
        method: Method::Both,
        batch: 256,
        batches: 16,
        epochs: distill::DEFAULT_EPOCHS,
        tol: distill::DEFAULT_TOL,
        lr0: distill::DEFAULT_LR0,
        ridge: 1e-9,
        seed: 1,
    };
    let r = distill::distill(&net, &data, &cfg, false).unwrap();
    let d = 64;
    for (i, &s) in sigmas.iter().enumerate() {
        let c_skip = 0.25 / (s * s + 0.25);
        let w = &r.maps.w[i * d * d..(i + 1) * d * d];
        for a in 0..d {
            for b in 0..d {
                let want = if a == b { c_skip } else { 0.0 };
                assert!(
                    (w[a * d + b] as f64 - want).abs() < 1e-4,
                    "closed form sigma {s} W[{a},{b}] = {} vs {want}",
                    w[a * d + b]
                );
            }
            assert!((r.maps.b[i * d + a] as f64).abs() < 1e-4);
        }
        let rep = &r.report[i];
        // Zero init starts at relative difference 1; GD at the default settings (Adam epochs until W stops
        // moving) ends within 2 % of the closed form, in W and in the outputs.
        let w_rel = rep.w_rel_frob_gd_vs_closed.unwrap();
        assert!(w_rel < 0.02, "sigma {s}: |W_gd - W_cf| / |W_cf| = {w_rel} after {:?} epochs", rep.gd_epochs);
        let rel = rep.out_rel_gd_vs_closed.unwrap();
        assert!(rel < 0.02, "sigma {s}: GD output differs from closed form by {rel}");
    }
}

#[test]
fn distill_file_roundtrip_and_errors() {
    let data = synthetic(50, 19);
    let d = 64;
    let mut rng = TrainRng::new(20);
    let maps = DistilledMaps { sigmas: vec![5.0, 1.0], d, w: rng.normals(2 * d * d), b: rng.normals(2 * d) };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    let g = TrainingGaussian::fit(&data.images, d).unwrap();
    distill::save_maps(&p, &maps, &data, "closed-form", Some(&g), 10).unwrap();
    let back = distill::load_maps(&p).unwrap();
    assert_eq!(back.sigmas.iter().map(|&s| s as f32).collect::<Vec<_>>(), vec![5.0, 1.0]);
    assert_eq!(back.w, maps.w);
    assert_eq!(back.b, maps.b);
    let f = gaussdiff_trainer::st::Loaded::open(&p).unwrap();
    assert_eq!(f.meta("shape").unwrap(), "1,8,8");
    assert_eq!(f.meta("n_train").unwrap(), "40");
    assert_eq!(f.f32("basis", None).unwrap().shape, vec![10, d]);
    // Ascending sigmas are rejected with a message naming the tensor.
    let bad = DistilledMaps { sigmas: vec![1.0, 5.0], ..maps };
    distill::save_maps(&p, &bad, &data, "closed-form", None, 0).unwrap();
    let e = distill::load_maps(&p).unwrap_err().to_string();
    assert!(e.contains("sigmas") && e.contains("descending"), "{e}");
    std::fs::write(&p, b"garbage").unwrap();
    assert!(distill::load_maps(&p).unwrap_err().to_string().contains("safetensors"));
}

/// A fresh training state for 8x8 images: the network initialised from `seed`, Adam with `lr` and `warmup`
/// (betas 0.9, 0.999, eps 1e-8, EMA 0.99), the generator after the initialisation.
fn train_state(arch: Arch, seed: u64, lr: f64, warmup: usize) -> gaussdiff_trainer::train::State {
    let mut rng = TrainRng::new(seed);
    let net = Network::new(arch, (1, 8, 8), &mut rng, &DEV).unwrap();
    let cfg = gaussdiff_trainer::optim::AdamConfig { lr, warmup, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let opt = gaussdiff_trainer::optim::Adam::new(&net, cfg, 0.99).unwrap();
    gaussdiff_trainer::train::State { net, opt, rng }
}

#[test]
fn unet_trains_a_step_on_cpu_and_rejects_odd_sizes() {
    let data = synthetic(40, 21);
    let mut st = train_state(Arch::Unet { channels: 8 }, 22, 1e-3, 1);
    let l1 = gaussdiff_trainer::train::train_step(&mut st, &data, 8).unwrap();
    assert!(l1.is_finite());
    let before = st.net.params[0].var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    gaussdiff_trainer::train::train_step(&mut st, &data, 8).unwrap();
    let after = st.net.params[0].var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_ne!(before, after, "the U-Net's first conv must receive gradient");
    let e = Network::new(Arch::Unet { channels: 8 }, (1, 10, 10), &mut TrainRng::new(0), &DEV).unwrap_err().to_string();
    assert!(e.contains("divisible by 4"), "{e}");
}

#[test]
fn mlp_training_lowers_the_loss_on_digits() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn_digits/digits.csv.gz");
    let opts = gaussdiff_fit::dataset::LoadOptions { limit: Some(500), seed: 1, ..Default::default() };
    let data = gaussdiff_fit::dataset::load(&path, &opts).unwrap();
    let mut st = train_state(Arch::Mlp { width: 128, depth: 2 }, 24, 2e-3, 20);
    let losses: Vec<f32> =
        (0..400).map(|_| gaussdiff_trainer::train::train_step(&mut st, &data, 64).unwrap()).collect();
    let first: f32 = losses[..50].iter().sum::<f32>() / 50.0;
    let last: f32 = losses[350..].iter().sum::<f32>() / 50.0;
    // At initialisation F = 0 and the EDM loss is edm::initial_loss(E[y^2]) (1.69 on digits); learning must beat it clearly.
    assert!(last < 0.9 * first, "loss should fall: first {first}, last {last}");
}
