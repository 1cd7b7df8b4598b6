//! The `metrics` command: evaluates every pair of denoisers and writes JSON, CSV, plots and grids.

use anyhow::{bail, Result};
use candle_core::Device;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::denoisers::{BatchDenoiser, DistilledDenoiser, MemorisingDenoiser, NetDenoiser, TrainingGaussianDenoiser};
use crate::distill::load_maps;
use crate::measures::{self, ALPHAS};
use crate::plot;
use crate::rng::TrainRng;
use crate::train::load_network;
use crate::training_gaussian::TrainingGaussian;
use gaussdiff_fit::io::write_atomic;

/// Arguments of `gaussdiff-train metrics`.
#[derive(clap::Args, Debug)]
pub struct MetricsArgs {
    /// Trained checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Distilled maps (from `distill`).
    #[arg(long)]
    pub distilled: Option<PathBuf>,
    /// Output directory.
    #[arg(long, short, default_value = "runs/metrics")]
    pub out: PathBuf,
    /// Held-out images per sigma.
    #[arg(long, default_value_t = 256)]
    pub n_eval: usize,
    /// Samples per denoiser.
    #[arg(long, default_value_t = 64)]
    pub n_samples: usize,
    /// Heun steps.
    #[arg(long, default_value_t = 18)]
    pub steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Comma-separated sigmas (default: the distilled grid or the 10-step EDM grid).
    #[arg(long, value_delimiter = ',')]
    pub sigmas: Option<Vec<f64>>,
    /// Leave out the memorising denoiser.
    #[arg(long)]
    pub no_memorising: bool,
}

/// Run the `metrics` command: [`run`] with the arguments, then a summary on stderr.
///
/// # Errors
/// Whatever [`run`] reports.
pub fn command(a: &MetricsArgs, device: &Device, progress: bool) -> Result<()> {
    let o = MetricsOptions {
        checkpoint: a.checkpoint.clone(),
        distilled: a.distilled.clone(),
        out: a.out.clone(),
        n_eval: a.n_eval,
        n_samples: a.n_samples,
        steps: a.steps,
        seed: a.seed,
        sigmas: a.sigmas.clone(),
        no_memorising: a.no_memorising,
    };
    let r = run(&o, device, progress)?;
    if progress {
        eprintln!("linearity (min over sigma): {:?}", r.linearity_min);
        eprintln!("memorised fraction: {:?}", r.memorisation_fraction);
        eprintln!("diverged fraction: {:?}", r.diverged_fraction);
        eprintln!("sample agreement (MSE/pixel): {:?}", r.sample_agreement);
        eprintln!("wrote {}/metrics.json, CSVs and PNGs", a.out.display());
    }
    Ok(())
}

/// Options of `metrics`.
#[derive(Clone, Debug)]
pub struct MetricsOptions {
    /// Trained network checkpoint.
    pub checkpoint: PathBuf,
    /// Distilled maps (optional).
    pub distilled: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Held-out images used per sigma.
    pub n_eval: usize,
    /// Samples per denoiser.
    pub n_samples: usize,
    /// Heun steps.
    pub steps: usize,
    /// Seed of noise draws.
    pub seed: u64,
    /// Sigma grid (default: the distilled grid, else the 10-step EDM grid).
    pub sigmas: Option<Vec<f64>>,
    /// Skip the memorising denoiser (it costs O(N) per evaluation).
    pub no_memorising: bool,
}

