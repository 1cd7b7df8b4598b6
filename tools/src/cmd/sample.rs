//! `gaussdiff sample`: run the core sampler per sample (bit-identical to the firmware) into a PNG grid.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::builder::TypedValueParser as _;
use gaussdiff_core::denoiser::{Denoiser, Model};
use gaussdiff_core::sampler::{SampleSpec, Sampler, SpecError};
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_fit::dataset::LoadOptions;

use crate::{limits, util};

/// The `--sampler` parser: core's sampler names ([`Sampler`]'s `FromStr`), listed as the possible values.
pub fn sampler_parser() -> impl clap::builder::TypedValueParser<Value = Sampler> {
    clap::builder::PossibleValuesParser::new(Sampler::ALL.map(Sampler::name)).try_map(|s| s.parse::<Sampler>())
}

/// Arguments of `gaussdiff sample`.
#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    /// The blob.
    pub blob: PathBuf,
    /// Number of samples, 1 to 1,000,000 (and as many as the grid holds).
    #[arg(long, default_value_t = 64)]
    pub n: u64,
    /// Seed: sample i starts from the noise of Rng::new(seed + i) (see docs/architecture.md).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sampler: exact (closed-form solution of the probability-flow ODE, Gaussian and mixture blobs; no steps),
    /// euler (EDM Euler, `steps` evaluations) or heun (EDM Heun, `2 steps - 1` evaluations).
    #[arg(long, default_value = "heun", value_parser = sampler_parser())]
    pub sampler: Sampler,
    /// EDM steps for euler/heun (sigma_max 80 .. sigma_min 0.002, rho 7, then 0), 1 to 10,000.
    #[arg(long, default_value_t = 18)]
    pub steps: usize,
    /// Output PNG grid.
    #[arg(short, long, default_value = "samples.png", value_name = "FILE")]
    pub output: PathBuf,
    /// Also write one PNG per sample into this directory (created if its parent exists). Written as the
    /// samples are drawn; a failed run leaves nothing behind (a directory it created is removed; in an
    /// existing one the files are staged and moved into place only when the run succeeds).
    #[arg(long, value_name = "DIR")]
    pub raw: Option<PathBuf>,
    /// Show each sample's nearest training image (Euclidean, model space) beside it. The dataset is prepared as
    /// the blob's metadata records (`--resize`, `--grayscale`, `--limit`, `--hold-out`, `--seed` of the export),
    /// so held-out images are not searched.
    #[arg(long, value_name = "DATASET")]
    pub nearest: Option<PathBuf>,
    /// Grid columns (samples per row), at least 1.
    #[arg(long, default_value_t = 8)]
    pub cols: usize,
    /// Pixel magnification in the grid, 1 to 64; the grid is at most 16,384 pixels a side and 2^26 pixels.
    #[arg(long, default_value_t = 2)]
    pub scale: u32,
    /// Mixture blobs: sample one component (class-conditional; its exact Gaussian closed form with
    /// --sampler exact), by index or by label name; `all`: one row of --n samples per component (the
    /// same seeds in every row). Without it a mixture is sampled unconditionally (euler/heun: the
    /// mixture ODE; exact: a component picked by weight from each sample's seed).
    #[arg(long, value_name = "INDEX|LABEL|all")]
    pub class: Option<String>,
}

/// The components `--class` names: an index, a label name (`component_labels` metadata) or `all`.
pub fn classes(blob: &gaussdiff_core::blob::Blob<'_>, model: &Model<'_>, class: &str) -> Result<Vec<usize>> {
    let k = model.components();
    if model.as_mixture().is_none() {
        bail!("--class {class}: expected a mixture blob (this one is {})", blob.kind().name());
    }
    if class == "all" {
        return Ok((0..k).collect());
    }
    if let Some(j) = (0..k).find(|&j| blob.component_label(j) == Some(class)) {
        return Ok(vec![j]);
    }
    match class.parse::<usize>() {
        Ok(j) if j < k => Ok(vec![j]),
        _ => {
            let names: Vec<&str> = (0..k).filter_map(|j| blob.component_label(j)).collect();
            bail!(
                "--class {class}: expected all, a component index 0..{} or a label ({})",
                k - 1,
                if names.is_empty() { "none stored".into() } else { names.join(", ") }
            )
        }
    }
}

/// The core's [`SampleSpec`] of a run (sample `i` is `spec.nth(i)`), checked against the model and the
/// CLI's limits (`--steps` within `1..=MAX_STEPS` whatever the sampler), with the command line's wording.
pub fn spec(model: &Model<'_>, sampler: Sampler, steps: usize, seed: u64) -> Result<SampleSpec> {
    limits::check_steps("--steps", steps)?;
    let spec = SampleSpec { sampler, steps: steps as u32, seed };
    match spec.check(model, steps + 1) {
        Ok(()) => Ok(spec),
        Err(SpecError::ExactNeedsGaussian) => {
            bail!("--sampler exact: expected a Gaussian or mixture blob (this one is linear); use euler or heun")
        }
        Err(SpecError::ZeroSteps) => bail!("--steps 0: expected at least 1 step for the {sampler} sampler"),
        Err(e) => bail!("{e}"),
    }
}

