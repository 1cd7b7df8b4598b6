//! `train`: EDM training loop with Adam, warm-up, EMA, atomic safetensors checkpoints and `--resume`.
//!
//! One step (batch size B, all draws from [`TrainRng`] in this order):
//! 1. B image indices, uniform with replacement;
//! 2. B noise levels `sigma = exp(p_mean + p_std n)` (config; EDM: -1.2 and 1.2);
//! 3. B x d standard normals `z`; the input is `x = y + sigma z` (f32, on the host);
//! 4. loss = mean over batch and pixels of `lambda(sigma) (D(x; sigma) - y)^2`;
//! 5. Adam step, EMA update.
//!
//! A checkpoint holds weights, EMA, both Adam moments, the step, the RNG state and the config, so a
//! resumed run repeats exactly the draws and arithmetic of an uninterrupted one.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::edm;
use crate::network::{Arch, CondBatch, Network};
use crate::optim::{Adam, AdamConfig};
use crate::rng::TrainRng;
use crate::st::{self, F32Tensor, Loaded};
use gaussdiff_fit::dataset::{self, Dataset, Format, LoadOptions};

/// Checkpoint file name inside the run directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// Config file name inside the run directory.
pub const CONFIG: &str = "config.toml";
/// Loss log inside the run directory.
pub const LOSSES: &str = "losses.csv";
/// Value of the `format` metadata key of a checkpoint.
pub const CHECKPOINT_FORMAT: &str = "gaussdiff-train-checkpoint-1";

/// Steps per window of the skip-path floor watch ([`crate::floor::FloorWatch`]): the first check is
/// at step 1,000 (of a fresh run, or 1,000 steps after a resume).
pub const FLOOR_WINDOW: usize = 500;

/// Everything that determines a training run's numbers (saved as `config.toml` and in the checkpoint).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Dataset file (sklearn digits CSV, MNIST IDX, ...).
    pub dataset: PathBuf,
    /// Random subset of N training images (after the hold-out).
    pub limit: Option<usize>,
    /// Images held out from training (used by `metrics`).
    pub hold_out: usize,
    /// Convert colour images to one channel.
    #[serde(default)]
    pub grayscale: bool,
    /// Resize every image to [width, height].
    #[serde(default)]
    pub resize: Option<(u16, u16)>,
    /// Network.
    pub arch: Arch,
    /// Batch size.
    pub batch: usize,
    /// Total optimiser steps.
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup: usize,
    /// EMA decay ceiling.
    pub ema_decay: f64,
    /// Seed of every random draw (data subset, init, batches, noise).
    pub seed: u64,
    /// Write a checkpoint every this many steps (and at the end).
    pub save_every: usize,
    /// Also keep `checkpoint-<step>.safetensors` snapshots (for following a run over training).
    pub keep_snapshots: bool,
    /// Mean of `ln sigma` of the training noise levels (EDM: -1.2).
    #[serde(default = "default_p_mean")]
    pub p_mean: f64,
    /// Standard deviation of `ln sigma` of the training noise levels (EDM: 1.2).
    #[serde(default = "default_p_std")]
    pub p_std: f64,
}

fn default_p_mean() -> f64 {
    edm::P_MEAN
}

fn default_p_std() -> f64 {
    edm::P_STD
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dataset: PathBuf::from("data/mnist/t10k-images-idx3-ubyte.gz"),
            limit: None,
            hold_out: 500,
            grayscale: false,
            resize: None,
            arch: Arch::Resmlp { width: 1024, blocks: 2 },
            batch: 128,
            steps: 20_000,
            lr: 1e-3,
            warmup: 500,
            ema_decay: 0.999,
            seed: 0,
            save_every: 1000,
            keep_snapshots: false,
            p_mean: edm::P_MEAN,
            p_std: edm::P_STD,
        }
    }
}

