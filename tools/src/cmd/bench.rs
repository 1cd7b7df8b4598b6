//! Hidden benchmark helpers driven by `bench/*.py`, which run NumPy on the same data in the same script.
//! They print `key=value` lines; every time is the minimum over `--repeat` runs (wall clock).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Result};
use faer::Mat;
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::sampler::{self, initial_noise, SampleSpec, Sampler};
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_fit::dataset::LoadOptions;
use gaussdiff_fit::gaussian::{self as fit, FitOptions, Floor, Rank};

use crate::batch::BatchGaussian;
use crate::util;

/// Arguments of `gaussdiff bench-fit`.
#[derive(clap::Args, Debug)]
pub struct BenchFitArgs {
    /// Dataset (default: the shipped MNIST test set).
    #[arg(long, default_value = "data/mnist/t10k-images-idx3-ubyte.gz")]
    pub dataset: PathBuf,
    /// Repetitions (the minimum is reported).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Time only the export's fit at this fixed rank (`--floor auto`), and say which method it chose.
    #[arg(long, conflicts_with = "variance")]
    pub rank: Option<usize>,
    /// Time only the export's fit at this variance fraction (`--floor auto`), and say which method it chose.
    #[arg(long)]
    pub variance: Option<f64>,
}

/// Arguments of `gaussdiff bench-sample`.
#[derive(clap::Args, Debug)]
pub struct BenchSampleArgs {
    /// A Gaussian blob.
    pub blob: PathBuf,
    /// Samples per measurement for the batched path.
    #[arg(long, default_value_t = 4096)]
    pub n: usize,
    /// Samples per measurement for the per-sample core path.
    #[arg(long, default_value_t = 512)]
    pub n_core: usize,
    /// Columns per batched product.
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// Heun/Euler steps.
    #[arg(long, default_value_t = 18)]
    pub steps: usize,
    /// Threads for the batched path (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Repetitions (the minimum is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

fn min_time(repeat: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

pub fn run_fit(args: &BenchFitArgs) -> Result<()> {
    let t_load = Instant::now();
    let ds = util::load_dataset(&args.dataset, &LoadOptions::default())?;
    let t_load = t_load.elapsed().as_secs_f64();
    let d = ds.dim();
    let rank = match (args.rank, args.variance) {
        (Some(k), _) => Some(Rank::Fixed(k)),
        (None, Some(f)) => Some(Rank::Variance(f)),
        (None, None) => None,
    };
    if let Some(rank) = rank {
        let opts = FitOptions { rank, floor: Floor::Auto };
        let mut method = None;
        let t_fit = min_time(args.repeat, || {
            let g = fit::fit(&ds.images, d, &opts).map_err(|e| anyhow!("{e}"))?;
            method = Some((g.method, g.rank));
            Ok(())
        })?;
        let (method, k) = method.ok_or_else(|| anyhow!("no run"))?;
        println!("n={} d={d} k={k}", ds.len());
        println!("method={}", method.describe().replace(' ', "_"));
        println!("load_s={t_load:.6}");
        println!("fit_s={t_fit:.6}");
        return Ok(());
    }
    // The parts (moments, covariance, eigendecomposition) timed in one pass; the pass with the smallest
    // sum is reported, so the printed parts add up to `parts_total_s` exactly.
    let mut best = [f64::INFINITY; 3];
    for _ in 0..args.repeat.max(1) {
        let t0 = Instant::now();
        let m = fit::moments(&ds.images, d).map_err(|e| anyhow!("{e}"))?;
        let t1 = Instant::now();
        let cov = m.covariance().map_err(|e| anyhow!("{e}"))?;
        let t2 = Instant::now();
        fit::eigh_descending(cov.as_ref()).map_err(|e| anyhow!("{e}"))?;
        let parts = [t1 - t0, t2 - t1, t2.elapsed()].map(|t| t.as_secs_f64());
        if parts.iter().sum::<f64>() < best.iter().sum::<f64>() {
            best = parts;
        }
    }
    let [t_moments, t_cov, t_eigh] = best;
    let opts = FitOptions { rank: Rank::Full, floor: Floor::None };
    let t_fit = min_time(args.repeat, || {
        fit::fit(&ds.images, d, &opts).map_err(|e| anyhow!("{e}"))?;
        Ok(())
    })?;
    // The README's export setting (`--rank 64 --floor auto`): the partial eigensolver.
    let opts = FitOptions { rank: Rank::Fixed(64.min(d)), floor: Floor::Auto };
    let t_fit64 = min_time(args.repeat, || {
        fit::fit(&ds.images, d, &opts).map_err(|e| anyhow!("{e}"))?;
        Ok(())
    })?;
    println!("n={} d={d}", ds.len());
    println!("moments_s={t_moments:.6}");
    println!("covariance_s={t_cov:.6}");
    println!("eigh_s={t_eigh:.6}");
    println!("parts_total_s={:.6}", t_moments + t_cov + t_eigh);
    // `fit::fit` end to end, its own best run (also sorts and packs the eigenpairs).
    println!("fit_s={t_fit:.6}");
    println!("fit_rank64_s={t_fit64:.6}");
    Ok(())
}

pub fn run_sample(args: &BenchSampleArgs) -> Result<()> {
    let bytes = util::read_file(&args.blob, "blob")?;
    let blob = util::parse_blob(&args.blob, &bytes)?;
    let model = blob.model().map_err(|e| anyhow!("{e}"))?;
    let g = model.as_gaussian().ok_or_else(|| anyhow!("{}: expected a Gaussian blob", args.blob.display()))?;
    let d = model.dim();
    let sigma_max = EdmSchedule::EDM.sigma_max;
    let mut sigmas = vec![0.0f32; args.steps + 1];
    EdmSchedule::EDM.fill(args.steps, &mut sigmas);
    println!("d={d} k={} steps={} batch={} n={} n_core={}", g.rank(), args.steps, args.batch, args.n, args.n_core);

    // Noise is drawn once, outside the timings (the NumPy baseline does the same).
    let noise: Vec<Vec<f32>> = (0..args.n.max(args.n_core) as u64)
        .map(|i| {
            let mut x = vec![0.0f32; d];
            initial_noise(0, i, sigma_max, &mut x);
            x
        })
        .collect();

    // Per-sample core path (one thread): the recipe's sampler calls on the noise drawn above, outside the timings.
    let mut scratch = vec![0.0f32; SampleSpec::scratch_len(&model)];
    let mut x = vec![0.0f32; d];
    for (name, solver) in [("core_exact", None), ("core_heun", Some(Sampler::Heun))] {
        let n = if solver.is_none() { args.n.max(args.n_core) } else { args.n_core };
        let t = min_time(args.repeat, || {
            for z in &noise[..n] {
                x.copy_from_slice(z);
                match solver {
                    None => {
                        sampler::sample_exact(g, sigma_max, &mut x, &mut scratch);
                    }
                    Some(s) => {
                        sampler::sample(&model, s, &sigmas, None, &mut x, &mut scratch, |_, _| {});
                    }
                }
            }
            Ok(())
        })?;
        println!("{name}_per_s={:.1}", n as f64 / t);
    }

    // Batched host path.
    let bg = BatchGaussian::new(g, args.threads);
    let batches: Vec<Mat<f32>> =
        noise[..args.n].chunks(args.batch.max(1)).map(|c| Mat::from_fn(d, c.len(), |i, j| c[j][i])).collect();
    for (name, heun) in [("batch_exact", false), ("batch_heun", true)] {
        let t = min_time(args.repeat, || {
            for b in &batches {
                let mut x = b.clone();
                if heun {
                    bg.sample_ode(&mut x, &sigmas, Sampler::Heun);
                } else {
                    bg.sample_exact(&mut x, sigma_max);
                }
            }
            Ok(())
        })?;
        println!("{name}_per_s={:.1}", args.n as f64 / t);
    }
    Ok(())
}
