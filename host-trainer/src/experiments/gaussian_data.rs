//! Experiment 4 -- how much data a Gaussian needs (Merger & Goldt 2025).
//!
//! For N from about d/8 up to all training images, fit `N(mu_N, Sigma_N)` on a random subset of N
//! images, and measure `KL(P_ref || P_N)` where `P_ref` is the Gaussian fitted on held-out images:
//!
//! `KL = 1/2 [ tr(S_N^-1 S_ref) + (mu_N - mu_ref)^T S_N^-1 (mu_N - mu_ref) - d + ln det S_N - ln det S_ref ]`
//!
//! in f64 (faer eigendecomposition of `S_N`: the trace and quadratic form in its eigenbasis, the
//! log-determinant as the sum of log-eigenvalues). Two models per N:
//! * `empirical` -- the unbiased sample covariance, full rank, **no floor** (c = 0). For N <= d it is
//!   singular and the KL is infinite; to plot anything every covariance (the reference's too: MNIST's
//!   border pixels are constant) gets the same tiny ridge `RIDGE * I`, so below N = d this curve
//!   measures mostly the ridge. That is the honest reading: without a floor the Gaussian is unusable there.
//! * `floored` -- core's fit with rank chosen for 99 % of the variance and floor `c` = mean of the
//!   discarded eigenvalues (`Floor::Auto`), plus the same ridge.
//!
//! Beside them, for the no-floor curve: the exact expectation of this very KL for Gaussian data
//! ([`super::kl_expectation::expected_kl`]: both fits with the 1/N covariance, the reference of H held-out
//! images; digamma terms and the inverse-Wishart mean), with `d` counting only the pixels that vary in
//! the held-out images (a pixel constant there and in the fit adds ridge/ridge, i.e. nothing), drawn only
//! where it is finite (N > d + 2); and its large-N limit `d(d+3)/4 (1/N + 1/H)` as a dashed guide. The
//! same KL restricted to the varying pixels (`kl_empirical_varying`) isolates what the other pixels add.

use anyhow::{Context, Result};
use faer::Mat;
use gaussdiff_fit::gaussian::{self as fit, FitOptions, Floor, Rank};
use serde::Serialize;

use super::common::{load_core, log_grid, write_csv, write_summary};
use super::kl_expectation::{asymptotic_kl, expected_kl};
use super::{ExperimentArgs, Setting};
use crate::plot::{xy_plot, Axes, Series};
use crate::rng::TrainRng;

/// Ridge added to every covariance (model space, pixels in [-1, 1]).
pub const RIDGE: f64 = 1e-4;

/// Mean and covariance (with the ridge) in f64, plus its eigendecomposition.
struct Gauss {
    mu: Vec<f64>,
    cov: Mat<f64>,
}

fn cov_of(images: &[f32], d: usize) -> Result<Gauss> {
    let m = fit::moments(images, d).map_err(|e| anyhow::anyhow!("moments: {e}"))?;
    let mut cov = m.covariance().map_err(|e| anyhow::anyhow!("covariance: {e}"))?;
    for i in 0..d {
        cov[(i, i)] += RIDGE;
    }
    Ok(Gauss { mu: m.mean().to_vec(), cov })
}

fn floored_of(images: &[f32], d: usize) -> Result<(Gauss, usize, f64)> {
    let g = fit::fit(images, d, &FitOptions { rank: Rank::Variance(0.99), floor: Floor::Auto })
        .map_err(|e| anyhow::anyhow!("fit: {e}"))?;
    let k = g.rank;
    let c = g.floor;
    let u = Mat::<f64>::from_fn(d, k, |i, j| g.u_t[j * d + i]);
    let us = Mat::<f64>::from_fn(d, k, |i, j| u[(i, j)] * (g.eigenvalues[j] - c));
    let mut cov = &us * u.transpose();
    for i in 0..d {
        cov[(i, i)] += c + RIDGE;
    }
    Ok((Gauss { mu: g.mean.clone(), cov }, k, c))
}

/// `ln det` of a symmetric positive definite matrix via its eigenvalues.
fn logdet(s: &Mat<f64>) -> Result<f64> {
    let e = fit::eigh_descending(s.as_ref()).map_err(|e| anyhow::anyhow!("eigh: {e}"))?;
    Ok(e.values.iter().map(|&l| l.max(1e-300).ln()).sum())
}

