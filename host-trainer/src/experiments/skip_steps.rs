//! Experiment 6 -- skipping steps with the Gaussian (Wang & Vastola 2024).
//!
//! The trained network's EDM Heun sampler (18 levels, 35 evaluations) is started at an intermediate level
//! `sigma_i` of its own schedule from the Gaussian's exact probability-flow solution
//! `x_i = exact_flow(80 z; 80 -> sigma_i)` (core's `GaussianDenoiser::exact_flow`, full-rank Gaussian of the
//! training data), and the remaining levels are integrated with the network. Skipping the first `i` steps
//! saves `2 i` network evaluations. Error: RMS pixel difference (model units) to the full network run
//! from the same noise. Baseline: the naive start `x_i = sigma_i z` (same `z`), which ignores the
//! structure the first steps would have built.

use anyhow::{Context, Result};
use candle_core::Device;
use gaussdiff_core::blob::write::{write_gaussian, WriteOptions};
use gaussdiff_core::blob::Blob;
use gaussdiff_fit::dataset::Dataset;
use gaussdiff_fit::gaussian::{self as fit, FitOptions, Floor, Rank};
use serde::Serialize;
use std::path::Path;

use super::common::{digits_network, write_csv, write_summary};
use super::{ExperimentArgs, Setting};
use crate::denoisers::NetDenoiser;
use crate::edm::edm_sigmas;
use crate::measures;
use crate::network::Network;
use crate::plot::{self, GridRow};
use crate::plot::{xy_plot, Axes, Series};
use crate::rng::TrainRng;

/// Heun steps of the full run.
pub const STEPS: usize = 18;

#[derive(Serialize)]
struct Row {
    skipped_steps: usize,
    sigma_start: f64,
    network_evals: usize,
    evals_saved: usize,
    rmse_gaussian_start: f64,
    rmse_naive_start: f64,
}

#[derive(Serialize)]
struct Summary {
    experiment: &'static str,
    setting: Setting,
    checkpoint: String,
    samples: usize,
    full_run_evals: usize,
    rmse_gaussian_exact_vs_network: f64,
    rmse_between_two_network_samples: f64,
    rows: Vec<Row>,
}

/// Run experiment 6.
pub fn run(a: &ExperimentArgs, device: &Device, progress: bool) -> Result<()> {
    // Samples per measurement.
    let n = match a.setting() {
        Setting::Quick => 32,
        Setting::Medium => 256,
        Setting::Full => 512,
    };
    let (ck, _cfg, net, data) = digits_network(a, device, progress)?;
    let bytes = gaussian_blob(&data)?;
    let m = measure(a, &net, &data, &bytes, n, progress)?;
    report(a, &ck, &data, n, m, progress)
}

/// The full-rank Gaussian of the training images as blob bytes (in memory, no metadata).
fn gaussian_blob(data: &Dataset) -> Result<Vec<u8>> {
    let d = data.dim();
    let g = fit::fit(&data.images, d, &FitOptions { rank: Rank::Full, floor: Floor::None })
        .map_err(|e| anyhow::anyhow!("fitting the Gaussian: {e}"))?;
    let bytes = write_gaussian(&g.to_params(data.shape), &WriteOptions::default())
        .map_err(|e| anyhow::anyhow!("writing the Gaussian blob: {e}"))?;
    Ok(bytes)
}

/// What [`measure`] found.
struct Measured {
    rows: Vec<Row>,
    /// The full network run, `n x d`.
    full: Vec<f32>,
    full_evals: usize,
    /// The Gaussian's exact samples from the same noise.
    gauss_sample: Vec<f32>,
    /// Sample grid rows: full run, runs started at sigma_4, sigma_8, sigma_12, Gaussian samples.
    grid: Vec<GridRow>,
    show: usize,
}

