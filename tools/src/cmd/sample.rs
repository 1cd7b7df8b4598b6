//! `gaussdiff sample`: run the core sampler per sample (bit-identical to the firmware) into a PNG grid.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::builder::TypedValueParser as _;
use gaussdiff_core::denoiser::{Denoiser, Model};
use gaussdiff_core::sampler::{SampleSpec, Sampler, SpecError};
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_fit::dataset::LoadOptions;

use crate::util;

/// The `--sampler` parser: core's sampler names ([`Sampler`]'s `FromStr`), listed as the possible values.
pub fn sampler_parser() -> impl clap::builder::TypedValueParser<Value = Sampler> {
    clap::builder::PossibleValuesParser::new(Sampler::ALL.map(Sampler::name)).try_map(|s| s.parse::<Sampler>())
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
    /// Sampler: exact (closed-form solution of the probability-flow ODE, Gaussian blobs only; no steps),
    /// euler (EDM Euler, `steps` evaluations) or heun (EDM Heun, `2 steps - 1` evaluations).
    #[arg(long, default_value = "heun", value_parser = sampler_parser())]
    pub sampler: Sampler,
    /// EDM steps for euler/heun (sigma_max 80 .. sigma_min 0.002, rho 7, then 0).
    #[arg(long, default_value_t = 18)]
    pub steps: usize,
    /// Output PNG grid.
    #[arg(short, long, default_value = "samples.png", value_name = "FILE")]
    pub output: PathBuf,
    /// Also write one PNG per sample into this directory (created if its parent exists).
    #[arg(long, value_name = "DIR")]
    pub raw: Option<PathBuf>,
    /// Show each sample's nearest training image (Euclidean, model space) beside it. The dataset is prepared as
    /// the blob's metadata records (`--resize`, `--grayscale`, `--limit`, `--hold-out`, `--seed` of the export),
    /// so held-out images are not searched.
    #[arg(long, value_name = "DATASET")]
    pub nearest: Option<PathBuf>,
    /// Grid columns (samples per row).
    #[arg(long, default_value_t = 8)]
    pub cols: usize,
    /// Pixel magnification in the grid.
    #[arg(long, default_value_t = 2)]
    pub scale: u32,
}

/// The core's [`SampleSpec`] of a run (sample `i` is `spec.nth(i)`), checked against the model, with the
/// command line's wording for the two user errors.
pub fn spec(model: &Model<'_>, sampler: Sampler, steps: usize, seed: u64) -> Result<SampleSpec> {
    let spec = SampleSpec {
        sampler,
        steps: u32::try_from(steps).map_err(|_| anyhow!("--steps {steps}: expected at most {}", u32::MAX))?,
        seed,
    };
    match spec.check(model, steps + 1) {
        Ok(()) => Ok(spec),
        Err(SpecError::ExactNeedsGaussian) => {
            bail!("--sampler exact: expected a Gaussian blob (this one is linear); use euler or heun")
        }
        Err(SpecError::ZeroSteps) => bail!("--steps 0: expected at least 1 step for the {sampler} sampler"),
        Err(e) => bail!("{e}"),
    }
}

/// `n` samples (model space), seeds `seed .. seed + n`, through the core recipe ([`SampleSpec::run`], the
/// firmware's bits), with a progress bar.
pub fn sample_many(
    model: &Model<'_>,
    sampler: Sampler,
    steps: usize,
    seed: u64,
    n: u64,
    label: &str,
) -> Result<Vec<Vec<f32>>> {
    let spec = spec(model, sampler, steps, seed)?;
    let mut sigmas = vec![0.0f32; steps + 1];
    let mut scratch = vec![0.0f32; SampleSpec::scratch_len(model)];
    let pb = util::progress(n, label);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut x = vec![0.0f32; model.dim()];
        spec.nth(i)
            .run(model, &EdmSchedule::EDM, &mut sigmas, &mut x, &mut scratch, |_, _| {})
            .map_err(|e| anyhow!("{e}"))?;
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
    spec(&model, args.sampler, args.steps, args.seed).with_context(|| format!("{}", args.blob.display()))?;
    let shape = blob.shape();
    let map = blob.pixel_map();
    let samples = sample_many(&model, args.sampler, args.steps, args.seed, args.n, args.sampler.name())?;
    let mut tiles: Vec<Vec<u8>> = Vec::new();
    let mut report = String::new();
    let mut cols = args.cols;
    if let Some(path) = &args.nearest {
        // The training set of the fit: the blob records how its data was prepared (resize, grayscale,
        // limit, hold-out and their seed), and the same preparation leaves out the held-out images.
        let prep =
            LoadOptions::from_metadata(blob.metadata().iter()).map_err(|e| anyhow!("{}: {e}", args.blob.display()))?;
        let pb = util::stage(format!("reading {}", path.display()));
        let ds = util::load_dataset(path, &prep);
        pb.finish_and_clear();
        let ds = ds?;
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
        if args.sampler == Sampler::Exact { String::new() } else { format!(", {} steps", args.steps) }
    ));
    util::write_stdout(&report)
}
