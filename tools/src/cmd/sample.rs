//! `gaussdiff sample`: run the core sampler per sample (bit-identical to the firmware) into a PNG grid.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use gaussdiff_core::blob::read::Model;
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::sampler::{self, Solver};
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_fit::dataset::LoadOptions;

use crate::util;

/// Which sampler.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerKind {
    /// Closed-form solution of the probability-flow ODE (Gaussian blobs only; no steps).
    Exact,
    /// EDM Euler, `steps` evaluations.
    Euler,
    /// EDM Heun, `2 steps - 1` evaluations.
    Heun,
}

impl SamplerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Euler => "euler",
            Self::Heun => "heun",
        }
    }
}

/// Arguments of `gaussdiff sample`.
#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    /// The blob.
    pub blob: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 64)]
    pub n: u64,
    /// Seed: sample i starts from the noise of Rng::new(seed + i) (see docs/architecture.md).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sampler.
    #[arg(long, value_enum, default_value = "heun")]
    pub sampler: SamplerKind,
    /// EDM steps for euler/heun (sigma_max 80 .. sigma_min 0.002, rho 7, then 0).
    #[arg(long, default_value_t = 18)]
    pub steps: usize,
    /// Output PNG grid.
    #[arg(short, long, default_value = "samples.png", value_name = "FILE")]
    pub output: PathBuf,
    /// Also write one PNG per sample into this directory (created if its parent exists).
    #[arg(long, value_name = "DIR")]
    pub raw: Option<PathBuf>,
    /// Show each sample's nearest training image (Euclidean, model space) beside it.
    #[arg(long, value_name = "DATASET")]
    pub nearest: Option<PathBuf>,
    /// Grid columns (samples per row).
    #[arg(long, default_value_t = 8)]
    pub cols: usize,
    /// Pixel magnification in the grid.
    #[arg(long, default_value_t = 2)]
    pub scale: u32,
}

/// Initial noise level of every run: the EDM schedule's `sigma_max`.
pub const SIGMA_MAX: f32 = EdmSchedule::EDM.sigma_max;

/// Check the sampler/steps combination for a model.
pub fn check(model: &Model<'_>, kind: SamplerKind, steps: usize) -> Result<()> {
    if kind == SamplerKind::Exact && model.as_gaussian().is_none() {
        bail!("--sampler exact: expected a Gaussian blob (this one is linear); use euler or heun");
    }
    if kind != SamplerKind::Exact && steps == 0 {
        bail!("--steps 0: expected at least 1 step for the {} sampler", kind.name());
    }
    Ok(())
}

/// Sample `i` of a run with `seed` through the core (per-sample, fixed summation order).
pub fn sample_one(
    model: &Model<'_>,
    kind: SamplerKind,
    sigmas: &[f32],
    seed: u64,
    i: u64,
    x: &mut [f32],
    scratch: &mut [f32],
) {
    util::initial_noise(seed, i, SIGMA_MAX, x);
    match (kind, model.as_gaussian()) {
        (SamplerKind::Exact, Some(g)) => {
            sampler::sample_exact(g, SIGMA_MAX, x, scratch);
        }
        (SamplerKind::Euler, _) => {
            sampler::sample(model, Solver::Euler, sigmas, None, x, scratch, |_, _| {});
        }
        _ => {
            sampler::sample(model, Solver::Heun, sigmas, None, x, scratch, |_, _| {});
        }
    }
}

/// `n` samples (model space), seeds `seed .. seed + n`, with a progress bar.
pub fn sample_many(
    model: &Model<'_>,
    kind: SamplerKind,
    steps: usize,
    seed: u64,
    n: u64,
    label: &str,
) -> Result<Vec<Vec<f32>>> {
    check(model, kind, steps)?;
    let d = model.dim();
    let mut sigmas = vec![0.0f32; steps + 1];
    EdmSchedule::EDM.fill(steps, &mut sigmas);
    let scratch_len = match model.as_gaussian() {
        Some(g) => sampler::scratch_len(d, model.scratch_len()).max(sampler::exact_scratch_len(g)),
        None => sampler::scratch_len(d, model.scratch_len()),
    };
    let mut scratch = vec![0.0f32; scratch_len];
    let pb = util::progress(n, label);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut x = vec![0.0f32; d];
        sample_one(model, kind, &sigmas, seed, i, &mut x, &mut scratch);
        out.push(x);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

pub fn run(args: &SampleArgs) -> Result<()> {
    util::check_output_dir(&args.output)?;
    if let Some(raw) = &args.raw {
        if !raw.is_dir() {
            util::check_output_dir(raw)?;
            std::fs::create_dir(raw)
                .with_context(|| format!("--raw {}: cannot create the directory", raw.display()))?;
        }
    }
    if args.n == 0 {
        bail!("--n 0: expected at least 1 sample");
    }
    let bytes = util::read_file(&args.blob, "blob")?;
    let blob = util::parse_blob(&args.blob, &bytes)?;
    let model = blob.model().map_err(|e| anyhow!("{}: {e}", args.blob.display()))?;
    check(&model, args.sampler, args.steps).with_context(|| format!("{}", args.blob.display()))?;
    let shape = blob.shape();
    let map = blob.pixel_map();
    let samples = sample_many(&model, args.sampler, args.steps, args.seed, args.n, args.sampler.name())?;
    let mut tiles: Vec<Vec<u8>> = Vec::new();
    let mut report = String::new();
    let mut cols = args.cols;
    if let Some(path) = &args.nearest {
        let ds = util::load_dataset(path, &LoadOptions::default())?;
        if ds.dim() != model.dim() {
            bail!(
                "--nearest {}: images have d = {}, expected the blob's d = {}",
                path.display(),
                ds.dim(),
                model.dim()
            );
        }
        let mut total = 0.0f64;
        for s in &samples {
            let (idx, dist) = util::nearest(&ds.images, ds.dim(), s);
            total += f64::from(dist);
            tiles.push(util::to_pixels(&map, s));
            tiles.push(util::to_pixels(&ds.pixel, ds.image(idx)));
        }
        cols *= 2;
        report.push_str(&format!(
            "mean distance to the nearest training image: {:.4} (model space, d = {})\n",
            total / samples.len() as f64,
            ds.dim()
        ));
    } else {
        tiles.extend(samples.iter().map(|s| util::to_pixels(&map, s)));
    }
    let png = util::grid_png(&tiles, shape, cols, args.scale)?;
    util::write_atomic(&args.output, &png)?;
    if let Some(raw) = &args.raw {
        for (i, s) in samples.iter().enumerate() {
            let p = raw.join(format!("sample_{:05}.png", args.seed.wrapping_add(i as u64)));
            util::write_atomic(&p, &util::image_png(&util::to_pixels(&map, s), shape)?)?;
        }
    }
    report.push_str(&format!(
        "wrote {} ({} samples, {} sampler{})\n",
        args.output.display(),
        args.n,
        args.sampler.name(),
        if args.sampler == SamplerKind::Exact { String::new() } else { format!(", {} steps", args.steps) }
    ));
    util::write_stdout(&report)
}
