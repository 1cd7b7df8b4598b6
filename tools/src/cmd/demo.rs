//! `gaussdiff demo`: the main job. On the datasets in `data/`: fit the Gaussian, export a blob, sample with
//! the exact and the Heun sampler from the same noise, and write a gallery plus a Markdown report.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use gaussdiff_core::pixel::ImageShape;
use gaussdiff_core::sampler::Sampler;
use gaussdiff_core::tensor::DType;
use gaussdiff_fit::dataset::{Dataset, LoadOptions};
use gaussdiff_fit::figure::{Block, Figure, Row as GridRow};
use gaussdiff_fit::gaussian::{FitOptions, Floor, Rank};
use gaussdiff_fit::io::OutputDir;

use super::export::{self, parse_dtype};
use super::inspect;
use super::sample;
use crate::{limits, util};

/// Arguments of `gaussdiff demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Directory holding the shipped datasets (mnist/, sklearn_digits/, frey_faces/).
    #[arg(long, default_value = "data", value_name = "DIR")]
    pub data: PathBuf,
    /// Output directory (created with any missing parents, as the default `out/demo` needs on a fresh
    /// checkout). A failed run leaves nothing behind: what it created is removed, and in an existing
    /// directory its files are staged and moved into place only when the run succeeds.
    #[arg(short, long, default_value = "out/demo", value_name = "DIR")]
    pub out: PathBuf,
    /// Samples per dataset and sampler (at least 1; the gallery rows must fit a 16,384-pixel PNG).
    #[arg(long, default_value_t = 16)]
    pub n: u64,
    /// Heun steps (1 to 10,000).
    #[arg(long, default_value_t = 18)]
    pub steps: usize,
    /// Seed of the noise (sample i uses seed + i) and of the hold-out split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Storage type of the blobs.
    #[arg(long, default_value = "f16", value_parser = parse_dtype)]
    pub dtype: DType,
    /// Held-out images per dataset (the nearest-neighbour baseline).
    #[arg(long, default_value_t = 100)]
    pub hold_out: usize,
    /// Quick mode for tests: 4 samples, MNIST limited to 2000 training images.
    #[arg(long)]
    pub quick: bool,
}

struct Job {
    name: &'static str,
    file: &'static str,
    rank: Rank,
    floor: Floor,
    limit_quick: Option<usize>,
}

const JOBS: [Job; 3] = [
    Job {
        name: "digits",
        file: "sklearn_digits/digits.csv.gz",
        rank: Rank::Variance(0.99),
        floor: Floor::Auto,
        limit_quick: None,
    },
    Job {
        name: "mnist",
        file: "mnist/t10k-images-idx3-ubyte.gz",
        rank: Rank::Fixed(64),
        floor: Floor::None,
        limit_quick: Some(2000),
    },
    Job {
        name: "frey",
        file: "frey_faces/frey_rawface.mat",
        rank: Rank::Fixed(40),
        floor: Floor::None,
        limit_quick: None,
    },
];

