//! Experiment 3 -- capacity and early stopping (Li et al. 2024, Fig. 3).
//!
//! At a fixed small number of training images N = 64 (sklearn digits, N = d, with the plain MLP; MNIST,
//! N = d/12, with experiment 1's residual MLP), (a) train networks of increasing width for the same steps,
//! and (b) follow one width's snapshots over training (its last snapshot is also its point of the width
//! sweep). For every network: the relative difference to the Gaussian denoiser of the N images
//! (mean over the 10-level sigma grid), the mean squared pixel difference between its Heun-18 samples and
//! the Gaussian's from the same noise, and the memorised fraction of its samples.

use anyhow::Result;
use candle_core::Device;
use serde::Serialize;
use std::path::{Path, PathBuf};

use super::common::{cached, mlp_config, par_map, train_mlp, write_csv, write_summary};
use super::{ExperimentArgs, Setting, SweepData};
use crate::cmd::metrics::{self, MetricsOptions};
use crate::network::Arch;
use crate::plot::{xy_plot, Axes, Series};
use crate::train::{self, RunOptions, Start, TrainConfig};

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

/// One dataset's part of the summary.
#[derive(Serialize)]
struct DatasetSummary {
    dataset: &'static str,
    network: String,
    n_train: usize,
    steps: usize,
    width_sweep: Vec<Point>,
    followed_width: usize,
    over_training: Vec<Point>,
}

#[derive(Serialize)]
struct Summary {
    experiment: &'static str,
    setting: Setting,
    datasets: Vec<DatasetSummary>,
}

/// What one dataset's capacity sweep trains: the network family, the widths, the steps, and which width
/// is followed over training (at how many snapshots).
struct Plan {
    /// Short name in titles and the summary.
    name: &'static str,
    /// Prefix of the run directories and suffix of the output files ("" for digits, so the digits files
    /// keep their names).
    tag: &'static str,
    path: PathBuf,
    hold_out: usize,
    widths: Vec<usize>,
    steps: usize,
    followed: usize,
    snapshots: usize,
    /// The training config of width `w` (snapshots off).
    config: fn(&Path, usize, usize, usize, u64) -> TrainConfig,
    /// The network family in words, for titles.
    family: &'static str,
}

impl Plan {
    fn config(&self, width: usize, seed: u64) -> TrainConfig {
        (self.config)(&self.path, width, self.steps, self.hold_out, seed)
    }

    fn dir(&self, a: &ExperimentArgs, leaf: &str) -> PathBuf {
        a.out.join(format!("{}{leaf}", self.tag))
    }

    fn file(&self, stem: &str, ext: &str) -> String {
        if self.tag.is_empty() {
            format!("{stem}.{ext}")
        } else {
            format!("{stem}_{}.{ext}", self.tag.trim_end_matches('_'))
        }
    }
}

/// The plain MLP of depth [`DEPTH`] (digits).
fn digits_config(path: &Path, width: usize, steps: usize, hold_out: usize, seed: u64) -> TrainConfig {
    mlp_config(path, width, DEPTH, steps, Some(N_TRAIN), hold_out, seed)
}

/// The residual MLP of experiment 1's MNIST runs, [`MNIST_BLOCKS`] blocks (on MNIST the plain MLP stalls at
/// the skip-path floor; docs/trainer.md).
fn mnist_config(path: &Path, width: usize, steps: usize, hold_out: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        arch: Arch::Resmlp { width, blocks: MNIST_BLOCKS },
        ..mlp_config(path, width, MNIST_BLOCKS, steps, Some(N_TRAIN), hold_out, seed)
    }
}

