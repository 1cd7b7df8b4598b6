//! `gaussdiff-train`: train EDM denoisers with candle, distill them into per-sigma linear maps, and
//! measure how close they are to the Gaussian denoiser of the training data.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

use gaussdiff_trainer::distill::{self, DistillConfig, Method};
use gaussdiff_trainer::gauss::Gaussian;
use gaussdiff_trainer::model::Arch;
use gaussdiff_trainer::train::{self, RunOptions, Start, TrainConfig};
use gaussdiff_trainer::{bench, data, report};

// mimalloc: candle allocates a fresh buffer for every op; with glibc's malloc the MLP step runs
// about half as fast (measured by `gaussdiff-train bench`, see docs/trainer.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "gaussdiff-train",
    version,
    about = "Train EDM denoisers (candle), distill them into linear maps, and measure their Gaussian structure"
)]
struct Cli {
    /// Worker threads for candle/rayon (default: all cores). Results do not depend on it.
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Compute device: cpu, or cuda[:N] in a build with `--features cuda`.
    #[arg(long, global = true, default_value = "cpu")]
    device: String,
    /// No progress bars or summaries.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ArchKind {
    Mlp,
    Unet,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train a denoiser (EDM preconditioning and loss). Writes OUT/checkpoint.safetensors, OUT/config.toml, OUT/losses.csv.
    Train(TrainArgs),
    /// Fit per-sigma affine maps W x + b to a trained denoiser (closed form and/or gradient descent).
    Distill(DistillArgs),
    /// Compare network, distilled maps, Gaussian and memorising denoisers: JSON, CSV, plots, sample grids.
    Metrics(MetricsArgs),
    /// Time training steps and distillation beside a plain matmul (prints Markdown).
    Bench(BenchArgs),
    /// Reproduce a paper's finding (docs/results.md): data-size, distill, capacity, gaussian-data, gallery, skip-steps.
    Experiment(gaussdiff_trainer::experiments::ExperimentArgs),
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// TOML config (same keys as the saved config.toml); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run directory.
    #[arg(long, short, default_value = "runs/train")]
    out: PathBuf,
    /// Continue OUT/checkpoint.safetensors with its saved config (only --steps may change).
    #[arg(long)]
    resume: bool,
    /// Dataset file (MNIST IDX or sklearn digits CSV, gzipped or raw). Default: data/mnist/t10k-images-idx3-ubyte.gz
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Train on a random subset of N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Images held out from training (for metrics). Default 500.
    #[arg(long)]
    hold_out: Option<usize>,
    /// Convert colour images to one channel.
    #[arg(long)]
    grayscale: bool,
    /// Resize every image to WxH (e.g. 28x28).
    #[arg(long, value_parser = parse_wxh)]
    resize: Option<(u16, u16)>,
    /// Network: mlp (CPU default) or unet.
    #[arg(long, value_enum)]
    arch: Option<ArchKind>,
    /// MLP hidden width (default 512).
    #[arg(long)]
    width: Option<usize>,
    /// MLP hidden-to-hidden layers (default 3).
    #[arg(long)]
    depth: Option<usize>,
    /// U-Net base channels (default 32).
    #[arg(long)]
    channels: Option<usize>,
    /// Batch size (default 128).
    #[arg(long)]
    batch: Option<usize>,
    /// Total optimiser steps (default 20000).
    #[arg(long)]
    steps: Option<usize>,
    /// Peak learning rate (default 1e-3).
    #[arg(long)]
    lr: Option<f64>,
    /// Warm-up steps (default 500).
    #[arg(long)]
    warmup: Option<usize>,
    /// EMA decay (default 0.999).
    #[arg(long)]
    ema_decay: Option<f64>,
    /// Seed of every random draw (default 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Mean of ln(sigma) of the training noise levels (default -1.2, EDM).
    #[arg(long, allow_hyphen_values = true)]
    p_mean: Option<f64>,
    /// Standard deviation of ln(sigma) of the training noise levels (default 1.2, EDM).
    #[arg(long)]
    p_std: Option<f64>,
    /// Checkpoint every K steps (default 1000).
    #[arg(long)]
    save_every: Option<usize>,
    /// Keep checkpoint-<step>.safetensors snapshots too.
    #[arg(long)]
    keep_snapshots: bool,
    /// Also write the Gaussian blob (.gdn) of the training data.
    #[arg(long)]
    gaussian_blob: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct DistillArgs {
    /// Trained checkpoint (EMA weights are used).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Output safetensors (layout: docs/distill-format.md).
    #[arg(long, short)]
    out: PathBuf,
    /// closed (ridge least squares), gd (Adam as Li et al.), or both on the same samples.
    #[arg(long, value_enum, default_value = "closed")]
    method: Method,
    /// Comma-separated descending sigmas (default: the 10-step EDM grid 80 ... 0.002).
    #[arg(long, value_delimiter = ',')]
    sigmas: Option<Vec<f64>>,
    /// Batches of `--batch` samples per sigma (GD steps; the closed form uses the same samples).
    #[arg(long, default_value_t = 16)]
    batches: usize,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Base learning rate of GD (W': lr0 sqrt(d) sigma_data^2/(sigma_data^2+sigma^2); b: 5 lr0; cosine decay).
    #[arg(long, default_value_t = 2e-2)]
    lr0: f64,
    /// Relative ridge rho / (tr(C_xx)/d).
    #[arg(long, default_value_t = 1e-6)]
    ridge: f64,
    /// Seed of the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also store the training data's top-K eigenvectors as `basis` (and `lambda`); 0 = none.
    #[arg(long, default_value_t = 0)]
    basis_rank: usize,
    /// With --method both: also write the GD maps here.
    #[arg(long)]
    gd_out: Option<PathBuf>,
    /// Also write a linear blob (.gdn) through core's writer: dense, or in the top-K basis with --basis-rank.
    #[arg(long)]
    blob: Option<PathBuf>,
    /// Storage type of the blob's big matrices: f32, f16 or i8.
    #[arg(long, default_value = "f32")]
    blob_dtype: String,
    /// Per-sigma report (JSON); default OUT with extension .report.json.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct MetricsArgs {
    /// Trained checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Distilled maps (from `distill`).
    #[arg(long)]
    distilled: Option<PathBuf>,
    /// Output directory.
    #[arg(long, short, default_value = "runs/metrics")]
    out: PathBuf,
    /// Held-out images per sigma.
    #[arg(long, default_value_t = 256)]
    n_eval: usize,
    /// Samples per denoiser.
    #[arg(long, default_value_t = 64)]
    n_samples: usize,
    /// Heun steps.
    #[arg(long, default_value_t = 18)]
    steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Comma-separated sigmas (default: the distilled grid or the 10-step EDM grid).
    #[arg(long, value_delimiter = ',')]
    sigmas: Option<Vec<f64>>,
    /// Leave out the memorising denoiser.
    #[arg(long)]
    no_memorising: bool,
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// d = 784 dataset.
    #[arg(long, default_value = "data/mnist/t10k-images-idx3-ubyte.gz")]
    dataset: PathBuf,
    /// Small dataset for the d = 64 row (skipped if missing).
    #[arg(long, default_value = "data/sklearn_digits/digits.csv.gz")]
    digits: PathBuf,
    /// Timed steps per configuration.
    #[arg(long, default_value_t = 20)]
    steps: usize,
}

fn parse_wxh(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("expected WxH like 28x28, got {s:?}"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<u16>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("expected WxH with positive integers, got {s:?}"))
    };
    Ok((p(w)?, p(h)?))
}

fn train_config(a: &TrainArgs) -> Result<TrainConfig> {
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
        Arch::Unet { .. } => ArchKind::Unet,
    });
    c.arch = match (kind, &c.arch) {
        (ArchKind::Mlp, Arch::Mlp { width, depth }) => {
            Arch::Mlp { width: a.width.unwrap_or(*width), depth: a.depth.unwrap_or(*depth) }
        }
        (ArchKind::Mlp, _) => Arch::Mlp { width: a.width.unwrap_or(512), depth: a.depth.unwrap_or(3) },
        (ArchKind::Unet, Arch::Unet { channels }) => Arch::Unet { channels: a.channels.unwrap_or(*channels) },
        (ArchKind::Unet, _) => Arch::Unet { channels: a.channels.unwrap_or(32) },
    };
    Ok(c)
}