/// Figures of one dataset for the report.
struct Row {
    name: &'static str,
    n_train: usize,
    shape: ImageShape,
    summary: export::Summary,
    costs: inspect::Costs,
    nn_exact: f64,
    nn_heun: f64,
    nn_held_out: f64,
    min_nn_exact: f64,
    heun_vs_exact_rms: f64,
    seconds: f64,
    /// The dataset's block of the gallery.
    block: Block,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let n = if args.quick { args.n.min(4) } else { args.n };
    // Every option is checked before anything is written.
    limits::check_samples(args.n)?;
    limits::check_steps("--steps", args.steps)?;
    // The galleries (3 rows of n tiles per dataset; 10 class rows) must fit: sized before anything runs.
    let dry = |shape: ImageShape, rows: usize| Block {
        label: "x".repeat(60),
        shape,
        zoom: zoom_for(shape),
        rows: vec![GridRow::new(ROW_LABELS[2], vec![Vec::new(); n as usize]); rows],
    };
    let shapes = [(8u16, 8u16), (28, 28), (28, 20)].map(|(h, w)| ImageShape { channels: 1, height: h, width: w });
    Figure { title: GALLERY_TITLE.into(), blocks: shapes.iter().map(|&s| dry(s, 3)).collect() }
        .size()
        .with_context(|| format!("--n {n}"))?;
    Figure { title: String::new(), blocks: vec![dry(shapes[1], 10)] }.size().with_context(|| format!("--n {n}"))?;
    let out_dir = OutputDir::create(&args.out, true).with_context(|| format!("--out {}", args.out.display()))?;
    let overall = util::progress(JOBS.len() as u64, "demo");
    let mut rows = Vec::new();
    for job in &JOBS {
        overall.set_message(job.name);
        rows.push(run_job(args, &out_dir, job, n).with_context(|| format!("demo: dataset {}", job.name))?);
        overall.inc(1);
    }
    overall.finish_and_clear();
    overall.set_message("mnist classes");
    let classes = run_classes(args, &out_dir, n).context("demo: class-conditional MNIST")?;
    let gallery = Figure { title: GALLERY_TITLE.into(), blocks: rows.iter().map(|r| r.block.clone()).collect() }
        .png()
        .context("demo: the gallery")?;
    util::write_atomic(&out_dir.file("gallery.png")?, &gallery)?;
    let mut report = report(args, n, &rows);
    report.push_str(&classes);
    util::write_atomic(&out_dir.file("report.md")?, report.as_bytes())?;
    out_dir.keep().with_context(|| format!("--out {}", args.out.display()))?;
    util::write_stdout(&format!(
        "{report}\nwrote {}\nwrote {}\n",
        args.out.join("report.md").display(),
        args.out.join("gallery.png").display()
    ))?;
    Ok(())
}

fn run_job(args: &DemoArgs, out: &OutputDir, job: &Job, n: u64) -> Result<Row> {
    let start = Instant::now();
    let path = args.data.join(job.file);
    let opts = LoadOptions {
        hold_out: args.hold_out,
        seed: args.seed,
        limit: if args.quick { job.limit_quick } else { None },
        ..LoadOptions::default()
    };
    let ds: Dataset = util::load_dataset(&path, &opts)?;
    let (bytes, fit, summary) =
        export::gaussian_blob(&ds, &opts, &FitOptions { rank: job.rank, floor: job.floor }, args.dtype)?;
    let blob_path = args.out.join(format!("{}.gdn", job.name));
    util::write_atomic(&out.file(&format!("{}.gdn", job.name))?, &bytes)?;
    let blob = util::parse_blob(&blob_path, &bytes)?;
    let model = blob.model().map_err(|e| anyhow!("{}: {e}", blob_path.display()))?;
    let costs = inspect::costs(&blob, args.steps)?;
    let recipe = |sampler| sample::spec(&model, sampler, args.steps, args.seed);
    let exact = sample::sample_many(&model, recipe(Sampler::Exact)?, n, &format!("{} exact", job.name))?;
    let heun = sample::sample_many(&model, recipe(Sampler::Heun)?, n, &format!("{} heun", job.name))?;
    let d = ds.dim();
    let nn = |s: &Vec<f32>| util::nearest(&ds.images, d, s);
    let nn_exact: Vec<(usize, f32)> = exact.iter().map(nn).collect();
    let nn_heun: Vec<f64> = heun.iter().map(|s| f64::from(nn(s).1)).collect();
    let nn_held: Vec<f64> =
        (0..ds.held_out_len()).map(|i| f64::from(util::nearest(&ds.images, d, ds.held_out_image(i)).1)).collect();
    let rms: Vec<f64> =
        exact.iter().zip(&heun).map(|(a, b)| (f64::from(util::dist_sq(a, b)) / d as f64).sqrt()).collect();
    // Gallery block: row of exact samples, row of Heun samples (same noise), row of the exact samples'
    // nearest training images.
    let map = blob.pixel_map();
    let block = Block {
        label: format!(
            "{}: N = {} training images, {}x{} pixels, rank {}",
            job.name, fit.n, ds.shape.height, ds.shape.width, summary.rank
        ),
        shape: ds.shape,
        zoom: zoom_for(ds.shape),
        rows: vec![
            GridRow::new(ROW_LABELS[0], exact.iter().map(|s| util::to_pixels(&map, s)).collect()),
            GridRow::new(
                format!("{}{}", ROW_LABELS[1], args.steps),
                heun.iter().map(|s| util::to_pixels(&map, s)).collect(),
            ),
            GridRow::new(
                ROW_LABELS[2],
                nn_exact.iter().map(|&(i, _)| util::to_pixels(&ds.pixel, ds.image(i))).collect(),
            ),
        ],
    };
    let png = Figure { title: GALLERY_TITLE.into(), blocks: vec![block.clone()] }
        .png()
        .with_context(|| format!("the {} gallery", job.name))?;
    let gallery = format!("{}.png", job.name);
    util::write_atomic(&out.file(&gallery)?, &png)?;
    let exact_d: Vec<f64> = nn_exact.iter().map(|&(_, v)| f64::from(v)).collect();
    Ok(Row {
        name: job.name,
        n_train: fit.n,
        shape: ds.shape,
        summary,
        costs,
        nn_exact: mean(&exact_d),
        nn_heun: mean(&nn_heun),
        nn_held_out: mean(&nn_held),
        min_nn_exact: exact_d.iter().copied().fold(f64::INFINITY, f64::min),
        heun_vs_exact_rms: mean(&rms),
        seconds: start.elapsed().as_secs_f64(),
        block,
    })
}