/// Everything `metrics.json` holds.
#[derive(Debug, Serialize)]
pub struct MetricsReport {
    /// Dataset name.
    pub dataset: String,
    /// Training images.
    pub n_train: usize,
    /// d.
    pub d: usize,
    /// "held-out" or "training" (when the run held nothing out).
    pub eval_set: String,
    /// Images per sigma.
    pub n_eval: usize,
    /// Sigma grid.
    pub sigmas: Vec<f64>,
    /// `difference["a vs b"][i]` = E|D_a - D_b| / |D_a| at `sigmas[i]`.
    pub difference: BTreeMap<String, Vec<f64>>,
    /// `linearity[den][i][k]` at `sigmas[i]`, `ALPHAS[k]`.
    pub linearity: BTreeMap<String, Vec<Vec<f64>>>,
    /// `linearity_mean[den][i]`: mean over alphas.
    pub linearity_mean: BTreeMap<String, Vec<f64>>,
    /// Minimum over sigma of `linearity_mean`.
    pub linearity_min: BTreeMap<String, f64>,
    /// Alphas.
    pub alphas: Vec<f64>,
    /// Relative Frobenius distance of the distilled W to the Gaussian's, per sigma of the distilled grid.
    pub frobenius: Option<Vec<f64>>,
    /// The distilled grid that `frobenius` refers to.
    pub frobenius_sigmas: Option<Vec<f64>>,
    /// Heun steps.
    pub sample_steps: usize,
    /// Mean squared difference per pixel between samples from the same noise, over the samples that
    /// neither denoiser diverged on (see `diverged_fraction`).
    pub sample_agreement: BTreeMap<String, f64>,
    /// Fraction of each denoiser's sample trajectories that diverged: a pixel not finite or beyond
    /// +-100 at the end (the data lie in [-1, 1]). Such samples are left out of every other sample metric.
    pub diverged_fraction: BTreeMap<String, f64>,
    /// Fraction of the (non-diverged) samples with d1 < d2/3 (nearest / second-nearest training image).
    pub memorisation_fraction: BTreeMap<String, f64>,
    /// Nearest-neighbour distance quantiles (0, 0.1, 0.5, 0.9, 1) per denoiser and for held-out images.
    pub nn_distance_quantiles: BTreeMap<String, Vec<f64>>,
    /// Quantiles (0, 0.1, 0.5, 0.9, 1) of the ratio d1/d2 (nearest / second-nearest training image) per
    /// denoiser and for held-out images: 0 for a copy of a training image, near 1 far from all of them.
    pub nn_ratio_quantiles: BTreeMap<String, Vec<f64>>,
    /// The memorisation rule, in words.
    pub memorisation_rule: String,
}

fn quantiles(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return vec![];
    }
    [0.0, 0.1, 0.5, 0.9, 1.0].iter().map(|q| s[((s.len() - 1) as f64 * q).round() as usize]).collect()
}