/// Run the network from the Gaussian's exact state at every sigma_i of the schedule (and from naive
/// noise), `n` samples each, against the full run.
fn measure(
    a: &ExperimentArgs,
    net: &Network,
    data: &Dataset,
    bytes: &[u8],
    n: usize,
    progress: bool,
) -> Result<Measured> {
    let d = data.dim();
    let blob = Blob::parse(bytes).map_err(|e| anyhow::anyhow!("parsing the Gaussian blob: {e}"))?;
    let model = blob.model().map_err(|e| anyhow::anyhow!("Gaussian model: {e}"))?;
    let gd = model.as_gaussian().context("the blob just written is not Gaussian")?;

    let mut sig = edm_sigmas(STEPS, 0.002, 80.0, 7.0);
    sig.push(0.0);
    let z = TrainRng::stream(a.seed, 0x5C1F).normals(n * d);
    let x_t: Vec<f32> = z.iter().map(|&v| v * sig[0] as f32).collect();
    let net_d = NetDenoiser { net };
    let (full, full_evals) = measures::heun_from(&net_d, x_t.clone(), &sig)?;
    // The Gaussian's exact state at sigma (per sample, core f32).
    let mut scratch = vec![0.0f32; gd.exact_flow_scratch_len()];
    let exact_at = |sigma: f64, scratch: &mut [f32]| {
        let mut out = vec![0.0f32; n * d];
        for i in 0..n {
            gd.exact_flow(&x_t[i * d..(i + 1) * d], sig[0] as f32, sigma as f32, &mut out[i * d..(i + 1) * d], scratch);
        }
        out
    };
    let gauss_sample = exact_at(0.0, &mut scratch);
    let pb = if progress { indicatif::ProgressBar::new(STEPS as u64 - 1) } else { indicatif::ProgressBar::hidden() };
    let mut rows = Vec::new();
    let show = 10.min(n);
    let mut grid: Vec<GridRow> = vec![(format!("network, all {STEPS} steps"), full[..show * d].to_vec())];
    for i in 1..STEPS {
        let start = exact_at(sig[i], &mut scratch);
        let (s_g, evals) = measures::heun_from(&net_d, start, &sig[i..])?;
        let naive: Vec<f32> = z.iter().map(|&v| v * sig[i] as f32).collect();
        let (s_n, _) = measures::heun_from(&net_d, naive, &sig[i..])?;
        if [4, 8, 12].contains(&i) {
            grid.push((
                format!("Gaussian to sigma = {}, then {i} steps fewer", crate::plot::fmt_tick(sig[i])),
                s_g[..show * d].to_vec(),
            ));
        }
        rows.push(Row {
            skipped_steps: i,
            sigma_start: sig[i],
            network_evals: evals,
            evals_saved: full_evals - evals,
            rmse_gaussian_start: measures::mse(&s_g, &full).sqrt(),
            rmse_naive_start: measures::mse(&s_n, &full).sqrt(),
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    grid.push(("Gaussian exact sample (0 network evaluations)".into(), gauss_sample[..show * d].to_vec()));
    Ok(Measured { rows, full, full_evals, gauss_sample, grid, show })
}

/// Grid, CSV, plot, console lines and summary.
fn report(a: &ExperimentArgs, ck: &Path, data: &Dataset, n: usize, m: Measured, progress: bool) -> Result<()> {
    let setting = a.setting();
    let d = data.dim();
    let Measured { rows, full, full_evals, gauss_sample, grid, show } = m;
    let title = format!("{}: network Heun samples, the first steps replaced by the Gaussian's exact flow", data.name);
    let note = "; one noise per column";
    plot::dataset_grid(&a.out.join("skip_steps_samples.png"), &title, data, note, grid, (show, 6))?;
    // Scale of "different sample": RMS difference between two independent network samples.
    let half = n / 2 * d;
    let between = measures::mse(&full[..half], &full[half..2 * half]).sqrt();
    let rmse_g = measures::mse(&gauss_sample, &full).sqrt();
    write_csv(
        &a.out.join("skip_steps.csv"),
        &["skipped_steps", "sigma_start", "network_evals", "evals_saved", "rmse_gaussian_start", "rmse_naive_start"],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r.skipped_steps as f64,
                    r.sigma_start,
                    r.network_evals as f64,
                    r.evals_saved as f64,
                    r.rmse_gaussian_start,
                    r.rmse_naive_start,
                ]
            })
            .collect::<Vec<_>>(),
    )?;
    let pts = |f: &dyn Fn(&Row) -> f64| rows.iter().map(|r| (r.evals_saved as f64, f(r))).collect::<Vec<_>>();
    xy_plot(
        &a.out.join("skip_steps.png"),
        &format!("{}: network Heun-{STEPS} started at sigma_i (error vs the full run)", data.name),
        &Axes {
            x: format!("network evaluations saved (of {full_evals})"),
            y: "RMS difference to the full run (model units)".into(),
            log_x: false,
            log_y: true,
            vlines: vec![],
        },
        &[
            Series::new("start from the Gaussian's exact flow", pts(&|r| r.rmse_gaussian_start)),
            Series::new("naive start x = sigma_i z", pts(&|r| r.rmse_naive_start)),
            Series::reference(
                "Gaussian exact sample (0 network evals)",
                vec![(0.0, rmse_g), (full_evals as f64, rmse_g)],
            ),
            Series::reference("two independent network samples", vec![(0.0, between), (full_evals as f64, between)]),
        ],
    )?;
    if progress {
        eprintln!("skip  sigma_i    evals  saved  rmse(gauss start)  rmse(naive start)");
        for r in &rows {
            eprintln!(
                "{:<5} {:<10.4} {:<6} {:<6} {:<18.4e} {:.4e}",
                r.skipped_steps,
                r.sigma_start,
                r.network_evals,
                r.evals_saved,
                r.rmse_gaussian_start,
                r.rmse_naive_start
            );
        }
        eprintln!(
            "Gaussian exact sample vs full network run: {rmse_g:.4}; two independent network samples: {between:.4}"
        );
    }
    write_summary(
        &a.out,
        &Summary {
            experiment: "skip-steps",
            setting,
            checkpoint: ck.display().to_string(),
            samples: n,
            full_run_evals: full_evals,
            rmse_gaussian_exact_vs_network: rmse_g,
            rmse_between_two_network_samples: between,
            rows,
        },
    )
}