/// The class-conditional MNIST block: a mixture of 10 rank-32 Gaussians (one per label, floor = mean of the
/// discarded eigenvalues, fitted on 5,000 training images) and one row per class: a label tile, then `n` exact samples of that class
/// (`gaussdiff sample --class all`'s recipe). Writes `mnist_mixture.gdn` and `mnist_classes.png`; returns
/// the report's section.
fn run_classes(args: &DemoArgs, out: &OutputDir, n: u64) -> Result<String> {
    let start = Instant::now();
    let path = args.data.join("mnist/t10k-images-idx3-ubyte.gz");
    let opts = LoadOptions {
        hold_out: args.hold_out,
        seed: args.seed,
        // 5,000 training images keep the block at a few seconds (rank 32 needs far fewer per class).
        limit: Some(if args.quick { 2000 } else { 5000 }),
        ..LoadOptions::default()
    };
    let ds: Dataset = util::load_dataset(&path, &opts)?;
    let fit_opts = FitOptions { rank: Rank::Fixed(32), floor: Floor::Auto };
    let (bytes, m, summary) =
        export::mixture_blob(&ds, export::MixtureArg::Labels, &fit_opts, args.dtype, args.seed, 0)?;
    let blob_path = args.out.join("mnist_mixture.gdn");
    util::write_atomic(&out.file("mnist_mixture.gdn")?, &bytes)?;
    let blob = util::parse_blob(&blob_path, &bytes)?;
    let model = blob.model().map_err(|e| anyhow!("{}: {e}", blob_path.display()))?;
    let map = blob.pixel_map();
    let k = model.components();
    let mut rows = Vec::new();
    for j in 0..k {
        let label = blob.component_label(j).map_or_else(|| j.to_string(), str::to_string);
        let comp = model.component(j).ok_or_else(|| anyhow!("no component {j}"))?;
        let recipe = sample::spec(&comp, Sampler::Exact, args.steps, args.seed)?;
        let s = sample::sample_many(&comp, recipe, n, &format!("mnist class {label}"))?;
        rows.push(GridRow::new(format!("class {label}"), s.iter().map(|x| util::to_pixels(&map, x)).collect()));
    }
    let png = Figure {
        title: "MNIST: exact samples of each class's Gaussian".into(),
        blocks: vec![Block {
            label: format!("mixture of {k} rank-{} Gaussians, N = {} training images", m.rank(), summary.n_train),
            shape: ds.shape,
            zoom: 2,
            rows,
        }],
    }
    .png()
    .context("the class gallery")?;
    util::write_atomic(&out.file("mnist_classes.png")?, &png)?;
    let mut s = String::new();
    let _ = writeln!(s, "\n## Class-conditional MNIST (mixture of low-rank Gaussians)\n");
    let _ = writeln!(
        s,
        "One Gaussian per label ({k} components, rank {}, floor c = mean of the discarded eigenvalues, {} training \
         images, {} bytes as {}; `gaussdiff export --mixture labels --rank 32 --floor auto --limit 5000`). Each row: the class \
         label, then {n} exact samples of that class (`gaussdiff sample --class all`); {:.1} s.\n",
        m.rank(),
        summary.n_train,
        summary.bytes,
        args.dtype.name(),
        start.elapsed().as_secs_f64()
    );
    let _ = writeln!(s, "![class-conditional MNIST](mnist_classes.png)");
    Ok(s)
}