/// Run all metrics.
pub fn run(o: &MetricsOptions, device: &Device, progress: bool) -> Result<MetricsReport> {
    std::fs::create_dir_all(&o.out).map_err(|e| anyhow::anyhow!("creating {}: {e}", o.out.display()))?;
    let (cfg, net) = load_network(&o.checkpoint, true, device)?;
    let data = cfg.load_data()?;
    let d = data.dim();
    // What sets this run apart, in every plot title (two runs' figures never share a title).
    let context = format!(
        "{}, N = {}, p_mean = {}, p_std = {}, {} training steps",
        data.name,
        data.len(),
        cfg.p_mean,
        cfg.p_std,
        cfg.steps
    );
    let maps = o.distilled.as_ref().map(|p| load_maps(p)).transpose()?;
    if let Some(m) = &maps {
        if m.d != d {
            bail!("distilled maps have d = {} but the checkpoint's data has d = {d}", m.d);
        }
    }
    let sigmas =
        o.sigmas.clone().or_else(|| maps.as_ref().map(|m| m.sigmas.clone())).unwrap_or_else(crate::edm::default_grid);
    let g = TrainingGaussian::fit(&data.images, d)?;
    let net_d = NetDenoiser { net: &net };
    let lin_d = maps.clone().map(|m| DistilledDenoiser::new(m, device)).transpose()?;
    let gau_d = TrainingGaussianDenoiser::new(g.clone(), device)?;
    let mem_d = if o.no_memorising { None } else { Some(MemorisingDenoiser::new(&data.images, d, device)?) };
    let mut dens: Vec<&dyn BatchDenoiser> = vec![&net_d];
    if let Some(l) = &lin_d {
        dens.push(l);
    }
    dens.push(&gau_d);
    if let Some(m) = &mem_d {
        dens.push(m);
    }
    let (eval_set, pool) =
        if data.held_out_len() >= 2 { ("held-out", &data.held_out) } else { ("training", &data.images) };
    let n_pool = pool.len() / d;
    let n_eval = (o.n_eval.min(n_pool) / 2) * 2;
    if n_eval < 2 {
        bail!("metrics needs at least 2 evaluation images");
    }
    let mut rng = TrainRng::stream(o.seed, 0x3E7);
    let pb =
        if progress { indicatif::ProgressBar::new(sigmas.len() as u64 + 1) } else { indicatif::ProgressBar::hidden() };
    let mut difference: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut linearity: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
    for &sigma in &sigmas {
        let mut x = rng.normals(n_eval * d);
        for i in 0..n_eval {
            for j in 0..d {
                x[i * d + j] = pool[i * d + j] + sigma as f32 * x[i * d + j];
            }
        }
        let outs: Vec<Vec<f32>> = dens.iter().map(|den| den.denoise(&x, sigma)).collect::<Result<_>>()?;
        for a in 0..dens.len() {
            for b in a + 1..dens.len() {
                difference
                    .entry(format!("{} vs {}", dens[a].label(), dens[b].label()))
                    .or_default()
                    .push(measures::denoiser_difference(&outs[a], &outs[b], d));
            }
        }
        let half = n_eval / 2 * d;
        for den in &dens {
            let row: Vec<f64> = ALPHAS
                .iter()
                .map(|&a| measures::linearity_score(*den, &x[..half], &x[half..], d, sigma, a))
                .collect::<Result<_>>()?;
            linearity.entry(den.label().to_string()).or_default().push(row);
        }
        pb.inc(1);
    }
    let linearity_mean: BTreeMap<String, Vec<f64>> = linearity
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().map(|r| r.iter().sum::<f64>() / r.len() as f64).collect()))
        .collect();
    let linearity_min =
        linearity_mean.iter().map(|(k, v)| (k.clone(), v.iter().cloned().fold(f64::INFINITY, f64::min))).collect();
    let frobenius = maps.as_ref().map(|m| {
        (0..m.sigmas.len())
            .map(|i| measures::rel_frobenius(&m.w[i * d * d..(i + 1) * d * d], &g.w_matrix(m.sigmas[i])))
            .collect::<Vec<f64>>()
    });
    // Samples from the same noise.
    let noise = TrainRng::stream(o.seed, 0x5A3).normals(o.n_samples * d);
    let mut samples = Vec::new();
    for den in &dens {
        samples.push(measures::heun_sample(*den, &noise, o.steps)?);
    }
    pb.finish_and_clear();
    let mut sample_agreement = BTreeMap::new();
    for a in 0..dens.len() {
        for b in a + 1..dens.len() {
            sample_agreement.insert(
                format!("{} vs {}", dens[a].label(), dens[b].label()),
                measures::mse_kept_rows(&samples[a], &samples[b], d),
            );
        }
    }
    let diverged_fraction: BTreeMap<String, f64> = dens
        .iter()
        .zip(&samples)
        .map(|(den, s)| {
            let div = measures::diverged_rows(s, d);
            (den.label().to_string(), div.iter().filter(|&&v| v).count() as f64 / div.len().max(1) as f64)
        })
        .collect();
    let mut memorisation_fraction = BTreeMap::new();
    let mut nn_q = BTreeMap::new();
    let mut ratio_q = BTreeMap::new();
    let ratios = |nn: &[(f64, f64)]| nn.iter().map(|p| p.0 / p.1.max(1e-300)).collect::<Vec<f64>>();
    let mut hist = Vec::new();
    for (den, s) in dens.iter().zip(&samples) {
        let nn = measures::nearest_two(&measures::kept_rows(s, d), &data.images, d);
        memorisation_fraction.insert(den.label().to_string(), measures::memorisation_fraction(&nn));
        let d1: Vec<f64> = nn.iter().map(|p| p.0).collect();
        nn_q.insert(den.label().to_string(), quantiles(&d1));
        ratio_q.insert(den.label().to_string(), quantiles(&ratios(&nn)));
        hist.push((den.label().to_string(), d1));
        let n = s.len() / d.max(1);
        let title = format!("{} denoiser: {n} Heun-{} samples", den.label(), o.steps);
        let rows = plot::rows_of(s, d, 8, |i| format!("samples {}-{}", 8 * i + 1, (8 * i + 8).min(n)));
        plot::dataset_grid(&o.out.join(format!("samples_{}.png", den.label())), &title, &data, "", rows, (8, 4))?;
    }
    if data.held_out_len() > 0 {
        let m = data.held_out_len().min(o.n_samples.max(64));
        let nn = measures::nearest_two(&data.held_out[..m * d], &data.images, d);
        let d1: Vec<f64> = nn.iter().map(|p| p.0).collect();
        nn_q.insert("held-out images".into(), quantiles(&d1));
        ratio_q.insert("held-out images".into(), quantiles(&ratios(&nn)));
        memorisation_fraction.insert("held-out images".into(), measures::memorisation_fraction(&nn));
        hist.push(("held-out images".into(), d1));
    }
    let rep = MetricsReport {
        dataset: data.name.clone(),
        n_train: data.len(),
        d,
        eval_set: eval_set.into(),
        n_eval,
        sigmas: sigmas.clone(),
        difference,
        linearity,
        linearity_mean,
        linearity_min,
        alphas: ALPHAS.to_vec(),
        frobenius,
        frobenius_sigmas: maps.as_ref().map(|m| m.sigmas.clone()),
        sample_steps: o.steps,
        sample_agreement,
        diverged_fraction,
        memorisation_fraction,
        nn_distance_quantiles: nn_q,
        nn_ratio_quantiles: ratio_q,
        memorisation_rule: "a sample is memorised when the Euclidean distance (model space, [-1,1]) to its nearest training image is less than 1/3 of the distance to the second-nearest".into(),
    };
    write_outputs(&o.out, &rep, &hist, &context)?;
    Ok(rep)
}

