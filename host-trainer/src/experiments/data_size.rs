//! Experiment 1 -- memorisation to generalisation with dataset size (Li et al. 2024, Fig. 1;
//! Kadkhodaie et al. 2024).
//!
//! The same network (same width, depth, steps and seed) is trained on N images for N on a log grid around d,
//! for sklearn digits (d = 64; the plain MLP) and MNIST (d = 784; the residual MLP, because the plain one
//! stalls at the skip-path floor there). `--sizes` replaces the grid. For every run the trainer's metrics (`crate::cmd::metrics`,
//! held-out images, EDM 10-level sigma grid) give:
//! * the minimum over sigma of the network's linearity score (mean over the five alphas),
//! * the memorised fraction of 64 Heun-18 samples (nearest training image closer than 1/3 of the
//!   second nearest),
//! * the relative difference between the network and the Gaussian denoiser of its N training images,
//!   averaged over the sigma grid (and the per-sigma values in `runs.csv`).

use anyhow::Result;
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::common::{cached, log_grid, mlp_config, par_map, train_mlp, write_csv, write_summary};
use super::{ExperimentArgs, Setting, SweepData};
use crate::cmd::metrics::{self, MetricsOptions};
use crate::plot::{xy_plot, Axes, Series};
use crate::train::TrainConfig;

#[derive(Serialize, Deserialize, Clone)]
struct Run {
    dataset: String,
    d: usize,
    n: usize,
    linearity_min_network: f64,
    linearity_min_gaussian: f64,
    /// The memorising (empirical optimal) denoiser's own score: the floor a perfect memoriser reaches.
    linearity_min_memorising: f64,
    memorised_fraction: f64,
    /// Fraction of the network's sample trajectories that diverged (left out of the sample metrics).
    diverged_fraction: f64,
    /// Median over samples of d1/d2 (nearest / second-nearest training image).
    nn_ratio_median: f64,
    difference_to_gaussian_mean: f64,
    difference_to_gaussian_max: f64,
    difference_per_sigma: Vec<f64>,
    sample_mse_to_gaussian: f64,
    sample_mse_to_memorising: f64,
}

#[derive(Serialize)]
struct Summary {
    experiment: &'static str,
    setting: Setting,
    width: usize,
    depth: usize,
    steps: usize,
    sigmas: Vec<f64>,
    runs: Vec<Run>,
}

/// Train (or reuse) and measure the network of one (dataset, N).
fn one(cfg: &TrainConfig, dir: &Path, a: &ExperimentArgs, device: &Device, progress: bool) -> Result<Run> {
    let r = cached(dir, "run.json", cfg, || {
        let ck = train_mlp(dir, cfg.clone(), device, progress)?;
        let o = MetricsOptions {
            checkpoint: ck,
            distilled: None,
            out: dir.join("metrics"),
            n_eval: 256,
            n_samples: 64,
            steps: 18,
            seed: a.seed,
            sigmas: None,
            no_memorising: false,
        };
        let rep = metrics::run(&o, device, false)?;
        let diff = rep.difference.get("network vs gaussian").cloned().unwrap_or_default();
        let get = |m: &std::collections::BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(f64::NAN);
        Ok(Run {
            dataset: rep.dataset.clone(),
            d: rep.d,
            n: rep.n_train,
            linearity_min_network: get(&rep.linearity_min, "network"),
            linearity_min_gaussian: get(&rep.linearity_min, "gaussian"),
            linearity_min_memorising: get(&rep.linearity_min, "memorising"),
            memorised_fraction: get(&rep.memorisation_fraction, "network"),
            diverged_fraction: get(&rep.diverged_fraction, "network"),
            nn_ratio_median: rep.nn_ratio_quantiles.get("network").and_then(|q| q.get(2)).copied().unwrap_or(f64::NAN),
            difference_to_gaussian_mean: diff.iter().sum::<f64>() / diff.len().max(1) as f64,
            difference_to_gaussian_max: diff.iter().cloned().fold(0.0, f64::max),
            difference_per_sigma: diff,
            sample_mse_to_gaussian: get(&rep.sample_agreement, "network vs gaussian"),
            sample_mse_to_memorising: get(&rep.sample_agreement, "network vs memorising"),
        })
    })?;
    if progress {
        eprintln!(
            "{} N={:<6} linearity min {:.4} (memoriser {:.4})  memorised {:.3}  d1/d2 median {:.3}  diff to Gaussian mean {:.4}  sample MSE to Gaussian {:.4} to memoriser {:.4}",
            r.dataset, r.n, r.linearity_min_network, r.linearity_min_memorising, r.memorised_fraction, r.nn_ratio_median, r.difference_to_gaussian_mean, r.sample_mse_to_gaussian, r.sample_mse_to_memorising
        );
    }
    Ok(r)
}

