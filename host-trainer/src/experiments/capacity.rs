//! Experiment 3 -- capacity and early stopping (Li et al. 2024, Fig. 3).
//!
//! At a fixed small number of training images N (sklearn digits, N = d = 64 by default, below where the MLP
//! generalises), (a) train MLPs of increasing width for the same steps, and (b) follow one run's snapshots
//! over training. For every network: the relative difference to the Gaussian denoiser of the N images
//! (mean over the 10-level sigma grid), the mean squared pixel difference between its Heun-18 samples and
//! the Gaussian's from the same noise, and the memorised fraction of its samples.

use anyhow::Result;
use candle_core::Device;
use serde::Serialize;
use std::path::Path;

use super::common::{cached, mlp_config, par_map, train_mlp, write_csv, write_summary};
use super::{ExperimentArgs, Setting};
use crate::cmd::metrics::{self, MetricsOptions};
use crate::plot::{xy_plot, Axes, Series};
use crate::train::{self, RunOptions, Start};

#[derive(Serialize, serde::Deserialize, Clone)]
struct Point {
    width: usize,
    step: usize,
    difference_to_gaussian_mean: f64,
    sample_mse_to_gaussian: f64,
    sample_mse_to_memorising: f64,
    memorised_fraction: f64,
    /// Fraction of the network's sample trajectories that diverged (left out of the sample metrics).
    diverged_fraction: f64,
    linearity_min: f64,
}

#[derive(Serialize)]
struct Summary {
    experiment: &'static str,
    setting: Setting,
    n_train: usize,
    depth: usize,
    steps: usize,
    width_sweep: Vec<Point>,
    followed_width: usize,
    over_training: Vec<Point>,
}

impl Point {
    /// One progress line's worth of the point's measures.
    fn summary(&self) -> String {
        format!(
            "diff to Gaussian {:.4}  sample MSE to Gaussian {:.4} to memorising {:.4}  memorised {:.3}  diverged {:.3}",
            self.difference_to_gaussian_mean,
            self.sample_mse_to_gaussian,
            self.sample_mse_to_memorising,
            self.memorised_fraction,
            self.diverged_fraction
        )
    }
}

fn measure(ck: &Path, out: &Path, width: usize, step: usize, seed: u64, device: &Device) -> Result<Point> {
    let o = MetricsOptions {
        checkpoint: ck.to_path_buf(),
        distilled: None,
        out: out.to_path_buf(),
        n_eval: 256,
        n_samples: 64,
        steps: 18,
        seed,
        sigmas: None,
        no_memorising: false,
    };
    let rep = metrics::run(&o, device, false)?;
    let diff = rep.difference.get("network vs gaussian").cloned().unwrap_or_default();
    Ok(Point {
        width,
        step,
        difference_to_gaussian_mean: diff.iter().sum::<f64>() / diff.len().max(1) as f64,
        sample_mse_to_gaussian: rep.sample_agreement.get("network vs gaussian").copied().unwrap_or(f64::NAN),
        sample_mse_to_memorising: rep.sample_agreement.get("network vs memorising").copied().unwrap_or(f64::NAN),
        memorised_fraction: rep.memorisation_fraction.get("network").copied().unwrap_or(f64::NAN),
        diverged_fraction: rep.diverged_fraction.get("network").copied().unwrap_or(f64::NAN),
        linearity_min: rep.linearity_min.get("network").copied().unwrap_or(f64::NAN),
    })
}

/// Run experiment 3.
pub fn run(a: &ExperimentArgs, device: &Device, progress: bool) -> Result<()> {
    let setting = a.setting();
    let (widths, steps, followed, snapshots) = match setting {
        Setting::Quick => (vec![16, 64], 200, 64, 2),
        Setting::Medium => (vec![16, 32, 64, 128, 256, 512], 4000, 256, 8),
        Setting::Full => (vec![16, 32, 64, 128, 256, 512, 1024], 12000, 512, 12),
    };
    let width_sweep = width_sweep(a, &widths, steps, device, progress)?;
    let over_training = over_training(a, followed, steps, snapshots, device, progress)?;
    report(a, steps, (width_sweep, followed, over_training))
}

/// Training images of every run.
const N_TRAIN: usize = 64;
/// Hidden-to-hidden layers of every MLP.
const DEPTH: usize = 3;