impl TrainConfig {
    /// Check ranges; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            bail!("config: batch must be at least 1");
        }
        if self.steps == 0 {
            bail!("config: steps must be at least 1 (a run of 0 steps would write no checkpoint)");
        }
        if self.save_every == 0 {
            bail!("config: save_every must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("config: lr must be a positive number, got {}", self.lr);
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            bail!("config: ema_decay must be in [0, 1), got {}", self.ema_decay);
        }
        if !self.p_mean.is_finite() {
            bail!("config: p_mean must be a finite number, got {}", self.p_mean);
        }
        if !(self.p_std >= 0.0 && self.p_std.is_finite()) {
            bail!("config: p_std must be a non-negative number, got {}", self.p_std);
        }
        if self.limit == Some(0) {
            bail!("config: limit must be at least 1");
        }
        Ok(())
    }

    /// Load data as this config describes it.
    pub fn load_data(&self) -> Result<Dataset> {
        let opts = LoadOptions {
            format: Format::Auto,
            limit: self.limit,
            seed: self.seed,
            grayscale: self.grayscale,
            resize: self.resize,
            hold_out: self.hold_out,
        };
        dataset::load(&self.dataset, &opts).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Runtime options that do not change the numbers (or that are not part of the config).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Run directory (checkpoint, config, loss log).
    pub out: PathBuf,
    /// Continue from `out/checkpoint.safetensors`.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Also write the Gaussian blob of the training data here.
    pub gaussian_blob: Option<PathBuf>,
}

/// Training state that a checkpoint restores.
#[derive(Debug)]
pub struct State {
    /// Network (current weights).
    pub net: Network,
    /// Optimiser and EMA.
    pub opt: Adam,
    /// RNG (batches and noise).
    pub rng: TrainRng,
}

fn adam_cfg(c: &TrainConfig) -> AdamConfig {
    AdamConfig { lr: c.lr, warmup: c.warmup, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
}

/// Initial state for a config.
pub fn init_state(cfg: &TrainConfig, data: &Dataset, device: &Device) -> Result<State> {
    let mut init_rng = TrainRng::stream(cfg.seed, 0x1417);
    let s = data.shape;
    let net = Network::new(
        cfg.arch.clone(),
        (s.channels as usize, s.height as usize, s.width as usize),
        &mut init_rng,
        device,
    )?;
    let opt = Adam::new(&net, adam_cfg(cfg), cfg.ema_decay)?;
    Ok(State { net, opt, rng: TrainRng::stream(cfg.seed, 0x7EA1) })
}

fn tensor_f32(name: String, t: &Tensor) -> Result<F32Tensor> {
    Ok(F32Tensor { name, shape: t.dims().to_vec(), data: t.flatten_all()?.to_vec1::<f32>()? })
}

/// Write a checkpoint atomically.
pub fn save_checkpoint(path: &Path, cfg: &TrainConfig, data: &Dataset, st: &State) -> Result<()> {
    let mut tensors = Vec::new();
    for (i, p) in st.net.params.iter().enumerate() {
        tensors.push(tensor_f32(format!("param.{}", p.name), p.var.as_tensor())?);
        tensors.push(tensor_f32(format!("ema.{}", p.name), &st.opt.ema[i])?);
        tensors.push(tensor_f32(format!("adam_m.{}", p.name), &st.opt.m[i])?);
        tensors.push(tensor_f32(format!("adam_v.{}", p.name), &st.opt.v[i])?);
    }
    let s = data.shape;
    let mut md = BTreeMap::new();
    md.insert("format".into(), CHECKPOINT_FORMAT.into());
    md.insert("step".into(), st.opt.t.to_string());
    md.insert("rng".into(), st.rng.state().iter().map(|w| format!("{w:016x}")).collect::<Vec<_>>().join(","));
    md.insert("config".into(), toml::to_string(cfg)?);
    md.insert("dataset".into(), data.name.clone());
    md.insert("n_train".into(), data.len().to_string());
    md.insert("shape".into(), format!("{},{},{}", s.channels, s.height, s.width));
    md.insert("arch".into(), cfg.arch.label());
    md.insert("num_params".into(), st.net.num_params().to_string());
    st::save(path, &tensors, md)
}

/// A loaded checkpoint: config, network with the chosen weights, and (for resuming) the full state.
#[derive(Debug)]
pub struct Checkpoint {
    /// Config the run was started with.
    pub cfg: TrainConfig,
    /// Step at which it was written.
    pub step: usize,
    /// Full training state.
    pub state: State,
}

/// Read a checkpoint and rebuild the state on `device`.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<Checkpoint> {
    let f = Loaded::open(path)?;
    if f.meta("format")? != CHECKPOINT_FORMAT {
        bail!("{}: metadata format is {:?}, expected {CHECKPOINT_FORMAT:?}", path.display(), f.meta("format")?);
    }
    f.require_checksums()?;
    let cfg: TrainConfig = toml::from_str(f.meta("config")?)
        .with_context(|| format!("{}: metadata \"config\" is not a valid config", path.display()))?;
    let step: usize =
        f.meta("step")?.parse().with_context(|| format!("{}: metadata \"step\" is not an integer", path.display()))?;
    let words: Vec<u64> = f
        .meta("rng")?
        .split(',')
        .map(|w| u64::from_str_radix(w, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: metadata \"rng\" is not four hex words", path.display()))?;
    let words: [u64; 4] =
        words.try_into().map_err(|_| anyhow::anyhow!("{}: metadata \"rng\" must hold four words", path.display()))?;
    let shape: Vec<usize> = f
        .meta("shape")?
        .split(',')
        .map(|v| v.parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: metadata \"shape\" is not C,H,W", path.display()))?;
    if shape.len() != 3 {
        bail!("{}: metadata \"shape\" must be C,H,W", path.display());
    }
    let mut scratch = TrainRng::new(0);
    // Every parameter is stored four times as f32 (param, ema, adam_m, adam_v): the file's size bounds the
    // network its metadata may describe, checked before anything is allocated.
    let max_params = f.len() / 16;
    let net = Network::new_within(cfg.arch.clone(), (shape[0], shape[1], shape[2]), &mut scratch, device, max_params)
        .map_err(|e| {
        anyhow::anyhow!(
            "{}: metadata \"config\" and \"shape\" describe a network the file cannot hold (at most \
                 {max_params} parameters of 16 bytes): {e}",
            path.display()
        )
    })?;
    let mut opt = Adam::new(&net, adam_cfg(&cfg), cfg.ema_decay)?;
    for (i, p) in net.params.iter().enumerate() {
        let dims = p.var.dims().to_vec();
        let get = |prefix: &str| -> Result<Tensor> {
            let t = f.f32(&format!("{prefix}.{}", p.name), Some(&dims))?;
            Ok(Tensor::from_vec(t.data, dims.as_slice(), device)?)
        };
        p.var.set(&get("param")?)?;
        opt.ema[i] = get("ema")?;
        opt.m[i] = get("adam_m")?;
        opt.v[i] = get("adam_v")?;
    }
    opt.t = step;
    Ok(Checkpoint { cfg, step, state: State { net, opt, rng: TrainRng::from_state(words) } })
}