/// `KL(P0 || P1)` for Gaussians; `logdet0 = ln det S0`.
fn kl(p0: &Gauss, logdet0: f64, p1: &Gauss) -> Result<f64> {
    let d = p0.mu.len();
    let e = fit::eigh_descending(p1.cov.as_ref()).map_err(|e| anyhow::anyhow!("eigh: {e}"))?;
    let v = Mat::<f64>::from_fn(d, d, |i, j| e.vectors[i * d + j]); // rows = eigenvectors
    let a = &v * &p0.cov; // row i: v_i^T S0
    let mut tr = 0.0;
    let mut quad = 0.0;
    let mut ld1 = 0.0;
    for i in 0..d {
        let l = e.values[i].max(1e-300);
        let mut vsv = 0.0;
        let mut vdm = 0.0;
        for j in 0..d {
            vsv += a[(i, j)] * v[(i, j)];
            vdm += v[(i, j)] * (p1.mu[j] - p0.mu[j]);
        }
        tr += vsv / l;
        quad += vdm * vdm / l;
        ld1 += l.ln();
    }
    Ok(0.5 * (tr + quad - d as f64 + ld1 - logdet0))
}

/// The Gaussian restricted to the coordinates `keep` (a marginal).
fn restrict(g: &Gauss, keep: &[usize]) -> Gauss {
    Gauss {
        mu: keep.iter().map(|&i| g.mu[i]).collect(),
        cov: Mat::from_fn(keep.len(), keep.len(), |a, b| g.cov[(keep[a], keep[b])]),
    }
}

/// Monte Carlo of the measured quantity on Gaussian data: `trials` times, `n` training and `h` held-out
/// draws of a d-dimensional standard Gaussian, each fitted by [`cov_of`] (the experiment's fit and ridge),
/// and [`kl`] of the two. Returns the mean KL and its standard error.
///
/// # Errors
/// If a fit or eigendecomposition fails.
#[cfg(test)]
pub(crate) fn monte_carlo_kl(d: usize, n: usize, h: usize, trials: usize, seed: u64) -> Result<(f64, f64)> {
    let mut v = Vec::with_capacity(trials);
    for t in 0..trials {
        let mut rng = TrainRng::stream(seed, t as u64);
        let reference = cov_of(&rng.normals(h * d), d)?;
        let fit = cov_of(&rng.normals(n * d), d)?;
        v.push(kl(&reference, logdet(&reference.cov)?, &fit)?);
    }
    let m = v.iter().sum::<f64>() / trials as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (trials as f64 - 1.0).max(1.0);
    Ok((m, (var / trials as f64).sqrt()))
}

#[derive(Serialize)]
struct Row {
    n: usize,
    kl_empirical: f64,
    /// The same KL on the pixels that vary in the held-out images only.
    kl_empirical_varying: f64,
    kl_floored: f64,
    floored_rank: f64,
    floored_c: f64,
    /// Exact E[KL] for Gaussian data, d = all pixels (None: infinite).
    expected_exact_all_pixels: Option<f64>,
    /// Exact E[KL] for Gaussian data, d = the varying pixels (None: infinite).
    expected_exact: Option<f64>,
    /// Its large-N limit d(d+3)/4 (1/N + 1/H), d = the varying pixels.
    expected_asymptotic: f64,
}

#[derive(Serialize)]
struct DatasetResult {
    dataset: String,
    d: usize,
    held_out: usize,
    /// Pixels whose held-out variance is not zero (the theory's d).
    d_varying: usize,
    repeats: usize,
    rows: Vec<Row>,
}

#[derive(Serialize)]
struct Summary {
    experiment: &'static str,
    setting: Setting,
    ridge: f64,
    kl_direction: &'static str,
    datasets: Vec<DatasetResult>,
}