/// Title of the gallery and of each dataset's figure.
const GALLERY_TITLE: &str = "Gaussian denoisers: samples from the same noise (one seed per column)";

/// Row labels of a dataset's block (the Heun row gets its step count appended).
const ROW_LABELS: [&str; 3] = ["exact", "Heun-", "nearest training image"];

/// Zoom of a dataset's tiles: 56 pixels high, at least 2x.
fn zoom_for(shape: ImageShape) -> u32 {
    (56 / u32::from(shape.height).max(1)).max(2)
}

fn report(args: &DemoArgs, n: u64, rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# gaussdiff demo\n");
    let _ = writeln!(
        s,
        "Gaussian denoisers fitted on the datasets in `{}`; {} samples each from the exact probability-flow solution \
         and from Heun-{} (EDM schedule, {} evaluations), started from the same noise (sample i: `Rng::new({} + i)`). \
         Blobs stored as {}. Distances are Euclidean in model space ([-1, 1] pixels).{}\n",
        args.data.display(),
        n,
        args.steps,
        2 * args.steps.max(1) - 1,
        args.seed,
        args.dtype.name(),
        if args.quick { " **Quick mode** (fewer samples, MNIST limited to 2000 training images)." } else { "" }
    );
    let _ = writeln!(s, "![gallery](gallery.png)\n");
    let _ = writeln!(s, "Each block (labelled with its dataset): exact samples (top row), Heun samples from the same noise (middle), nearest training image of each exact sample (bottom).\n");
    let _ = writeln!(s, "| dataset | shape | n train | rank k | floor c | explained variance | blob bytes | MACs/eval | MACs/sample exact | MACs/sample Heun-{} | RAM bytes (Heun) |", args.steps);
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {}x{}x{} | {} | {} | {:.4e} | {:.4} | {} | {} | {} | {} | {} |",
            r.name,
            r.shape.channels,
            r.shape.height,
            r.shape.width,
            r.n_train,
            r.summary.rank,
            r.summary.floor,
            r.summary.explained_variance.unwrap_or(f64::NAN),
            r.summary.bytes,
            r.costs.macs_per_eval,
            r.costs.macs_exact.unwrap_or(0),
            r.costs.macs_heun,
            r.costs.ram_ode_bytes
        );
    }
    let _ = writeln!(s, "\n## Nearest-neighbour distances\n");
    let _ = writeln!(s, "A sample that copied a training image would sit at distance ~0. Held-out images (real images not in the fit) give the scale of a genuinely new image.\n");
    let _ = writeln!(s, "| dataset | mean NN dist, exact | min NN dist, exact | mean NN dist, Heun | mean NN dist, held-out images | RMS per pixel, Heun vs exact | seconds |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2e} | {:.1} |",
            r.name, r.nn_exact, r.min_nn_exact, r.nn_heun, r.nn_held_out, r.heun_vs_exact_rms, r.seconds
        );
    }
    let _ = writeln!(s, "\n## Quantisation\n");
    for r in rows {
        for (name, dtype, e) in &r.summary.quant_errors {
            let _ =
                writeln!(s, "- {} `{}` stored as {}: relative Frobenius error {:.3e}", r.name, name, dtype.name(), e);
        }
    }
    let _ =
        writeln!(s, "\nBlobs: {}.", rows.iter().map(|r| format!("`{}.gdn`", r.name)).collect::<Vec<_>>().join(", "));
    s
}