/// Load a checkpoint's network with EMA weights (`ema = true`) or raw weights.
pub fn load_network(path: &Path, ema: bool, device: &Device) -> Result<(TrainConfig, Network)> {
    let ck = load_checkpoint(path, device)?;
    let net = ck.state.net;
    if ema {
        for (p, e) in net.params.iter().zip(&ck.state.opt.ema) {
            p.var.set(e)?;
        }
    }
    Ok((ck.cfg, net))
}

/// One batch of training inputs: clean images `y`, noisy inputs `x`, per-sample sigmas.
#[derive(Debug)]
pub struct Batch {
    /// Clean images (B, d).
    pub y: Tensor,
    /// Noisy inputs `y + sigma z` (B, d).
    pub x: Tensor,
    /// Per-sample noise levels.
    pub sigmas: Vec<f64>,
}

/// Draw a batch (steps 1-3 of the module docs) from the state's RNG, with EDM's noise-level
/// distribution `ln sigma ~ N(-1.2, 1.2^2)`.
pub fn draw_batch(st: &mut State, data: &Dataset, batch: usize) -> Result<Batch> {
    draw_batch_with(st, data, batch, (edm::P_MEAN, edm::P_STD))
}

/// [`draw_batch`] with `ln sigma ~ N(p.0, p.1^2)`.
pub fn draw_batch_with(st: &mut State, data: &Dataset, batch: usize, p: (f64, f64)) -> Result<Batch> {
    let d = data.dim();
    let n = data.len();
    let mut y = Vec::with_capacity(batch * d);
    for _ in 0..batch {
        let i = st.rng.below(n);
        y.extend_from_slice(&data.images[i * d..(i + 1) * d]);
    }
    let sigmas: Vec<f64> = (0..batch).map(|_| (p.0 + p.1 * st.rng.normal()).exp()).collect();
    let mut x = st.rng.normals(batch * d);
    for (b, s) in sigmas.iter().enumerate() {
        let s = *s as f32;
        for j in 0..d {
            x[b * d + j] = y[b * d + j] + s * x[b * d + j];
        }
    }
    let dev = st.net.device().clone();
    Ok(Batch { y: Tensor::from_vec(y, (batch, d), &dev)?, x: Tensor::from_vec(x, (batch, d), &dev)?, sigmas })
}