/// Train (or reuse) and measure one MLP per width.
fn width_sweep(
    a: &ExperimentArgs,
    widths: &[usize],
    steps: usize,
    device: &Device,
    progress: bool,
) -> Result<Vec<Point>> {
    let (n_train, depth) = (N_TRAIN, DEPTH);
    let parallel = a.jobs > 1;
    par_map(widths, a.jobs as usize, |&w| {
        let dir = a.out.join(format!("width{w}"));
        let cfg = mlp_config(&a.digits, w, depth, steps, Some(n_train), 297, a.seed);
        let p = cached(&dir, "point.json", &cfg, || {
            let ck = train_mlp(&dir, cfg.clone(), device, progress && !parallel)?;
            measure(&ck, &dir.join("metrics"), w, steps, a.seed, device)
        })?;
        if progress {
            eprintln!("width {w:<5} {}", p.summary());
        }
        Ok(p)
    })
}

/// One MLP of width `followed`, measured at `snapshots` checkpoints over training.
fn over_training(
    a: &ExperimentArgs,
    followed: usize,
    steps: usize,
    snapshots: usize,
    device: &Device,
    progress: bool,
) -> Result<Vec<Point>> {
    let (n_train, depth) = (N_TRAIN, DEPTH);
    // One run followed over training (snapshots).
    let dir = a.out.join(format!("follow_width{followed}"));
    let mut cfg = mlp_config(&a.digits, followed, depth, steps, Some(n_train), 297, a.seed);
    cfg.save_every = (steps / snapshots).max(1);
    cfg.keep_snapshots = true;
    let last = dir.join(format!("checkpoint-{steps}.safetensors"));
    if !last.exists() {
        train::run(
            Start::Fresh(cfg.clone()),
            &RunOptions { out: dir.clone(), resume: false, progress, gaussian_blob: None },
            device,
        )?;
    }
    let mut over_training = Vec::new();
    for k in 1..=snapshots {
        let step = (k * cfg.save_every).min(steps);
        let ck = dir.join(format!("checkpoint-{step}.safetensors"));
        let p = measure(&ck, &dir.join(format!("metrics-{step}")), followed, step, a.seed, device)?;
        if progress {
            eprintln!("step {step:<6} {}", p.summary());
        }
        over_training.push(p);
    }
    Ok(over_training)
}

/// CSVs, plots and the summary.
fn report(
    a: &ExperimentArgs,
    steps: usize,
    (width_sweep, followed, over_training): (Vec<Point>, usize, Vec<Point>),
) -> Result<()> {
    let setting = a.setting();
    let (n_train, depth) = (N_TRAIN, DEPTH);
    let row = |p: &Point| {
        vec![
            p.width as f64,
            p.step as f64,
            p.difference_to_gaussian_mean,
            p.sample_mse_to_gaussian,
            p.sample_mse_to_memorising,
            p.memorised_fraction,
            p.diverged_fraction,
            p.linearity_min,
        ]
    };
    let header = [
        "width",
        "step",
        "diff_to_gaussian_mean",
        "sample_mse_to_gaussian",
        "sample_mse_to_memorising",
        "memorised_fraction",
        "diverged_fraction",
        "linearity_min",
    ];
    write_csv(&a.out.join("width_sweep.csv"), &header, &width_sweep.iter().map(row).collect::<Vec<_>>())?;
    write_csv(&a.out.join("over_training.csv"), &header, &over_training.iter().map(row).collect::<Vec<_>>())?;
    let series = |ps: &[Point], x: &dyn Fn(&Point) -> f64| {
        vec![
            Series::new(
                "sample MSE to Gaussian samples",
                ps.iter().map(|p| (x(p), p.sample_mse_to_gaussian)).collect(),
            ),
            Series::new(
                "sample MSE to memorising samples",
                ps.iter().map(|p| (x(p), p.sample_mse_to_memorising)).collect(),
            ),
            Series::new(
                "denoiser difference to Gaussian",
                ps.iter().map(|p| (x(p), p.difference_to_gaussian_mean)).collect(),
            ),
            Series::new("memorised fraction", ps.iter().map(|p| (x(p), p.memorised_fraction)).collect()),
        ]
    };
    // Per plot: file, title, x label, curves.
    let plots = [
        (
            "capacity_width.png",
            format!("digits, N = {n_train}: MLP width sweep (depth {depth}, {steps} steps)"),
            "hidden width",
            series(&width_sweep, &|p| p.width as f64),
        ),
        (
            "capacity_training.png",
            format!("digits, N = {n_train}: width {followed} over training"),
            "training step",
            series(&over_training, &|p| p.step as f64),
        ),
    ];
    for (file, title, x_label, curves) in plots {
        let axes = Axes {
            x: x_label.into(),
            y: "sample MSE per pixel, relative difference, fraction".into(),
            log_x: true,
            log_y: false,
            vlines: vec![],
        };
        xy_plot(&a.out.join(file), &title, &axes, &curves)?;
    }
    write_summary(
        &a.out,
        &Summary {
            experiment: "capacity",
            setting,
            n_train,
            depth,
            steps,
            width_sweep,
            followed_width: followed,
            over_training,
        },
    )
}
