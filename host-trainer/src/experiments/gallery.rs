//! Experiment 5 -- Gaussian samples are plausible images.
//!
//! For sklearn digits, MNIST and Frey faces: fit the full-rank Gaussian of all images (core's `fit`),
//! write it as an f32 blob with core's writer, parse it back, and draw samples through the same
//! [`SampleSpec::run`] the firmware runs (seed `s` -> noise `Rng::new(s)`, x_T = 80 z): the exact
//! closed-form sampler and Heun with 18 steps. With `--capture`, frames decoded from a firmware run
//! (QEMU semihosting output, `docs/frame-protocol.md`) with the same seed, sampler and shape are shown too.
//! Each sample is shown beside its nearest training image (Euclidean, model space).
//!
//! Rank sweep (MNIST): ranks k = 8, 16, 32, 64 with floor c = mean of the discarded eigenvalues, and full
//! rank; the same seeds through the exact sampler, with the blob's size (f32 and f16) and multiply-adds.

use anyhow::{Context, Result};
use candle_core::Device;
use gaussdiff_core::blob::Blob;
use gaussdiff_core::denoiser::Denoiser;
use gaussdiff_core::frame::{self, Item};
use gaussdiff_core::sampler::{SampleSpec, Sampler};
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_core::tensor::DType;
use gaussdiff_fit::export::{self, Provenance};
use gaussdiff_fit::gaussian::{self as fit, FitOptions, Floor, Rank};
use serde::Serialize;
use std::path::Path;

use super::common::{load_core, write_csv, write_summary};
use super::{ExperimentArgs, Setting};
use crate::measures;
use crate::plot::{labelled_grid, rows_of};
use crate::plot::{xy_plot, Axes, Series};
use crate::training_gaussian::TOOL;
use gaussdiff_fit::nearest::nearest_rows;

/// Heun steps of the gallery (35 evaluations).
pub const HEUN_STEPS: u32 = 18;

#[derive(Serialize)]
struct GalleryRow {
    dataset: String,
    d: usize,
    n_train: usize,
    samples: usize,
    blob_bytes_f32: usize,
    blob_bytes_f16: usize,
    macs_per_eval: u64,
    macs_exact: u64,
    macs_heun18: u64,
    evals_heun18: u32,
    rmse_exact_vs_heun18: f64,
    firmware_frames: usize,
    rmse_exact_vs_firmware: Option<f64>,
    nn_distance_median: f64,
    memorised_fraction: f64,
    grid: String,
    grid_rows: Vec<String>,
}

#[derive(Serialize)]
struct RankRow {
    rank: usize,
    floor_c: f64,
    explained_variance: f64,
    blob_bytes_f32: usize,
    blob_bytes_f16: usize,
    macs_exact: u64,
    rmse_vs_full_rank: f64,
}

#[derive(Serialize)]
struct Summary {
    experiment: &'static str,
    setting: Setting,
    capture: Option<String>,
    capture_note: String,
    gallery: Vec<GalleryRow>,
    rank_sweep_dataset: String,
    rank_sweep: Vec<RankRow>,
    rank_sweep_grid: String,
}

fn blob_bytes(g: &fit::GaussianFit, ds: &gaussdiff_fit::dataset::Dataset, dtype: DType) -> Result<Vec<u8>> {
    let provenance = Provenance::new(ds.name.clone(), g.n, TOOL);
    let (bytes, _) = export::gaussian_blob(g, ds.shape, dtype, ds.pixel, &provenance)
        .map_err(|e| anyhow::anyhow!("writing the {} blob: {e}", ds.name))?;
    Ok(bytes)
}

/// Samples `seeds` of `spec` (seed replaced) from a blob; returns them row-major and the evaluations per sample.
fn run_spec(bytes: &[u8], sampler: Sampler, steps: u32, seeds: std::ops::Range<u64>) -> Result<(Vec<f32>, u32, u64)> {
    let blob = Blob::parse(bytes).map_err(|e| anyhow::anyhow!("parsing the blob just written: {e}"))?;
    let model = blob.model().map_err(|e| anyhow::anyhow!("blob model: {e}"))?;
    let d = model.dim();
    let mut out = Vec::new();
    let mut evals = 0;
    let mut scratch = vec![0.0f32; SampleSpec::scratch_len(&model)];
    let mut sigmas = vec![0.0f32; steps as usize + 1];
    for seed in seeds {
        let mut x = vec![0.0f32; d];
        let spec = SampleSpec { sampler, steps, seed };
        evals = spec
            .run(&model, &EdmSchedule::EDM, &mut sigmas, &mut x, &mut scratch, |_, _| {})
            .map_err(|e| anyhow::anyhow!("sampling: {e}"))?;
        out.extend_from_slice(&x);
    }
    Ok((out, evals, model.macs_per_eval()))
}

