//! `gaussdiff-train distill`: arguments and the run (maps, optional blob, report).

use anyhow::Result;
use candle_core::Device;
use gaussdiff_core::tensor::DType;
use gaussdiff_fit::export::parse_dtype;
use gaussdiff_fit::io::write_atomic;
use std::path::PathBuf;

use crate::distill::{self, DistillConfig, Method};
use crate::train;
use crate::training_gaussian::TrainingGaussian;

/// Arguments of `gaussdiff-train distill`.
#[derive(clap::Args, Debug)]
pub struct DistillArgs {
    /// Trained checkpoint (EMA weights are used).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Output safetensors (layout: docs/distill-format.md).
    #[arg(long, short)]
    pub out: PathBuf,
    /// closed (ridge least squares), gd (Adam as Li et al.), or both on the same samples.
    #[arg(long, value_enum, default_value = "closed")]
    pub method: Method,
    /// Comma-separated descending sigmas (default: the 10-step EDM grid 80 ... 0.002).
    #[arg(long, value_delimiter = ',')]
    pub sigmas: Option<Vec<f64>>,
    /// Batches of `--batch` samples per sigma: the sample set both estimators fit.
    #[arg(long, default_value_t = 16)]
    pub batches: usize,
    /// GD: most Adam epochs over the sample set per sigma (the stopping rule usually ends earlier).
    #[arg(long, default_value_t = distill::DEFAULT_EPOCHS)]
    pub epochs: usize,
    /// GD: stop when one epoch changes W by less than this (relative Frobenius norm); the learning rate
    /// halves after 20 epochs without a 1e-4 relative loss improvement.
    #[arg(long, default_value_t = distill::DEFAULT_TOL)]
    pub tol: f64,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Base learning rate of GD (W': lr0 sqrt(d) sigma_data^2/(sigma_data^2+sigma^2); b: 5 lr0; halved on a plateau).
    #[arg(long, default_value_t = distill::DEFAULT_LR0)]
    lr0: f64,
    /// Relative ridge rho / (tr(C_xx)/d).
    #[arg(long, default_value_t = 1e-6)]
    pub ridge: f64,
    /// Seed of the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also store the training data's top-K eigenvectors as `basis` (and `lambda`); 0 = none.
    #[arg(long, default_value_t = 0)]
    pub basis_rank: usize,
    /// With --method both: also write the GD maps here.
    #[arg(long)]
    pub gd_out: Option<PathBuf>,
    /// Also write a linear blob (.gdn) through core's writer: dense, or in the top-K basis with --basis-rank.
    #[arg(long)]
    pub blob: Option<PathBuf>,
    /// Storage type of the blob's big matrices: f32, f16 or i8.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub blob_dtype: DType,
    /// Per-sigma report (JSON); default OUT with extension .report.json.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Run `distill`.
///
/// # Errors
/// Whatever loading, distilling or writing reports.
pub fn run(a: &DistillArgs, device: &Device, progress: bool) -> Result<()> {
    let (cfg, net) = train::load_network(&a.checkpoint, true, device)?;
    let data = cfg.load_data()?;
    let dc = DistillConfig {
        sigmas: a.sigmas.clone().unwrap_or_else(crate::edm::default_grid),
        method: a.method,
        batch: a.batch,
        batches: a.batches,
        epochs: a.epochs,
        tol: a.tol,
        lr0: a.lr0,
        ridge: a.ridge,
        seed: a.seed,
    };
    let r = distill::distill(&net, &data, &dc, progress)?;
    let basis = if a.basis_rank > 0 { Some(TrainingGaussian::fit(&data.images, data.dim())?) } else { None };
    let method = match a.method {
        Method::Gd => "gd",
        _ => "closed-form",
    };
    distill::save_maps(&a.out, &r.maps, &data, method, basis.as_ref(), a.basis_rank)?;
    if let (Some(p), Some(g)) = (&a.gd_out, &r.gd_maps) {
        distill::save_maps(p, g, &data, "gd", basis.as_ref(), a.basis_rank)?;
    }
    if let Some(bp) = &a.blob {
        let bytes = r.maps.write_blob(&data, basis.as_ref().map(|g| (g, a.basis_rank)), a.blob_dtype, bp)?;
        if progress {
            eprintln!("wrote linear blob {} ({bytes} bytes)", bp.display());
        }
    }
    let rp = a.report.clone().unwrap_or_else(|| a.out.with_extension("report.json"));
    write_atomic(&rp, serde_json::to_string_pretty(&r.report)?.as_bytes())?;
    if progress {
        eprintln!("sigma        samples  net_s   closed_s  gd_s    gd_epochs  |W_gd-W_cf|/|W_cf|  out_rel  mse_cf      mse_gd");
        for s in &r.report {
            let o = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.3e}"));
            eprintln!(
                "{:<12.5} {:<8} {:<7.2} {:<9.3} {:<7.2} {:<10} {:<19} {:<8} {:<11} {}",
                s.sigma,
                s.samples,
                s.secs_network,
                s.secs_closed,
                s.secs_gd,
                s.gd_epochs.map_or("-".to_string(), |e| e.to_string()),
                o(s.w_rel_frob_gd_vs_closed),
                o(s.out_rel_gd_vs_closed),
                o(s.mse_closed),
                o(s.mse_gd)
            );
        }
        eprintln!("wrote {} and {}", a.out.display(), rp.display());
    }
    Ok(())
}
