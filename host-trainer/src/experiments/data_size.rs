//! Experiment 1 -- memorisation to generalisation with dataset size (Li et al. 2024, Fig. 1;
//! Kadkhodaie et al. 2024).
//!
//! The same MLP (same width, depth, steps and seed) is trained on N images for N on a log grid around d,
//! for sklearn digits (d = 64) and MNIST (d = 784). For every run the trainer's metrics (`crate::report`,
//! held-out images, EDM 10-level sigma grid) give:
//! * the minimum over sigma of the network's linearity score (mean over the five alphas),
//! * the memorised fraction of 64 Heun-18 samples (nearest training image closer than 1/3 of the
//!   second nearest),
//! * the relative difference between the network and the Gaussian denoiser of its N training images,
//!   averaged over the sigma grid (and the per-sigma values in `runs.csv`).

use anyhow::Result;
use candle_core::Device;
use serde::Serialize;
use std::path::Path;

use super::common::{log_grid, mlp_config, train_mlp, write_csv, write_json, xy_plot, Axes, Series};
use super::{ExperimentArgs, Setting};
use crate::report::{self, MetricsOptions};

#[derive(Serialize, Clone)]
struct Run {
    dataset: String,
    d: usize,
    n: usize,
    linearity_min_network: f64,
    linearity_min_gaussian: f64,
    memorised_fraction: f64,
    difference_to_gaussian_mean: f64,
    difference_to_gaussian_max: f64,
    difference_per_sigma: Vec<f64>,
    sample_mse_to_gaussian: f64,
}

/// File, title, y label, log y, value.
type PlotSpec<'a> = (&'a str, &'a str, &'a str, bool, &'a dyn Fn(&Run) -> f64);

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

#[allow(clippy::too_many_arguments)]
fn sweep(
    path: &Path,
    hold_out: usize,
    grid: &[usize],
    width: usize,
    depth: usize,
    steps: usize,
    a: &ExperimentArgs,
    device: &Device,
    progress: bool,
    sigmas: &mut Vec<f64>,
) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for &n in grid {
        let cfg = mlp_config(path, width, depth, steps, Some(n), hold_out, a.seed);
        let stem =
            path.file_name().and_then(|s| s.to_str()).unwrap_or("data").split('.').next().unwrap_or("data").to_string();
        let dir = a.out.join(format!("{stem}_n{n}"));
        let ck = train_mlp(&dir, cfg, device, progress)?;
        let o = MetricsOptions {
            checkpoint: ck,
            distilled: None,
            out: dir.join("metrics"),
            n_eval: 256,
            n_samples: 64,
            steps: 18,
            seed: a.seed,
            sigmas: None,
            no_memorising: true,
        };
        let rep = report::run(&o, device, false)?;
        let diff = rep.difference.get("network vs gaussian").cloned().unwrap_or_default();
        *sigmas = rep.sigmas.clone();
        let r = Run {
            dataset: rep.dataset.clone(),
            d: rep.d,
            n: rep.n_train,
            linearity_min_network: rep.linearity_min.get("network").copied().unwrap_or(f64::NAN),
            linearity_min_gaussian: rep.linearity_min.get("gaussian").copied().unwrap_or(f64::NAN),
            memorised_fraction: rep.memorisation_fraction.get("network").copied().unwrap_or(f64::NAN),
            difference_to_gaussian_mean: diff.iter().sum::<f64>() / diff.len().max(1) as f64,
            difference_to_gaussian_max: diff.iter().cloned().fold(0.0, f64::max),
            difference_per_sigma: diff,
            sample_mse_to_gaussian: rep.sample_agreement.get("network vs gaussian").copied().unwrap_or(f64::NAN),
        };
        if progress {
            eprintln!(
                "{} N={:<6} linearity min {:.4}  memorised {:.3}  diff to Gaussian mean {:.4} max {:.4}  sample MSE to Gaussian {:.4}",
                r.dataset, r.n, r.linearity_min_network, r.memorised_fraction, r.difference_to_gaussian_mean, r.difference_to_gaussian_max, r.sample_mse_to_gaussian
            );
        }
        runs.push(r);
    }
    Ok(runs)
}

/// Run experiment 1.
pub fn run(a: &ExperimentArgs, device: &Device, progress: bool) -> Result<()> {
    let setting = a.setting();
    // (width, depth, steps, digits grid, MNIST grid)
    let (width, depth, steps, g_digits, g_mnist) = match setting {
        Setting::Quick => (64, 2, 200, vec![16, 256], vec![]),
        Setting::Medium => (256, 3, 3000, log_grid(8, 1500, 3), vec![64, 784, 8000]),
        Setting::Full => (512, 3, 10000, log_grid(8, 1500, 4), log_grid(64, 9500, 3)),
    };
    let mut sigmas = Vec::new();
    let mut runs = sweep(&a.digits, 297, &g_digits, width, depth, steps, a, device, progress, &mut sigmas)?;
    if !g_mnist.is_empty() {
        runs.extend(sweep(&a.mnist, 500, &g_mnist, width, depth, steps, a, device, progress, &mut sigmas)?);
    }
    let mut rows = Vec::new();
    for r in &runs {
        let mut v = vec![
            r.d as f64,
            r.n as f64,
            r.linearity_min_network,
            r.linearity_min_gaussian,
            r.memorised_fraction,
            r.difference_to_gaussian_mean,
            r.difference_to_gaussian_max,
            r.sample_mse_to_gaussian,
        ];
        v.extend(&r.difference_per_sigma);
        rows.push(v);
    }
    let mut header: Vec<String> = [
        "d",
        "n",
        "linearity_min_network",
        "linearity_min_gaussian",
        "memorised_fraction",
        "diff_to_gaussian_mean",
        "diff_to_gaussian_max",
        "sample_mse_to_gaussian",
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
    let plots: [PlotSpec<'_>; 3] = [
        ("data_size_linearity.png", "min over sigma of the linearity score", "min_sigma linearity", false, &|r| {
            r.linearity_min_network
        }),
        ("data_size_memorisation.png", "memorised fraction of samples (d1 < d2/3)", "fraction", false, &|r| {
            r.memorised_fraction
        }),
        (
            "data_size_difference.png",
            "network vs Gaussian denoiser, mean over sigma",
            "E|D_net - D_G| / |D_net|",
            true,
            &|r| r.difference_to_gaussian_mean,
        ),
    ];
    for (file, title, ylab, log_y, f) in plots {
        let series: Vec<Series> = ds.iter().map(|&d| Series::new(format!("d = {d}"), by(d, f))).collect();
        let vlines = ds.iter().map(|&d| (d as f64, format!("N = {d}"))).collect();
        xy_plot(
            &a.out.join(file),
            &format!("{title} ({} w{width} d{depth}, {steps} steps)", "MLP"),
            &Axes { x: "N training images".into(), y: ylab.into(), log_x: true, log_y, vlines },
            &series,
        )?;
    }
    write_json(
        &a.out.join("summary.json"),
        &Summary { experiment: "data-size", setting, width, depth, steps, sigmas, runs },
    )
}