fn rmse(a: &[f32], b: &[f32]) -> f64 {
    measures::mse(a, b).sqrt()
}

/// Firmware frames for `name`'s shape, keyed by (sampler, steps, seed), as model-space values.
fn capture_frames(text: &str, ds: &gaussdiff_fit::dataset::Dataset) -> Vec<(SampleSpec, Vec<f32>)> {
    frame::decode(text)
        .into_iter()
        .filter_map(|r| match r {
            Ok(Item::Frame(f)) if f.shape == ds.shape => {
                let v =
                    f.values.clone().unwrap_or_else(|| f.pixels.iter().map(|&p| ds.pixel.to_value(p as f32)).collect());
                Some((f.spec, v))
            }
            _ => None,
        })
        .collect()
}

fn zoom_for(d: usize) -> u32 {
    if d <= 64 {
        6
    } else {
        2
    }
}

/// Run experiment 5.
pub fn run(a: &ExperimentArgs, _device: &Device, progress: bool) -> Result<()> {
    let setting = a.setting();
    let n_samples: u64 = if setting == Setting::Quick { 6 } else { 12 };
    let capture_text = match &a.capture {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading the firmware capture {}", p.display()))?)
        }
        None => None,
    };
    let mut capture_note = match &a.capture {
        Some(p) => format!("firmware frames read from {}", p.display()),
        None => "no --capture given: the firmware row is left out (run the firmware under QEMU and pass its output with --capture)".into(),
    };
    let mut rows = Vec::new();
    let sets: [(&Path, &str); 3] = [(&a.digits, "digits"), (&a.mnist, "mnist"), (&a.frey, "frey")];
    for (path, label) in sets {
        rows.push(gallery_row(a, path, label, n_samples, capture_text.as_deref())?);
    }
    if capture_text.is_some() && rows.iter().all(|r| r.firmware_frames == 0) {
        capture_note.push_str(" (no frame matched any dataset's shape)");
    }
    let (ds, sweep, grid) = rank_sweep(a, n_samples)?;
    report(a, setting, n_samples, &ds, (rows, capture_note), (sweep, grid), progress)
}