fn write_outputs(out: &Path, rep: &MetricsReport, hist: &[(String, Vec<f64>)], context: &str) -> Result<()> {
    write_atomic(&out.join("metrics.json"), serde_json::to_string_pretty(rep)?.as_bytes())?;
    let table = |cols: &BTreeMap<String, Vec<f64>>| {
        let mut s = String::from("sigma");
        for k in cols.keys() {
            s.push(',');
            s.push_str(k);
        }
        s.push('\n');
        for (i, sg) in rep.sigmas.iter().enumerate() {
            let _ = write!(s, "{sg}");
            for v in cols.values() {
                let _ = write!(s, ",{}", v.get(i).copied().unwrap_or(f64::NAN));
            }
            s.push('\n');
        }
        s
    };
    write_atomic(&out.join("difference.csv"), table(&rep.difference).as_bytes())?;
    write_atomic(&out.join("linearity.csv"), table(&rep.linearity_mean).as_bytes())?;
    let mut s = String::from("pair,mse_per_pixel\n");
    for (k, v) in &rep.sample_agreement {
        let _ = writeln!(s, "{k},{v}");
    }
    write_atomic(&out.join("sample_agreement.csv"), s.as_bytes())?;
    let mut s = String::from("denoiser,memorised_fraction,diverged_fraction,nn_min,nn_p10,nn_median,nn_p90,nn_max\n");
    for (k, v) in &rep.memorisation_fraction {
        let q = rep.nn_distance_quantiles.get(k).cloned().unwrap_or_default();
        let dv = rep.diverged_fraction.get(k).copied().unwrap_or(0.0);
        let _ = writeln!(s, "{k},{v},{dv},{}", q.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","));
    }
    write_atomic(&out.join("memorisation.csv"), s.as_bytes())?;
    let series = |m: &BTreeMap<String, Vec<f64>>| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>();
    // Per plot: file, title, y label, curves by name, log y.
    let plots = [
        ("difference.png", "denoiser difference E|D1-D2|/|D1|", "relative difference", &rep.difference, true),
        ("linearity.png", "linearity score (mean over alpha)", "mean cosine", &rep.linearity_mean, false),
    ];
    for (file, title, y_label, curves, log_y) in plots {
        plot::sigma_plot(
            &out.join(file),
            &format!("{title}\n{context}"),
            y_label,
            &rep.sigmas,
            &series(curves),
            log_y,
        )?;
    }
    if let (Some(f), Some(fs)) = (&rep.frobenius, &rep.frobenius_sigmas) {
        let mut s = String::from("sigma,rel_frobenius\n");
        for (sg, v) in fs.iter().zip(f) {
            let _ = writeln!(s, "{sg},{v}");
        }
        write_atomic(&out.join("frobenius.csv"), s.as_bytes())?;
        plot::sigma_plot(
            &out.join("frobenius.png"),
            &format!("distilled maps vs Gaussian: |W_sigma - W_G| / |W_G|\n{context}"),
            "relative Frobenius distance",
            fs,
            &[("linear vs gaussian".into(), f.clone())],
            true,
        )?;
    }
    plot::histogram(
        &out.join("nn_distance.png"),
        &format!("distance of each sample to its nearest training image\n{context}"),
        "Euclidean distance",
        hist,
    )?;
    Ok(())
}
