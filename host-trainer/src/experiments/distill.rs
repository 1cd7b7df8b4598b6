//! Experiment 2 -- distilled linear maps are the Gaussian denoiser (Li et al. 2024, Fig. 2).
//!
//! Train the MLP on sklearn digits (d = 64), distill per-sigma affine maps `W_sigma x + b_sigma` on the
//! 10-step EDM grid (`crate::distill`) by closed-form ridge least squares and, on the same samples, by
//! gradient descent at the CLI's defaults (their agreement per sigma is in the table), then run the trainer's
//! metrics (`crate::cmd::metrics`) on held-out images: the relative difference between network, linear maps
//! and Gaussian denoiser per sigma, `|W_sigma - U diag(lambda/(lambda+sigma^2)) U^T|_F / |W_G|_F`, and
//! samples of all three from the same noise (EDM Heun, 18 steps), drawn side by side.

use anyhow::Result;
use candle_core::Device;
use gaussdiff_fit::dataset::Dataset;
use serde::Serialize;
use std::path::{Path, PathBuf};

use super::common::{digits_network, write_summary};
use super::{ExperimentArgs, Setting};
use crate::cmd::metrics::{self, MetricsOptions, MetricsReport};
use crate::denoisers::{BatchDenoiser, DistilledDenoiser, NetDenoiser, TrainingGaussianDenoiser};
use crate::distill::{self, DistillConfig, DistilledMaps, Method, SigmaReport};
use crate::network::Network;
use crate::rng::TrainRng;
use crate::train::TrainConfig;
use crate::training_gaussian::TrainingGaussian;
use crate::{measures, plot};

#[derive(Serialize)]
struct Summary {
    experiment: &'static str,
    setting: Setting,
    checkpoint: String,
    width: usize,
    depth: usize,
    steps: usize,
    n_train: usize,
    side_by_side: String,
    side_by_side_rows: Vec<String>,
    /// Per sigma: closed form vs gradient descent on the same samples.
    distill: Vec<SigmaReport>,
    metrics: MetricsReport,
}

/// Run experiment 2.
pub fn run(a: &ExperimentArgs, device: &Device, progress: bool) -> Result<()> {
    let (ck, cfg, net, data) = digits_network(a, device, progress)?;
    let (maps, maps_path, dist) = distill_maps(a, &net, &data, progress)?;
    let rep = measure(a, &ck, &net, &data, (maps, maps_path), device, progress)?;
    report(a, &ck, &cfg, &data, (rep, dist), progress)
}

/// Closed-form maps of the network on the 10-step EDM grid (more batches of 256 for larger settings), saved
/// to `OUT/distilled.safetensors`, and gradient descent on the same samples at the CLI's defaults (its maps
/// only compared).
fn distill_maps(
    a: &ExperimentArgs,
    net: &Network,
    data: &Dataset,
    progress: bool,
) -> Result<(DistilledMaps, PathBuf, Vec<SigmaReport>)> {
    let batches = match a.setting() {
        Setting::Quick => 4,
        Setting::Medium => 16,
        Setting::Full => 32,
    };
    let dc = DistillConfig {
        sigmas: crate::edm::default_grid(),
        method: Method::Both,
        batch: 256,
        batches,
        epochs: distill::DEFAULT_EPOCHS,
        tol: distill::DEFAULT_TOL,
        lr0: distill::DEFAULT_LR0,
        ridge: 1e-6,
        seed: a.seed,
    };
    let r = distill::distill(net, data, &dc, progress)?;
    let maps_path = a.out.join("distilled.safetensors");
    distill::save_maps(&maps_path, &r.maps, data, "closed-form", None, 0)?;
    Ok((r.maps, maps_path, r.report))
}