/// EDM loss of a batch: mean over batch and pixels of `lambda(sigma) (D(x; sigma) - y)^2`.
pub fn batch_loss(net: &Network, b: &Batch) -> Result<Tensor> {
    let dev = net.device();
    let w: Vec<f32> = b.sigmas.iter().map(|&s| edm::loss_weight(s) as f32).collect();
    let wt = Tensor::from_vec(w, (b.sigmas.len(), 1), dev)?;
    let cond = CondBatch::new(&b.sigmas, dev)?;
    let den = net.denoise(&b.x, &cond)?;
    Ok((den - &b.y)?.sqr()?.broadcast_mul(&wt)?.mean_all()?)
}

/// One training step with EDM's noise-level distribution; returns the loss.
pub fn train_step(st: &mut State, data: &Dataset, batch: usize) -> Result<f32> {
    train_step_with(st, data, batch, (edm::P_MEAN, edm::P_STD))
}

/// One training step with `ln sigma ~ N(p.0, p.1^2)`; returns the loss.
pub fn train_step_with(st: &mut State, data: &Dataset, batch: usize, p: (f64, f64)) -> Result<f32> {
    let b = draw_batch_with(st, data, batch, p)?;
    let loss = batch_loss(&st.net, &b)?;
    let grads = loss.backward()?;
    st.opt.step(&st.net, &grads)?;
    Ok(loss.to_scalar::<f32>()?)
}