/// MNIST N of the full setting: two per decade from 64 to 9,500 (ratio e^(ln(9500/64)/5) ~ 2.72), continued
/// two steps below 64 (9, 24), where this MLP memorises.
fn mnist_full_grid() -> Vec<usize> {
    let mut g = vec![9, 24];
    g.extend(log_grid(64, 9500, 2));
    g
}

/// The MNIST network of a setting: the residual MLP, width 1,024 (full) or 512 (medium), 2 blocks,
/// 4,000 (full) or 2,000 (medium) steps; everything else as [`mlp_config`].
fn mnist_config(setting: Setting, path: &Path, n: usize, hold_out: usize, seed: u64) -> TrainConfig {
    let (width, steps) = if setting == Setting::Full { (1024, 4000) } else { (512, 2000) };
    TrainConfig {
        arch: crate::network::Arch::Resmlp { width, blocks: MNIST_BLOCKS },
        ..mlp_config(path, width, MNIST_BLOCKS, steps, Some(n), hold_out, seed)
    }
}

/// Residual blocks of the MNIST network.
const MNIST_BLOCKS: usize = 2;

/// Run experiment 1.
pub fn run(a: &ExperimentArgs, device: &Device, progress: bool) -> Result<()> {
    let (shape, jobs) = setup(a);
    let runs = measure(a, &jobs, device, progress)?;
    // The network of each dataset, for the legends ("d = 64 (mlp-w512-d3, 12,000 steps)").
    let mut nets: Vec<(usize, String)> = Vec::new();
    for ((cfg, _), r) in jobs.iter().zip(&runs) {
        if !nets.iter().any(|(d, _)| *d == r.d) {
            nets.push((r.d, format!("{}, {} steps", cfg.arch.label(), thousands(cfg.steps))));
        }
    }
    report(a, shape, &nets, runs)
}

/// The MLP shape `(width, depth, steps)` of the setting and the (config, run directory) of every
/// (dataset, N) of the sweep.
#[allow(clippy::type_complexity)]
fn setup(a: &ExperimentArgs) -> ((usize, usize, usize), Vec<(TrainConfig, PathBuf)>) {
    let setting = a.setting();
    // (width, depth, steps, digits grid, MNIST grid)
    let (width, depth, steps, g_digits, g_mnist) = match setting {
        Setting::Quick => (64, 2, 200, vec![16, 256], vec![]),
        Setting::Medium => (256, 3, 3000, log_grid(8, 1500, 3), vec![64, 784, 8000]),
        Setting::Full => (512, 3, 12000, log_grid(8, 1500, 3), mnist_full_grid()),
    };
    let mut jobs: Vec<(TrainConfig, PathBuf)> = Vec::new();
    for (which, path, hold_out, grid) in
        [(SweepData::Digits, &a.digits, 297, &g_digits), (SweepData::Mnist, &a.mnist, 500, &g_mnist)]
    {
        if !a.datasets.contains(&which) {
            continue;
        }
        let stem =
            path.file_name().and_then(|s| s.to_str()).unwrap_or("data").split('.').next().unwrap_or("data").to_string();
        let grid = if a.sizes.is_empty() { grid.clone() } else { a.sizes.clone() };
        for n in grid {
            let cfg = match which {
                // The plain MLP learns the digits; on MNIST it stalls at the skip-path floor, so MNIST
                // uses the residual MLP (docs/trainer.md, "Why the plain MLP stalls on MNIST").
                SweepData::Digits => mlp_config(path, width, depth, steps, Some(n), hold_out, a.seed),
                SweepData::Mnist => mnist_config(setting, path, n, hold_out, a.seed),
            };
            jobs.push((cfg, a.out.join(format!("{stem}_n{n}"))));
        }
    }
    ((width, depth, steps), jobs)
}

/// Train (or reuse) and measure every job, `a.jobs` at a time.
fn measure(a: &ExperimentArgs, jobs: &[(TrainConfig, PathBuf)], device: &Device, progress: bool) -> Result<Vec<Run>> {
    let parallel = a.jobs > 1;
    if progress && parallel {
        eprintln!("training and measuring {} networks, {} at a time", jobs.len(), a.jobs);
    }
    let runs: Vec<Run> = par_map(jobs, a.jobs as usize, |(cfg, dir)| one(cfg, dir, a, device, progress && !parallel))?;
    if progress && parallel {
        for r in &runs {
            eprintln!(
                "{} N={:<6} linearity min {:.4} (memoriser {:.4})  memorised {:.3}  d1/d2 median {:.3}  diff to Gaussian mean {:.4}  sample MSE to Gaussian {:.4} to memoriser {:.4}",
                r.dataset, r.n, r.linearity_min_network, r.linearity_min_memorising, r.memorised_fraction, r.nn_ratio_median, r.difference_to_gaussian_mean, r.sample_mse_to_gaussian, r.sample_mse_to_memorising
            );
        }
    }
    Ok(runs)
}