/// The trainer's metrics with the maps, and the side-by-side grid of network, maps and Gaussian
/// samples from the same noise.
fn measure(
    a: &ExperimentArgs,
    ck: &Path,
    net: &Network,
    data: &Dataset,
    (maps, maps_path): (DistilledMaps, PathBuf),
    device: &Device,
    progress: bool,
) -> Result<MetricsReport> {
    let setting = a.setting();
    let d = data.dim();
    let o = MetricsOptions {
        checkpoint: ck.to_path_buf(),
        distilled: Some(maps_path),
        out: a.out.join("metrics"),
        n_eval: if setting == Setting::Quick { 128 } else { 512 },
        n_samples: if setting == Setting::Quick { 8 } else { 64 },
        steps: 18,
        seed: a.seed,
        sigmas: None,
        no_memorising: false,
    };
    let rep = metrics::run(&o, device, progress)?;
    // Side by side: the same noise through network, linear maps and Gaussian (one row each).
    let n_show = 12;
    let noise = TrainRng::stream(a.seed, 0x51DE).normals(n_show * d);
    let net_d = NetDenoiser { net };
    let lin_d = DistilledDenoiser::new(maps, device)?;
    let gau_d = TrainingGaussianDenoiser::new(TrainingGaussian::fit(&data.images, d)?, device)?;
    let dens: [&dyn BatchDenoiser; 3] = [&net_d, &lin_d, &gau_d];
    let mut grid = Vec::new();
    for (den, label) in dens.into_iter().zip(["network", "distilled linear maps", "Gaussian denoiser"]) {
        grid.push((label.to_string(), measures::heun_sample(den, &noise, 18)?));
    }
    let title = format!("{}: Heun-18 samples of three denoisers from the same noise (column)", data.name);
    plot::dataset_grid(&a.out.join("side_by_side.png"), &title, data, "", grid, (n_show, 6))?;
    Ok(rep)
}

/// Console table and summary.
fn report(
    a: &ExperimentArgs,
    ck: &Path,
    cfg: &TrainConfig,
    data: &Dataset,
    (rep, dist): (MetricsReport, Vec<SigmaReport>),
    progress: bool,
) -> Result<()> {
    let setting = a.setting();
    if progress {
        eprintln!("sigma       |W_gd-W_cf|/|W_cf|  GD epochs  last change  mse closed (last batch)  mse GD (all rows)");
        for s in &dist {
            let o = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4e}"));
            eprintln!(
                "{:<11.4} {:<19} {:<10} {:<12} {:<23} {}",
                s.sigma,
                o(s.w_rel_frob_gd_vs_closed),
                s.gd_epochs.map_or("-".to_string(), |e| e.to_string()),
                o(s.gd_last_change),
                o(s.mse_closed),
                o(s.mse_gd)
            );
        }
        eprintln!("sigma       net-vs-linear  net-vs-gauss  linear-vs-gauss  |W-W_G|/|W_G|");
        for (i, s) in rep.sigmas.iter().enumerate() {
            let g = |k: &str| rep.difference.get(k).and_then(|v| v.get(i)).copied().unwrap_or(f64::NAN);
            let f = rep.frobenius.as_ref().and_then(|v| v.get(i)).copied().unwrap_or(f64::NAN);
            eprintln!(
                "{s:<11.4} {:<14.4} {:<13.4} {:<16.4} {f:.4}",
                g("network vs linear"),
                g("network vs gaussian"),
                g("linear vs gaussian")
            );
        }
        eprintln!("sample agreement (MSE/pixel): {:?}", rep.sample_agreement);
    }
    write_summary(
        &a.out,
        &Summary {
            experiment: "distill",
            setting,
            checkpoint: ck.display().to_string(),
            width: match cfg.arch {
                crate::network::Arch::Mlp { width, .. } => width,
                _ => 0,
            },
            depth: match cfg.arch {
                crate::network::Arch::Mlp { depth, .. } => depth,
                _ => 0,
            },
            steps: cfg.steps,
            n_train: data.len(),
            side_by_side: "side_by_side.png".into(),
            side_by_side_rows: vec!["network".into(), "distilled linear".into(), "gaussian".into()],
            distill: dist,
            metrics: rep,
        },
    )
}