/// `n` samples (model space), seeds `seed .. seed + n` of `recipe` (checked by [`spec`]), through the core
/// recipe ([`SampleSpec::run`], the firmware's bits), handed to `each(i, sample)` one at a time (nothing kept),
/// with a progress bar.
pub fn sample_each(
    model: &Model<'_>,
    recipe: SampleSpec,
    n: u64,
    label: &str,
    mut each: impl FnMut(u64, &[f32]) -> Result<()>,
) -> Result<()> {
    limits::check_samples(n)?;
    let mut sigmas = vec![0.0f32; recipe.steps as usize + 1];
    let mut scratch = vec![0.0f32; SampleSpec::scratch_len(model)];
    let mut x = vec![0.0f32; model.dim()];
    let pb = util::progress(n, label);
    for i in 0..n {
        recipe
            .nth(i)
            .run(model, &EdmSchedule::EDM, &mut sigmas, &mut x, &mut scratch, |_, _| {})
            .map_err(|e| anyhow!("{e}"))?;
        each(i, &x)?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(())
}

/// [`sample_each`] collected (for callers that need every sample at once; `n` is theirs to bound).
pub fn sample_many(model: &Model<'_>, recipe: SampleSpec, n: u64, label: &str) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::new();
    sample_each(model, recipe, n, label, |_, x| {
        out.push(x.to_vec());
        Ok(())
    })?;
    Ok(out)
}

pub fn run(args: &SampleArgs) -> Result<()> {
    let inputs: Vec<&Path> = std::iter::once(args.blob.as_path()).chain(args.nearest.as_deref()).collect();
    util::check_output(&args.output, &inputs)?;
    limits::check_samples(args.n)?;
    limits::check_steps("--steps", args.steps)?;
    let bytes = util::read_blob_file(&args.blob)?;
    let blob = util::parse_blob(&args.blob, &bytes)?;
    let model = blob.model().map_err(|e| anyhow!("{}: {e}", args.blob.display()))?;
    let recipe =
        spec(&model, args.sampler, args.steps, args.seed).with_context(|| format!("{}", args.blob.display()))?;
    let shape = blob.shape();
    let map = blob.pixel_map();
    let ds = match &args.nearest {
        Some(path) => {
            // The training set of the fit: the blob records how its data was prepared (resize, grayscale,
            // limit, hold-out and their seed), and the same preparation leaves out the held-out images.
            let prep = LoadOptions::from_metadata(blob.metadata().iter())
                .map_err(|e| anyhow!("{}: {e}", args.blob.display()))?;
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
            Some(ds)
        }
        None => None,
    };
    // One row of --n samples per model: the blob's model, or the mixture components --class names.
    let rows: Vec<(Model<'_>, String, Option<usize>)> = match &args.class {
        None => vec![(model, args.sampler.name().to_string(), None)],
        Some(class) => classes(&blob, &model, class)?
            .into_iter()
            .map(|j| {
                let m = model.component(j).ok_or_else(|| anyhow!("--class {class}: no component {j}"))?;
                let label = blob.component_label(j).map_or(format!("class {j}"), |l| format!("class {l}"));
                Ok((m, label, Some(j)))
            })
            .collect::<Result<_>>()?,
    };
    let n_total = args.n.saturating_mul(rows.len() as u64);
    limits::check_samples(n_total)?;
    let cols = if rows.len() > 1 { args.n as usize } else { args.cols };
    let per = if ds.is_some() { 2 } else { 1 };
    // Checked (size limits) and allocated before any sample is drawn; samples are painted as they come.
    let mut grid = util::Grid::new(shape, n_total * per, cols.saturating_mul(per as usize), args.scale)?;
    let raw_dir = match &args.raw {
        Some(raw) => Some((raw, gaussdiff_fit::io::OutputDir::create(raw, false).with_context(|| "--raw")?)),
        None => None,
    };
    let mut total = 0.0f64;
    for (r, (m, label, class)) in rows.iter().enumerate() {
        let first = r as u64 * args.n;
        sample_each(m, recipe, args.n, label, |i, s| {
            let t = first + i;
            let px = util::to_pixels(&map, s);
            grid.put(t * per, &px);
            if let Some(ds) = &ds {
                let (idx, dist) = util::nearest(&ds.images, ds.dim(), s);
                total += f64::from(dist);
                grid.put(t * per + 1, &util::to_pixels(&ds.pixel, ds.image(idx)));
            }
            if let Some((_, dir)) = &raw_dir {
                let name = match class {
                    Some(j) => format!("sample_c{j}_{:05}.png", args.seed.wrapping_add(i)),
                    None => format!("sample_{:05}.png", args.seed.wrapping_add(i)),
                };
                util::write_atomic(&dir.file(&name)?, &util::image_png(&px, shape)?)?;
            }
            Ok(())
        })?;
    }
    let mut report = String::new();
    if let Some(ds) = &ds {
        report.push_str(&format!(
            "mean distance to the nearest training image: {:.4} (model space, d = {})\n",
            total / n_total as f64,
            ds.dim()
        ));
    }
    util::write_atomic(&args.output, &grid.png()?)?;
    if let Some((raw, dir)) = raw_dir {
        dir.keep().with_context(|| format!("--raw {}", raw.display()))?;
    }
    report.push_str(&format!(
        "wrote {} ({} samples, {} sampler{})\n",
        args.output.display(),
        n_total,
        args.sampler.name(),
        if args.sampler == Sampler::Exact { String::new() } else { format!(", {} steps", args.steps) }
    ));
    util::write_stdout(&report)
}