/// mimalloc reads its options from the environment when the process starts. By default it returns
/// freed pages to the OS after 10 ms, and candle allocates a fresh buffer for every op, so each step
/// re-faulted and zeroed megabytes of pages (a quarter of the step time in `perf`). Keep freed pages
/// (`MIMALLOC_PURGE_DELAY=-1`) by re-executing once with the variable set, unless the user set it.
/// `exec` keeps the process id, so signals sent to this process reach the training run.
#[cfg(unix)]
fn tune_allocator() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        if let Ok(exe) = std::env::current_exe() {
            let err = std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("MIMALLOC_PURGE_DELAY", "-1")
                .exec();
            // exec only returns on failure; carry on untuned.
            eprintln!("note: could not re-execute with MIMALLOC_PURGE_DELAY=-1 ({err}); continuing");
        }
    }
}

#[cfg(not(unix))]
fn tune_allocator() {}

fn main() -> Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    gaussdiff_trainer::set_threads(threads)?;
    let device = gaussdiff_trainer::device(&cli.device)?;
    let progress = !cli.quiet;
    match cli.cmd {
        Cmd::Train(a) => {
            let opts =
                RunOptions { out: a.out.clone(), resume: a.resume, progress, gaussian_blob: a.gaussian_blob.clone() };
            let start = if a.resume { Start::Resume { steps: a.steps } } else { Start::Fresh(train_config(&a)?) };
            train::run(start, &opts, &device)?;
        }
        Cmd::Distill(a) => {
            let (cfg, net) = train::load_network(&a.checkpoint, true, &device)?;
            let data = cfg.load_data()?;
            let dc = DistillConfig {
                sigmas: a.sigmas.clone().unwrap_or_else(gaussdiff_trainer::edm::default_grid),
                method: a.method,
                batch: a.batch,
                batches: a.batches,
                lr0: a.lr0,
                ridge: a.ridge,
                seed: a.seed,
            };
            let r = distill::distill(&net, &data, &dc, progress)?;
            let basis = if a.basis_rank > 0 { Some(Gaussian::fit(&data.images, data.dim())?) } else { None };
            let method = match a.method {
                Method::Gd => "gd",
                _ => "closed-form",
            };
            distill::save_maps(&a.out, &r.maps, &data, method, basis.as_ref(), a.basis_rank)?;
            if let (Some(p), Some(g)) = (&a.gd_out, &r.gd_maps) {
                distill::save_maps(p, g, &data, "gd", basis.as_ref(), a.basis_rank)?;
            }
            if let Some(bp) = &a.blob {
                let dtype = match a.blob_dtype.as_str() {
                    "f32" => gaussdiff_core::tensor::DType::F32,
                    "f16" => gaussdiff_core::tensor::DType::F16,
                    "i8" => gaussdiff_core::tensor::DType::I8,
                    other => anyhow::bail!("--blob-dtype {other:?}: expected f32, f16 or i8"),
                };
                let bytes = gaussdiff_trainer::blob::write_linear_blob(
                    &data,
                    &r.maps,
                    basis.as_ref().map(|g| (g, a.basis_rank)),
                    dtype,
                    bp,
                )?;
                if progress {
                    eprintln!("wrote linear blob {} ({bytes} bytes)", bp.display());
                }
            }
            let rp = a.report.clone().unwrap_or_else(|| a.out.with_extension("report.json"));
            gaussdiff_trainer::st::write_atomic(&rp, serde_json::to_string_pretty(&r.report)?.as_bytes())?;
            if progress {
                eprintln!(
                    "sigma        samples  net_s   closed_s  gd_s    |W_gd-W_cf|/|W_cf|  out_rel  mse_cf      mse_gd"
                );
                for s in &r.report {
                    let o = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.3e}"));
                    eprintln!(
                        "{:<12.5} {:<8} {:<7.2} {:<9.3} {:<7.2} {:<19} {:<8} {:<11} {}",
                        s.sigma,
                        s.samples,
                        s.secs_network,
                        s.secs_closed,
                        s.secs_gd,
                        o(s.w_rel_frob_gd_vs_closed),
                        o(s.out_rel_gd_vs_closed),
                        o(s.mse_closed),
                        o(s.mse_gd)
                    );
                }
                eprintln!("wrote {} and {}", a.out.display(), rp.display());
            }
        }
        Cmd::Metrics(a) => {
            let o = report::MetricsOptions {
                checkpoint: a.checkpoint,
                distilled: a.distilled,
                out: a.out.clone(),
                n_eval: a.n_eval,
                n_samples: a.n_samples,
                steps: a.steps,
                seed: a.seed,
                sigmas: a.sigmas,
                no_memorising: a.no_memorising,
            };
            let r = report::run(&o, &device, progress)?;
            if progress {
                eprintln!("linearity (min over sigma): {:?}", r.linearity_min);
                eprintln!("memorised fraction: {:?}", r.memorisation_fraction);
                eprintln!("diverged fraction: {:?}", r.diverged_fraction);
                eprintln!("sample agreement (MSE/pixel): {:?}", r.sample_agreement);
                eprintln!("wrote {}/metrics.json, CSVs and PNGs", a.out.display());
            }
        }
        Cmd::Experiment(a) => gaussdiff_trainer::experiments::run(&a, &device, progress)?,
        Cmd::Bench(a) => {
            let spec = data::LoadSpec { limit: None, seed: 0, hold_out: 0, grayscale: false, resize: None };
            let d = data::load(&a.dataset, &spec)?;
            let dg = data::load(&a.digits, &spec).ok();
            let md = bench::run(&d, dg.as_ref(), a.steps, threads, &device)?;
            println!("{md}");
        }
    }
    Ok(())
}