#[allow(clippy::too_many_arguments)]
fn one(
    path: &std::path::Path,
    label: &str,
    hold_out: usize,
    per_decade: usize,
    repeats: usize,
    seed: u64,
    a: &ExperimentArgs,
    progress: bool,
) -> Result<DatasetResult> {
    let ds = load_core(path, hold_out, seed)?;
    let d = ds.dim();
    let n_all = ds.len();
    let reference = cov_of(&ds.held_out, d).context("held-out Gaussian")?;
    let ld0 = logdet(&reference.cov)?;
    // Varying pixels: held-out variance above the ridge by more than rounding.
    let keep: Vec<usize> = (0..d).filter(|&i| reference.cov[(i, i)] > RIDGE * (1.0 + 1e-9)).collect();
    let d_varying = keep.len();
    let reference_kept = restrict(&reference, &keep);
    let ld0_kept = logdet(&reference_kept.cov)?;
    let h = ds.held_out_len();
    let grid = log_grid((d / 8).max(4), n_all, per_decade);
    let pb = if progress {
        indicatif::ProgressBar::new((grid.len() * repeats) as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    pb.set_message(ds.name.clone());
    let mut rows = Vec::new();
    for &n in &grid {
        let (mut ke, mut kv, mut kf, mut kr, mut kc) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let reps = if n == n_all { 1 } else { repeats };
        for r in 0..reps {
            let mut rng = TrainRng::stream(seed.wrapping_add(r as u64), 0x6A55 + n as u64);
            let idx = rng.permutation(n_all);
            let sub: Vec<f32> = idx[..n].iter().flat_map(|&i| ds.image(i).iter().copied()).collect();
            let g = cov_of(&sub, d)?;
            ke += kl(&reference, ld0, &g)?;
            kv += kl(&reference_kept, ld0_kept, &restrict(&g, &keep))?;
            let (fl, k, c) = floored_of(&sub, d)?;
            kf += kl(&reference, ld0, &fl)?;
            kr += k as f64;
            kc += c;
            pb.inc(1);
        }
        let r = reps as f64;
        rows.push(Row {
            n,
            kl_empirical: ke / r,
            kl_empirical_varying: kv / r,
            kl_floored: kf / r,
            floored_rank: kr / r,
            floored_c: kc / r,
            expected_exact_all_pixels: expected_kl(d, n, Some(h)),
            expected_exact: expected_kl(d_varying, n, Some(h)),
            expected_asymptotic: asymptotic_kl(d_varying, n, Some(h)),
        });
    }
    pb.finish_and_clear();
    let name = label.to_string();
    let csv: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            vec![
                r.n as f64,
                r.kl_empirical,
                r.kl_empirical_varying,
                r.kl_floored,
                r.floored_rank,
                r.floored_c,
                r.expected_exact_all_pixels.unwrap_or(f64::INFINITY),
                r.expected_exact.unwrap_or(f64::INFINITY),
                r.expected_asymptotic,
            ]
        })
        .collect();
    write_csv(
        &a.out.join(format!("kl_{name}.csv")),
        &[
            "n",
            "kl_empirical_ridge",
            "kl_empirical_varying_pixels",
            "kl_floored",
            "floored_rank",
            "floored_c",
            "expected_exact_all_pixels",
            "expected_exact_varying_pixels",
            "expected_asymptotic_d(d+3)/4(1/N+1/H)",
        ],
        &csv,
    )?;
    let pts = |f: &dyn Fn(&Row) -> f64| rows.iter().map(|r| (r.n as f64, f(r))).collect::<Vec<_>>();
    xy_plot(
        &a.out.join(format!("kl_{name}.png")),
        &format!(
            "{name}: KL(Gaussian of {h} held-out images || Gaussian of N images)\nd = {d} pixels, {d_varying} vary in the held-out images; theory for Gaussian data"
        ),
        &Axes {
            x: "N training images".into(),
            y: "KL (nats)".into(),
            log_x: true,
            log_y: true,
            vlines: vec![(d_varying as f64, format!("N = {d_varying}"))],
        },
        &[
            Series::new(format!("no floor (c = 0, ridge {RIDGE:e})"), pts(&|r| r.kl_empirical)),
            Series::new("floored (99 % variance, c = mean of the rest)", pts(&|r| r.kl_floored)),
            Series::line(
                format!("exact E[KL], Gaussian data, d = {d_varying} (drawn where finite, N > d + 2)"),
                rows.iter().filter_map(|r| r.expected_exact.map(|e| (r.n as f64, e))).collect(),
            ),
            Series::reference(
                format!("large-N limit d(d+3)/4 (1/N + 1/H), H = {h}"),
                rows.iter().filter(|r| r.n > d_varying).map(|r| (r.n as f64, r.expected_asymptotic)).collect(),
            ),
        ],
    )?;
    Ok(DatasetResult { dataset: name, d, held_out: ds.held_out_len(), d_varying, repeats, rows })
}

/// Run experiment 4.
pub fn run(a: &ExperimentArgs, progress: bool) -> Result<()> {
    let setting = a.setting();
    let (per_decade, repeats, mnist_hold) = match setting {
        Setting::Quick => (2, 1, 2000),
        Setting::Medium => (5, 2, 5000),
        Setting::Full => (8, 3, 5000),
    };
    let datasets = vec![
        one(&a.digits, "digits", 797, per_decade, repeats, a.seed, a, progress)?,
        one(&a.mnist, "mnist", mnist_hold, per_decade, repeats, a.seed, a, progress)?,
    ];
    if progress {
        for ds in &datasets {
            eprintln!("{} (d = {}, {} held out, {} varying pixels):", ds.dataset, ds.d, ds.held_out, ds.d_varying);
            eprintln!(
                "  N       KL no-floor   (varying px)  KL floored   rank   c          E[KL] all px  E[KL] varying px"
            );
            for r in &ds.rows {
                let o = |v: Option<f64>| v.map_or("inf".to_string(), |x| format!("{x:.4e}"));
                eprintln!(
                    "  {:<7} {:<13.4e} {:<13.4e} {:<12.4e} {:<6.0} {:<10.3e} {:<13} {}",
                    r.n,
                    r.kl_empirical,
                    r.kl_empirical_varying,
                    r.kl_floored,
                    r.floored_rank,
                    r.floored_c,
                    o(r.expected_exact_all_pixels),
                    o(r.expected_exact)
                );
            }
        }
    }
    write_summary(
        &a.out,
        &Summary {
            experiment: "gaussian-data",
            setting,
            ridge: RIDGE,
            kl_direction: "KL(P_held_out || P_N)",
            datasets,
        },
    )
}