/// The plans of the setting for the selected datasets. MNIST has no quick plan (the quick setting is the
/// tests' and stays on the digits).
fn plans(a: &ExperimentArgs) -> Vec<Plan> {
    let setting = a.setting();
    let mut v = Vec::new();
    if a.datasets.contains(&SweepData::Digits) {
        let (widths, steps, followed, snapshots) = match setting {
            Setting::Quick => (vec![16, 64], 200, 64, 2),
            Setting::Medium => (vec![16, 32, 64, 128, 256, 512], 4000, 256, 8),
            Setting::Full => (vec![16, 32, 64, 128, 256, 512, 1024], 12000, 512, 12),
        };
        v.push(Plan {
            name: "digits",
            tag: "",
            path: a.digits.clone(),
            hold_out: 297,
            widths,
            steps,
            followed,
            snapshots,
            config: digits_config,
            family: "MLP depth 3",
        });
    }
    if a.datasets.contains(&SweepData::Mnist) && setting != Setting::Quick {
        let (widths, steps, followed) = match setting {
            Setting::Medium => (vec![32, 64, 128, 256, 512], 2000, 512),
            _ => (vec![32, 64, 128, 256, 512, 1024], 4000, 1024),
        };
        v.push(Plan {
            name: "MNIST",
            tag: "mnist_",
            path: a.mnist.clone(),
            hold_out: 500,
            widths,
            steps,
            followed,
            snapshots: 8,
            config: mnist_config,
            family: "residual MLP, 2 blocks",
        });
    }
    v
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
    let mut datasets = Vec::new();
    for plan in plans(a) {
        // The followed run first: its last snapshot is also the width sweep's point at that width.
        let over_training = over_training(a, &plan, device, progress)?;
        let width_sweep = width_sweep(a, &plan, over_training.last(), device, progress)?;
        report(a, &plan, &width_sweep, &over_training)?;
        datasets.push(DatasetSummary {
            dataset: plan.name,
            network: plan.family.to_string(),
            n_train: N_TRAIN,
            steps: plan.steps,
            width_sweep,
            followed_width: plan.followed,
            over_training,
        });
    }
    write_summary(&a.out, &Summary { experiment: "capacity", setting: a.setting(), datasets })
}

/// Training images of every run.
const N_TRAIN: usize = 64;
/// Hidden-to-hidden layers of every digits MLP.
const DEPTH: usize = 3;
/// Residual blocks of every MNIST network (as experiment 1's).
const MNIST_BLOCKS: usize = 2;

/// Train (or reuse) and measure one network per width; the followed width is `followed_last`, the
/// followed run's final snapshot (the same training config; snapshots do not change the training).
fn width_sweep(
    a: &ExperimentArgs,
    plan: &Plan,
    followed_last: Option<&Point>,
    device: &Device,
    progress: bool,
) -> Result<Vec<Point>> {
    let parallel = a.jobs > 1;
    par_map(&plan.widths, a.jobs as usize, |&w| {
        let p = match followed_last {
            Some(p) if w == plan.followed => p.clone(),
            _ => {
                let dir = plan.dir(a, &format!("width{w}"));
                let cfg = plan.config(w, a.seed);
                cached(&dir, "point.json", &cfg, || {
                    let ck = train_mlp(&dir, cfg.clone(), device, progress && !parallel)?;
                    measure(&ck, &dir.join("metrics"), w, plan.steps, a.seed, device)
                })?
            }
        };
        if progress {
            eprintln!("{} width {w:<5} {}", plan.name, p.summary());
        }
        Ok(p)
    })
}

/// The network of width `plan.followed`, measured at `plan.snapshots` checkpoints over training.
fn over_training(a: &ExperimentArgs, plan: &Plan, device: &Device, progress: bool) -> Result<Vec<Point>> {
    let (followed, steps, snapshots) = (plan.followed, plan.steps, plan.snapshots);
    let dir = plan.dir(a, &format!("follow_width{followed}"));
    let mut cfg = plan.config(followed, a.seed);
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
        let p = cached(&dir.join(format!("metrics-{step}")), "point.json", &cfg, || {
            measure(&ck, &dir.join(format!("metrics-{step}")), followed, step, a.seed, device)
        })?;
        if progress {
            eprintln!("{} step {step:<6} {}", plan.name, p.summary());
        }
        over_training.push(p);
    }
    Ok(over_training)
}

/// One dataset's CSVs and plots.
fn report(a: &ExperimentArgs, plan: &Plan, width_sweep: &[Point], over_training: &[Point]) -> Result<()> {
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
    let csv = |stem: &str, ps: &[Point]| {
        write_csv(&a.out.join(plan.file(stem, "csv")), &header, &ps.iter().map(row).collect::<Vec<_>>())
    };
    csv("width_sweep", width_sweep)?;
    csv("over_training", over_training)?;
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
    let (name, n, family, steps, followed) = (plan.name, N_TRAIN, plan.family, plan.steps, plan.followed);
    // Per plot: file, title, x label, curves.
    let plots = [
        (
            plan.file("capacity_width", "png"),
            format!("{name}, N = {n}: width sweep ({family}, {steps} steps)"),
            "hidden width",
            series(width_sweep, &|p| p.width as f64),
        ),
        (
            plan.file("capacity_training", "png"),
            format!("{name}, N = {n}: width {followed} over training ({family})"),
            "training step",
            series(over_training, &|p| p.step as f64),
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
    Ok(())
}