fn truncate_log(path: &Path, upto: usize) -> Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|_| "step,loss\n".into());
    let mut out = String::from("step,loss\n");
    for line in text.lines().skip(1) {
        if let Some(s) = line.split(',').next().and_then(|s| s.parse::<usize>().ok()) {
            if s <= upto {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(gaussdiff_fit::io::write_atomic(path, out.as_bytes())?)
}

/// How a run starts.
#[derive(Clone, Debug)]
pub enum Start {
    /// A new run with this config.
    Fresh(TrainConfig),
    /// Continue `out/checkpoint.safetensors` with its saved config; `steps` may extend the run.
    Resume {
        /// New total step count (at least the checkpoint's step).
        steps: Option<usize>,
    },
}

/// Run (or resume) training; returns the final state.
pub fn run(start: Start, opts: &RunOptions, device: &Device) -> Result<State> {
    let ck_path = opts.out.join(CHECKPOINT);
    let log_path = opts.out.join(LOSSES);
    // Everything is checked and loaded before the run directory is created, so a failed start leaves none.
    let (cfg, data, mut st) = match start {
        Start::Resume { steps } => {
            if !ck_path.is_file() {
                bail!("--resume: no checkpoint at {}", ck_path.display());
            }
            let ck = load_checkpoint(&ck_path, device)?;
            let mut c = ck.cfg.clone();
            if let Some(s) = steps {
                if s < ck.step {
                    bail!("--steps {s}: the checkpoint {} is already at step {}", ck_path.display(), ck.step);
                }
                c.steps = s;
            }
            let data = c.load_data()?;
            truncate_log(&log_path, ck.step)?;
            (c, data, ck.state)
        }
        Start::Fresh(c) => {
            c.validate()?;
            let data = c.load_data()?;
            let st = init_state(&c, &data, device)?;
            gaussdiff_fit::io::OutputDir::create(&opts.out, true)?.keep()?;
            gaussdiff_fit::io::write_atomic(&log_path, b"step,loss\n")?;
            (c, data, st)
        }
    };
    // Temporary files of a writer that was killed (a checkpoint write interrupted) are removed.
    let stale = gaussdiff_fit::io::remove_stale_temporaries(&opts.out)
        .with_context(|| format!("listing run directory {}", opts.out.display()))?;
    if stale > 0 && opts.progress {
        eprintln!("removed {stale} temporary file(s) left by an interrupted run in {}", opts.out.display());
    }
    gaussdiff_fit::io::write_atomic(&opts.out.join(CONFIG), toml::to_string(&cfg)?.as_bytes())?;
    if let Some(p) = &opts.gaussian_blob {
        let g = crate::training_gaussian::TrainingGaussian::fit(&data.images, data.dim())?;
        let bytes = g.write_blob(&data, None, p)?;
        if opts.progress {
            eprintln!("wrote the Gaussian of the training data to {} ({bytes} bytes)", p.display());
        }
    }
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let start_step = st.opt.t;
    let pb = if opts.progress {
        let pb = indicatif::ProgressBar::new(cfg.steps as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  loss {msg}  {per_sec}  ETA {eta}")
                .map_err(|e| anyhow::anyhow!("progress template: {e}"))?,
        );
        pb.set_position(start_step as u64);
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };
    let t0 = Instant::now();
    let mut ema_loss = None::<f64>;
    let floor = edm::skip_floor(cfg.p_mean, cfg.p_std);
    let mut watch = crate::floor::FloorWatch::new(floor, FLOOR_WINDOW);
    if opts.progress && start_step == 0 {
        let mean_sq = data.images.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / data.images.len().max(1) as f64;
        eprintln!(
            "expected loss at initialisation (F = 0): {:.4} (E[y^2] = {mean_sq:.4}); skip-path floor E[c_skip]: {floor:.4}",
            edm::initial_loss(mean_sq, cfg.p_mean, cfg.p_std)
        );
    }
    while st.opt.t < cfg.steps {
        let loss = train_step_with(&mut st, &data, cfg.batch, (cfg.p_mean, cfg.p_std))?;
        if !loss.is_finite() {
            bail!("training diverged at step {}: loss is {loss}; lower --lr", st.opt.t);
        }
        writeln!(log, "{},{}", st.opt.t, loss)?;
        if let Some(w) = watch.push(st.opt.t, loss) {
            pb.suspend(|| eprintln!("{w}"));
        }
        let e = ema_loss.map_or(loss as f64, |e| 0.98 * e + 0.02 * loss as f64);
        ema_loss = Some(e);
        pb.set_message(format!("{e:.4}"));
        pb.inc(1);
        if st.opt.t % cfg.save_every == 0 || st.opt.t == cfg.steps {
            log.flush()?;
            save_checkpoint(&ck_path, &cfg, &data, &st)?;
            if cfg.keep_snapshots {
                save_checkpoint(&opts.out.join(format!("checkpoint-{}.safetensors", st.opt.t)), &cfg, &data, &st)?;
            }
        }
    }
    pb.finish_and_clear();
    if opts.progress {
        let dt = t0.elapsed().as_secs_f64();
        let done = st.opt.t - start_step;
        eprintln!(
            "trained {} ({} params) on {} x {} images for {done} steps in {dt:.1} s ({:.1} steps/s); checkpoint {}",
            cfg.arch.label(),
            st.net.num_params(),
            data.len(),
            data.dim(),
            done as f64 / dt.max(1e-9),
            ck_path.display()
        );
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_distribution_defaults_and_checks() {
        // A config written before p_mean/p_std existed still parses, with EDM's values.
        let mut text = toml::to_string(&TrainConfig::default()).unwrap();
        text =
            text.lines().filter(|l| !l.starts_with("p_mean") && !l.starts_with("p_std")).collect::<Vec<_>>().join("\n");
        let c: TrainConfig = toml::from_str(&text).unwrap();
        assert_eq!((c.p_mean, c.p_std), (edm::P_MEAN, edm::P_STD));
        assert!(TrainConfig { p_std: -1.0, ..TrainConfig::default() }
            .validate()
            .unwrap_err()
            .to_string()
            .contains("p_std"));
        assert!(TrainConfig { p_mean: f64::NAN, ..TrainConfig::default() }
            .validate()
            .unwrap_err()
            .to_string()
            .contains("p_mean"));
    }
}