/// `12000` as `12,000`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// CSV, plots and the summary of the sweep.
fn report(
    a: &ExperimentArgs,
    (width, depth, steps): (usize, usize, usize),
    nets: &[(usize, String)],
    runs: Vec<Run>,
) -> Result<()> {
    let setting = a.setting();
    let sigmas = crate::edm::default_grid();
    let mut rows = Vec::new();
    for r in &runs {
        let mut v = vec![
            r.d as f64,
            r.n as f64,
            r.linearity_min_network,
            r.linearity_min_gaussian,
            r.linearity_min_memorising,
            r.memorised_fraction,
            r.diverged_fraction,
            r.nn_ratio_median,
            r.difference_to_gaussian_mean,
            r.difference_to_gaussian_max,
            r.sample_mse_to_gaussian,
            r.sample_mse_to_memorising,
        ];
        v.extend(&r.difference_per_sigma);
        rows.push(v);
    }
    let mut header: Vec<String> = [
        "d",
        "n",
        "linearity_min_network",
        "linearity_min_gaussian",
        "linearity_min_memorising",
        "memorised_fraction",
        "diverged_fraction",
        "nn_ratio_median",
        "diff_to_gaussian_mean",
        "diff_to_gaussian_max",
        "sample_mse_to_gaussian",
        "sample_mse_to_memorising",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend(sigmas.iter().map(|s| format!("diff_sigma_{s:.4}")));
    write_csv(&a.out.join("runs.csv"), &header.iter().map(|s| s.as_str()).collect::<Vec<_>>(), &rows)?;
    let by = |d: usize, f: &dyn Fn(&Run) -> f64| {
        runs.iter().filter(|r| r.d == d).map(|r| (r.n as f64, f(r))).collect::<Vec<_>>()
    };
    let ds: Vec<usize> = {
        let mut v: Vec<usize> = runs.iter().map(|r| r.d).collect();
        v.dedup();
        v
    };
    // Per plot: file, title, y label, log y; and its curves (label suffix, dashed reference?, value).
    const PLOTS: [(&str, &str, &str, bool); 4] = [
        ("data_size_linearity.png", "min over sigma of the linearity score", "min_sigma linearity", false),
        ("data_size_memorisation.png", "memorisation of 64 Heun-18 samples", "fraction / ratio", false),
        ("data_size_difference.png", "network vs Gaussian denoiser, mean over sigma", "E|D_net - D_G| / |D_net|", true),
        ("data_size_samples.png", "samples from the same noise: MSE per pixel", "MSE per pixel", false),
    ];
    type Curve<'a> = (&'a str, bool, &'a dyn Fn(&Run) -> f64);
    let curves: [Vec<Curve<'_>>; 4] = [
        vec![
            ("network", false, &|r: &Run| r.linearity_min_network),
            ("Gaussian D_G", true, &|r: &Run| r.linearity_min_gaussian),
            ("memoriser D*", true, &|r: &Run| r.linearity_min_memorising),
        ],
        vec![
            ("memorised (d1 < d2/3)", false, &|r: &Run| r.memorised_fraction),
            ("median d1/d2", true, &|r: &Run| r.nn_ratio_median),
        ],
        vec![("", false, &|r: &Run| r.difference_to_gaussian_mean)],
        vec![
            ("to Gaussian's", false, &|r: &Run| r.sample_mse_to_gaussian),
            ("to memoriser's", true, &|r: &Run| r.sample_mse_to_memorising),
        ],
    ];
    for ((file, title, ylab, log_y), curves) in PLOTS.into_iter().zip(curves) {
        let mut series = Vec::new();
        for &d in &ds {
            for (label, dashed, f) in &curves {
                let net = nets.iter().find(|(nd, _)| *nd == d).map_or(String::new(), |(_, n)| format!(" ({n})"));
                let name = if label.is_empty() { format!("d = {d}{net}") } else { format!("d = {d}{net}: {label}") };
                series.push(if *dashed { Series::reference(name, by(d, *f)) } else { Series::new(name, by(d, *f)) });
            }
        }
        let vlines = ds.iter().map(|&d| (d as f64, format!("N = {d}"))).collect();
        xy_plot(
            &a.out.join(file),
            title,
            &Axes { x: "N training images".into(), y: ylab.into(), log_x: true, log_y, vlines },
            &series,
        )?;
    }
    write_summary(&a.out, &Summary { experiment: "data-size", setting, width, depth, steps, sigmas, runs })
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits_by_three() {
        for (n, s) in [(0, "0"), (999, "999"), (4000, "4,000"), (12000, "12,000"), (1_234_567, "1,234,567")] {
            assert_eq!(super::thousands(n), s);
        }
    }
}
