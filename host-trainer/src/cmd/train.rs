//! `gaussdiff-train train`: arguments, the config they make, and the run.

use anyhow::{Context, Result};
use candle_core::Device;
use gaussdiff_fit::dataset;
use std::path::PathBuf;

use crate::network::Arch;
use crate::train::{self, RunOptions, Start, TrainConfig};

/// `--arch`: `resmlp` (residual MLP, the default), `mlp` (plain noise-conditioned MLP) or `unet` (small conv U-Net). The variants carry no doc comments
/// on purpose: clap would turn them into a long "Possible values" list in `train --help`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
#[allow(missing_docs)]
pub enum ArchKind {
    Resmlp,
    Mlp,
    Unet,
}

/// Arguments of `gaussdiff-train train`. (The field docs are clap's help text, kept as they are.)
#[derive(clap::Args, Debug)]
#[allow(rustdoc::invalid_html_tags)]
pub struct TrainArgs {
    /// TOML config (same keys as the saved config.toml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run directory.
    #[arg(long, short, default_value = "runs/train")]
    pub out: PathBuf,
    /// Continue OUT/checkpoint.safetensors with its saved config (only --steps may change; the other
    /// config flags are refused with it).
    #[arg(
        long,
        conflicts_with_all = [
            "config", "dataset", "limit", "hold_out", "grayscale", "resize", "arch", "width", "depth", "channels",
            "batch", "lr", "warmup", "ema_decay", "seed", "p_mean", "p_std", "save_every", "keep_snapshots"
        ]
    )]
    pub resume: bool,
    /// Dataset file (MNIST IDX or sklearn digits CSV, gzipped or raw). Default: data/mnist/t10k-images-idx3-ubyte.gz
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Train on a random subset of N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Images held out from training (for metrics). Default 500.
    #[arg(long)]
    pub hold_out: Option<usize>,
    /// Convert colour images to one channel.
    #[arg(long)]
    pub grayscale: bool,
    /// Resize every image to WxH (e.g. 28x28).
    #[arg(long, value_parser = dataset::parse_wxh)]
    pub resize: Option<(u16, u16)>,
    /// Network: resmlp (residual MLP, CPU default), mlp (plain MLP; stalls at the skip-path floor on MNIST) or unet.
    #[arg(long, value_enum)]
    pub arch: Option<ArchKind>,
    /// MLP hidden width (default: resmlp 1024, mlp 512).
    #[arg(long)]
    pub width: Option<usize>,
    /// Residual blocks of the resmlp (default 2) or hidden-to-hidden layers of the mlp (default 3).
    #[arg(long)]
    pub depth: Option<usize>,
    /// U-Net base channels (default 32).
    #[arg(long)]
    pub channels: Option<usize>,
    /// Batch size (default 128).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Total optimiser steps (default 20000).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Peak learning rate (default 1e-3).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Warm-up steps (default 500).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// EMA decay (default 0.999).
    #[arg(long)]
    pub ema_decay: Option<f64>,
    /// Seed of every random draw (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Mean of ln(sigma) of the training noise levels (default -1.2, EDM).
    #[arg(long, allow_hyphen_values = true)]
    pub p_mean: Option<f64>,
    /// Standard deviation of ln(sigma) of the training noise levels (default 1.2, EDM).
    #[arg(long)]
    pub p_std: Option<f64>,
    /// Checkpoint every K steps (default 1000).
    #[arg(long)]
    pub save_every: Option<usize>,
    /// Keep checkpoint-<step>.safetensors snapshots too.
    #[arg(long)]
    pub keep_snapshots: bool,
    /// Also write the Gaussian blob (.gdn) of the training data.
    #[arg(long)]
    pub gaussian_blob: Option<PathBuf>,
}

/// The config of a fresh run: `--config` (or the defaults) with the flags applied.
///
/// # Errors
/// If the config file cannot be read or parsed.
pub fn config(a: &TrainArgs) -> Result<TrainConfig> {
    let mut c = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading config {}", p.display()))?;
            toml::from_str::<TrainConfig>(&text)
                .with_context(|| format!("config {}: invalid TOML or unknown key", p.display()))?
        }
        None => TrainConfig::default(),
    };
    if let Some(v) = &a.dataset {
        c.dataset = v.clone();
    }
    if a.limit.is_some() {
        c.limit = a.limit;
    }
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { c.$f = v; } )* };
    }
    set!(hold_out, batch, steps, lr, warmup, ema_decay, seed, save_every, p_mean, p_std);
    if a.keep_snapshots {
        c.keep_snapshots = true;
    }
    if a.grayscale {
        c.grayscale = true;
    }
    if a.resize.is_some() {
        c.resize = a.resize;
    }
    let kind = a.arch.unwrap_or(match c.arch {
        Arch::Mlp { .. } => ArchKind::Mlp,
        Arch::Resmlp { .. } => ArchKind::Resmlp,
        Arch::Unet { .. } => ArchKind::Unet,
    });
    c.arch = match (kind, &c.arch) {
        (ArchKind::Mlp, Arch::Mlp { width, depth }) => {
            Arch::Mlp { width: a.width.unwrap_or(*width), depth: a.depth.unwrap_or(*depth) }
        }
        (ArchKind::Mlp, _) => Arch::Mlp { width: a.width.unwrap_or(512), depth: a.depth.unwrap_or(3) },
        (ArchKind::Resmlp, Arch::Resmlp { width, blocks }) => {
            Arch::Resmlp { width: a.width.unwrap_or(*width), blocks: a.depth.unwrap_or(*blocks) }
        }
        (ArchKind::Resmlp, _) => Arch::Resmlp { width: a.width.unwrap_or(1024), blocks: a.depth.unwrap_or(2) },
        (ArchKind::Unet, Arch::Unet { channels }) => Arch::Unet { channels: a.channels.unwrap_or(*channels) },
        (ArchKind::Unet, _) => Arch::Unet { channels: a.channels.unwrap_or(32) },
    };
    Ok(c)
}

/// Run `train`.
///
/// # Errors
/// Whatever loading, training or writing reports.
pub fn run(a: &TrainArgs, device: &Device, progress: bool) -> Result<()> {
    let opts = RunOptions { out: a.out.clone(), resume: a.resume, progress, gaussian_blob: a.gaussian_blob.clone() };
    let start = if a.resume { Start::Resume { steps: a.steps } } else { Start::Fresh(config(a)?) };
    train::run(start, &opts, device)?;
    Ok(())
}