/// Setup and measures of one gallery dataset: fit, blobs, exact and Heun samples through core's recipe,
/// the firmware frames of `capture_text`, nearest training images; writes the dataset's blob and grid.
fn gallery_row(
    a: &ExperimentArgs,
    path: &Path,
    label: &str,
    n_samples: u64,
    capture_text: Option<&str>,
) -> Result<GalleryRow> {
    let ds = load_core(path, 0, a.seed)?;
    let d = ds.dim();
    let g = fit::fit(&ds.images, d, &FitOptions { rank: Rank::Full, floor: Floor::None })
        .map_err(|e| anyhow::anyhow!("fitting {}: {e}", ds.name))?;
    let b32 = blob_bytes(&g, &ds, DType::F32)?;
    let b16 = blob_bytes(&g, &ds, DType::F16)?;
    gaussdiff_fit::io::write_atomic(&a.out.join(format!("{label}.gdn")), &b32)?;
    let seeds = a.seed..a.seed + n_samples;
    let (exact, evals_exact, macs) = run_spec(&b32, Sampler::Exact, 0, seeds.clone())?;
    let (heun, evals_heun, _) = run_spec(&b32, Sampler::Heun, HEUN_STEPS, seeds.clone())?;
    let mut grid = exact.clone();
    let mut grid_rows = vec!["exact".to_string(), format!("heun-{HEUN_STEPS}")];
    grid.extend_from_slice(&heun);
    let mut fw_rmse = None;
    let mut fw_frames = 0;
    if let Some(text) = capture_text {
        let frames = capture_frames(text, &ds);
        fw_frames = frames.len();
        let mut fw = Vec::new();
        let mut host = Vec::new();
        for (i, seed) in seeds.clone().enumerate() {
            let hit = frames
                .iter()
                .find(|(s, _)| s.seed == seed && s.sampler == Sampler::Heun && s.steps == HEUN_STEPS)
                .or_else(|| frames.iter().find(|(s, _)| s.seed == seed && s.sampler == Sampler::Exact));
            match hit {
                Some((s, v)) => {
                    fw.extend_from_slice(v);
                    host.extend_from_slice(if s.sampler == Sampler::Exact {
                        &exact[i * d..(i + 1) * d]
                    } else {
                        &heun[i * d..(i + 1) * d]
                    });
                }
                None => fw.extend(std::iter::repeat_n(-1.0f32, d)),
            }
        }
        if !host.is_empty() {
            fw_rmse = Some(rmse(&fw[..host.len()], &host));
            grid.extend_from_slice(&fw);
            grid_rows.push("firmware (QEMU)".into());
        }
    }
    let nn: Vec<(usize, f64)> =
        nearest_rows(&ds.images, d, &exact).iter().map(|n| (n.index, n.distances().0)).collect();
    for &(i, _) in &nn {
        grid.extend_from_slice(ds.image(i));
    }
    grid_rows.push("nearest training image".into());
    let grid_name = format!("gallery_{label}.png");
    let cols = n_samples as usize;
    labelled_grid(
        &a.out.join(&grid_name),
        &format!("{label}: full-rank Gaussian, one noise seed per column"),
        &[(
            format!("{label}, N = {} training images, {}x{} pixels", ds.len(), ds.shape.height, ds.shape.width),
            rows_of(&grid, d, cols, |i| grid_rows.get(i).cloned().unwrap_or_default()),
        )],
        ds.shape,
        ds.pixel,
        cols,
        zoom_for(d),
    )?;
    let nn2 = measures::nearest_two(&exact, &ds.images, d);
    let mut dists: Vec<f64> = nn.iter().map(|p| p.1).collect();
    dists.sort_by(f64::total_cmp);
    Ok(GalleryRow {
        dataset: ds.name.clone(),
        d,
        n_train: ds.len(),
        samples: n_samples as usize,
        blob_bytes_f32: b32.len(),
        blob_bytes_f16: b16.len(),
        macs_per_eval: macs,
        macs_exact: macs * evals_exact as u64,
        macs_heun18: macs * evals_heun as u64,
        evals_heun18: evals_heun,
        rmse_exact_vs_heun18: rmse(&exact, &heun),
        firmware_frames: fw_frames,
        rmse_exact_vs_firmware: fw_rmse,
        nn_distance_median: dists[dists.len() / 2],
        memorised_fraction: measures::memorisation_fraction(&nn2),
        grid: grid_name,
        grid_rows,
    })
}

/// The MNIST rank sweep: exact samples of the same seeds for ranks 8 .. 64 and full rank. Returns the
/// dataset, the rows and the sample grid.
fn rank_sweep(a: &ExperimentArgs, n_samples: u64) -> Result<(gaussdiff_fit::dataset::Dataset, Vec<RankRow>, Vec<f32>)> {
    let ds = load_core(&a.mnist, 0, a.seed)?;
    let d = ds.dim();
    let seeds = a.seed..a.seed + n_samples;
    let full = fit::fit(&ds.images, d, &FitOptions { rank: Rank::Full, floor: Floor::None })
        .map_err(|e| anyhow::anyhow!("fitting MNIST: {e}"))?;
    let (full_samples, _, _) = run_spec(&blob_bytes(&full, &ds, DType::F32)?, Sampler::Exact, 0, seeds.clone())?;
    let mut sweep = Vec::new();
    let mut grid = Vec::new();
    for k in [8usize, 16, 32, 64, d] {
        let g = if k == d {
            full.clone()
        } else {
            fit::fit(&ds.images, d, &FitOptions { rank: Rank::Fixed(k), floor: Floor::Auto })
                .map_err(|e| anyhow::anyhow!("fitting MNIST rank {k}: {e}"))?
        };
        let b32 = blob_bytes(&g, &ds, DType::F32)?;
        let b16 = blob_bytes(&g, &ds, DType::F16)?;
        let (s, evals, macs) = run_spec(&b32, Sampler::Exact, 0, seeds.clone())?;
        grid.extend_from_slice(&s);
        sweep.push(RankRow {
            rank: k,
            floor_c: g.floor,
            explained_variance: g.explained_variance(),
            blob_bytes_f32: b32.len(),
            blob_bytes_f16: b16.len(),
            macs_exact: macs * evals as u64,
            rmse_vs_full_rank: rmse(&s, &full_samples),
        });
    }
    Ok((ds, sweep, grid))
}

