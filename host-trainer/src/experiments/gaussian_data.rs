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
//! Beside them: the expected KL of an empirical Gaussian, `d(d+1)/(4N)` (N >> d), and the same with
//! the reference's own estimation noise, `d(d+1)/4 (1/N + 1/H)` (H held-out images).

use anyhow::{Context, Result};
use faer::Mat;
use gaussdiff_fit::gaussian::{self as fit, FitOptions, Floor, Rank};
use serde::Serialize;

use super::common::{load_core, log_grid, write_csv, write_summary};
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

#[derive(Serialize)]
struct Row {
    n: usize,
    kl_empirical: f64,
    kl_floored: f64,
    floored_rank: f64,
    floored_c: f64,
    expected: f64,
    expected_two_sample: f64,
}

#[derive(Serialize)]
struct DatasetResult {
    dataset: String,
    d: usize,
    held_out: usize,
    /// Pixels whose held-out variance is above 10 x the ridge.
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
    let d_varying = (0..d).filter(|&i| reference.cov[(i, i)] > 11.0 * RIDGE).count();
    let grid = log_grid((d / 8).max(4), n_all, per_decade);
    let pb = if progress {
        indicatif::ProgressBar::new((grid.len() * repeats) as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    pb.set_message(ds.name.clone());
    let mut rows = Vec::new();
    for &n in &grid {
        let (mut ke, mut kf, mut kr, mut kc) = (0.0, 0.0, 0.0, 0.0);
        let reps = if n == n_all { 1 } else { repeats };
        for r in 0..reps {
            let mut rng = TrainRng::stream(seed.wrapping_add(r as u64), 0x6A55 + n as u64);
            let idx = rng.permutation(n_all);
            let sub: Vec<f32> = idx[..n].iter().flat_map(|&i| ds.image(i).iter().copied()).collect();
            ke += kl(&reference, ld0, &cov_of(&sub, d)?)?;
            let (fl, k, c) = floored_of(&sub, d)?;
            kf += kl(&reference, ld0, &fl)?;
            kr += k as f64;
            kc += c;
            pb.inc(1);
        }
        let r = reps as f64;
        let df = d as f64;
        rows.push(Row {
            n,
            kl_empirical: ke / r,
            kl_floored: kf / r,
            floored_rank: kr / r,
            floored_c: kc / r,
            expected: df * (df + 1.0) / (4.0 * n as f64),
            expected_two_sample: df * (df + 1.0) / 4.0 * (1.0 / n as f64 + 1.0 / ds.held_out_len() as f64),
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
                r.kl_floored,
                r.floored_rank,
                r.floored_c,
                r.expected,
                r.expected_two_sample,
            ]
        })
        .collect();
    write_csv(
        &a.out.join(format!("kl_{name}.csv")),
        &[
            "n",
            "kl_empirical_ridge",
            "kl_floored",
            "floored_rank",
            "floored_c",
            "expected_d(d+1)/(4N)",
            "expected_two_sample",
        ],
        &csv,
    )?;
    let pts = |f: &dyn Fn(&Row) -> f64| rows.iter().map(|r| (r.n as f64, f(r))).collect::<Vec<_>>();
    xy_plot(
        &a.out.join(format!("kl_{name}.png")),
        &format!("{name} (d = {d}): KL(held-out Gaussian || Gaussian of N images)"),
        &Axes {
            x: "N training images".into(),
            y: "KL (nats)".into(),
            log_x: true,
            log_y: true,
            vlines: vec![(d as f64, "N = d".into())],
        },
        &[
            Series::new(format!("no floor (c = 0, ridge {RIDGE:e})"), pts(&|r| r.kl_empirical)),
            Series::new("floored (99 % variance, c = mean of the rest)", pts(&|r| r.kl_floored)),
            Series::reference("d(d+1)/(4N)", pts(&|r| r.expected)),
            Series::reference(
                format!("d(d+1)/4 (1/N + 1/H), H = {}", ds.held_out_len()),
                pts(&|r| r.expected_two_sample),
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
            eprintln!("  N       KL no-floor   KL floored   rank   c          d(d+1)/4N");
            for r in &ds.rows {
                eprintln!(
                    "  {:<7} {:<13.4e} {:<12.4e} {:<6.0} {:<10.3e} {:.4e}",
                    r.n, r.kl_empirical, r.kl_floored, r.floored_rank, r.floored_c, r.expected
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