/// Plots, CSVs, the summary and the console lines of the gallery experiment.
fn report(
    a: &ExperimentArgs,
    setting: Setting,
    n_samples: u64,
    ds: &gaussdiff_fit::dataset::Dataset,
    (rows, capture_note): (Vec<GalleryRow>, String),
    (sweep, grid): (Vec<RankRow>, Vec<f32>),
    progress: bool,
) -> Result<()> {
    let cols = n_samples as usize;
    labelled_grid(
        &a.out.join("rank_sweep_mnist.png"),
        "MNIST: exact samples of rank-k Gaussians (floor c = mean of the rest), same seed per column",
        &[(
            format!("MNIST test set, N = {} training images", ds.len()),
            rows_of(&grid, ds.dim(), cols, |i| match sweep.get(i) {
                Some(r) if r.rank == ds.dim() => format!("full rank ({})", r.rank),
                Some(r) => format!("rank {}", r.rank),
                None => String::new(),
            }),
        )],
        ds.shape,
        ds.pixel,
        cols,
        2,
    )?;
    write_csv(
        &a.out.join("rank_sweep_mnist.csv"),
        &[
            "rank",
            "floor_c",
            "explained_variance",
            "blob_bytes_f32",
            "blob_bytes_f16",
            "macs_exact",
            "rmse_vs_full_rank",
        ],
        &sweep
            .iter()
            .map(|r| {
                vec![
                    r.rank as f64,
                    r.floor_c,
                    r.explained_variance,
                    r.blob_bytes_f32 as f64,
                    r.blob_bytes_f16 as f64,
                    r.macs_exact as f64,
                    r.rmse_vs_full_rank,
                ]
            })
            .collect::<Vec<_>>(),
    )?;
    xy_plot(
        &a.out.join("rank_sweep_mnist_cost.png"),
        "MNIST rank sweep: sample change vs flash (exact sampler, same noise)",
        &Axes {
            x: "blob size (bytes, log)".into(),
            y: "RMS pixel difference to the full-rank sample (model units)".into(),
            log_x: true,
            log_y: false,
            vlines: vec![],
        },
        &[
            Series::new("f32 blob", sweep.iter().map(|r| (r.blob_bytes_f32 as f64, r.rmse_vs_full_rank)).collect()),
            Series::new("f16 blob", sweep.iter().map(|r| (r.blob_bytes_f16 as f64, r.rmse_vs_full_rank)).collect()),
        ],
    )?;
    write_csv(
        &a.out.join("gallery.csv"),
        &[
            "d",
            "n_train",
            "blob_bytes_f32",
            "blob_bytes_f16",
            "macs_exact",
            "macs_heun18",
            "rmse_exact_vs_heun18",
            "nn_distance_median",
            "memorised_fraction",
        ],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r.d as f64,
                    r.n_train as f64,
                    r.blob_bytes_f32 as f64,
                    r.blob_bytes_f16 as f64,
                    r.macs_exact as f64,
                    r.macs_heun18 as f64,
                    r.rmse_exact_vs_heun18,
                    r.nn_distance_median,
                    r.memorised_fraction,
                ]
            })
            .collect::<Vec<_>>(),
    )?;
    if progress {
        for r in &rows {
            eprintln!(
                "{:<8} d={:<4} blob {} B (f16 {} B)  MACs exact {} heun-18 {}  rmse exact/heun {:.4}  fw frames {}  nn median {:.3}  memorised {:.2}",
                r.dataset, r.d, r.blob_bytes_f32, r.blob_bytes_f16, r.macs_exact, r.macs_heun18, r.rmse_exact_vs_heun18, r.firmware_frames, r.nn_distance_median, r.memorised_fraction
            );
        }
        for r in &sweep {
            eprintln!(
                "rank {:<4} c={:.2e} var {:.3} blob {} B (f16 {})  MACs {}  rmse vs full {:.4}",
                r.rank,
                r.floor_c,
                r.explained_variance,
                r.blob_bytes_f32,
                r.blob_bytes_f16,
                r.macs_exact,
                r.rmse_vs_full_rank
            );
        }
        eprintln!("{capture_note}");
    }
    write_summary(
        &a.out,
        &Summary {
            experiment: "gallery",
            setting,
            capture: a.capture.as_ref().map(|p| p.display().to_string()),
            capture_note,
            gallery: rows,
            rank_sweep_dataset: ds.name.clone(),
            rank_sweep: sweep,
            rank_sweep_grid: "rank_sweep_mnist.png".into(),
        },
    )
}
