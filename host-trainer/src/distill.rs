//! `distill`: fit per-sigma affine maps `W_sigma x + b_sigma` to a trained denoiser.
//!
//! For each sigma of the grid, batches of `x = y + sigma z` (y a uniformly drawn training image, z
//! standard normal, fresh for every batch) are pushed through the trained network (EMA weights) to
//! get targets `t = D(x; sigma)`. Two estimators use the very same samples:
//!
//! * **gradient descent** as Li et al. (2024): Adam epochs over the sample set until W stops moving
//!   ([`crate::distill_gd`]: learning rates, halving on a plateau, the stopping rule).
//!   The batches are drawn first and kept, so both estimators see exactly the same rows.
//! * **closed-form ridge least squares**: with sample means `x_bar`, `t_bar` and covariances
//!   `C_xx`, `C_tx` (f64), `W = C_tx (C_xx + rho I)^-1` (Cholesky solve, faer), `b = t_bar - W x_bar`,
//!   with `rho = ridge * tr(C_xx) / d`.
//!
//! The output layout is documented in `docs/distill-format.md`.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use faer::{Mat, Side};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::distill_gd::{self, GdOptions};
use crate::network::{denoise_rows, Network};
use crate::rng::TrainRng;
use crate::st::{self, F32Tensor};
use crate::training_gaussian::TrainingGaussian;
use gaussdiff_core::blob::write::LinearMaps;
use gaussdiff_core::tensor::DType;
use gaussdiff_fit::dataset::Dataset;
use gaussdiff_fit::export;
use gaussdiff_fit::io::write_atomic;

/// Default cap on GD epochs per sigma (`--epochs`; Li et al. run 100 Adam epochs over a larger set; the
/// stopping rule ends ours after 300-400 epochs of 16 batches on digits).
pub const DEFAULT_EPOCHS: usize = 1000;
/// Default GD stopping tolerance on the relative change of W over an epoch (`--tol`).
pub const DEFAULT_TOL: f64 = 1e-5;
/// Default base learning rate of GD (`--lr0`).
pub const DEFAULT_LR0: f64 = 2e-2;

/// Which estimator(s) to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Closed-form ridge least squares only.
    Closed,
    /// Gradient descent only.
    Gd,
    /// Both on the same samples; the closed form is written, both are compared.
    Both,
}

/// Distillation settings.
#[derive(Clone, Debug)]
pub struct DistillConfig {
    /// Sigma grid, descending.
    pub sigmas: Vec<f64>,
    /// Estimator.
    pub method: Method,
    /// Batch size (256 as in the paper).
    pub batch: usize,
    /// Batches per sigma: the sample set (the closed form and GD see the same rows).
    pub batches: usize,
    /// Most GD epochs over the sample set per sigma (Li et al.: 100).
    pub epochs: usize,
    /// GD stops when an epoch changes W by less than this (relative Frobenius).
    pub tol: f64,
    /// Base learning rate lr0 of gradient descent.
    pub lr0: f64,
    /// Relative ridge.
    pub ridge: f64,
    /// Seed of the sample stream.
    pub seed: u64,
}

/// Per-sigma affine maps (f32), `W` row-major `L x d x d`, `b` `L x d`.
#[derive(Clone, Debug)]
pub struct DistilledMaps {
    /// Grid, descending.
    pub sigmas: Vec<f64>,
    /// d.
    pub d: usize,
    /// `L * d * d`.
    pub w: Vec<f32>,
    /// `L * d`.
    pub b: Vec<f32>,
}

/// Per-sigma report.
#[derive(Clone, Debug, Serialize)]
pub struct SigmaReport {
    /// Noise level.
    pub sigma: f64,
    /// Samples used.
    pub samples: usize,
    /// Relative Frobenius distance |W_gd - W_cf| / |W_cf| (when both ran).
    pub w_rel_frob_gd_vs_closed: Option<f64>,
    /// Relative output difference E|D_gd - D_cf| / |D_cf| on the last batch (when both ran).
    pub out_rel_gd_vs_closed: Option<f64>,
    /// Mean squared error of the closed form on its own samples (per pixel).
    pub mse_closed: Option<f64>,
    /// Mean squared error of GD on the whole sample set (per pixel).
    pub mse_gd: Option<f64>,
    /// GD epochs run (the stopping rule may end before `epochs`).
    pub gd_epochs: Option<usize>,
    /// GD's relative change of W over its last epoch.
    pub gd_last_change: Option<f64>,
    /// Seconds evaluating the network.
    pub secs_network: f64,
    /// Seconds in the closed-form accumulation and solve.
    pub secs_closed: f64,
    /// Seconds in gradient descent updates.
    pub secs_gd: f64,
}

/// Result of a distillation.
#[derive(Debug)]
pub struct Distilled {
    /// The maps written (closed form unless method = gd).
    pub maps: DistilledMaps,
    /// GD maps, when GD ran and the closed form is what was written.
    pub gd_maps: Option<DistilledMaps>,
    /// Per-sigma figures.
    pub report: Vec<SigmaReport>,
}

/// Accumulates f64 sums for the closed form.
struct Moments {
    d: usize,
    n: usize,
    sx: Vec<f64>,
    st: Vec<f64>,
    sxx: Mat<f64>,
    stx: Mat<f64>,
}

impl Moments {
    fn new(d: usize) -> Self {
        Self { d, n: 0, sx: vec![0.0; d], st: vec![0.0; d], sxx: Mat::zeros(d, d), stx: Mat::zeros(d, d) }
    }
    fn add(&mut self, x: &[f32], t: &[f32]) {
        let d = self.d;
        let m = x.len() / d;
        let xm = Mat::<f64>::from_fn(m, d, |i, j| x[i * d + j] as f64);
        let tm = Mat::<f64>::from_fn(m, d, |i, j| t[i * d + j] as f64);
        self.sxx += xm.transpose() * &xm;
        self.stx += tm.transpose() * &xm;
        for i in 0..m {
            for j in 0..d {
                self.sx[j] += x[i * d + j] as f64;
                self.st[j] += t[i * d + j] as f64;
            }
        }
        self.n += m;
    }
    /// Solve for (W, b) in f64.
    fn solve(&self, ridge: f64) -> Result<(Mat<f64>, Vec<f64>)> {
        let d = self.d;
        let n = self.n as f64;
        let xb: Vec<f64> = self.sx.iter().map(|v| v / n).collect();
        let tb: Vec<f64> = self.st.iter().map(|v| v / n).collect();
        let mut cxx = Mat::<f64>::from_fn(d, d, |i, j| self.sxx[(i, j)] / n - xb[i] * xb[j]);
        let ctx = Mat::<f64>::from_fn(d, d, |i, j| self.stx[(i, j)] / n - tb[i] * xb[j]);
        let tr: f64 = (0..d).map(|i| cxx[(i, i)]).sum();
        let rho = ridge * tr / d as f64;
        for i in 0..d {
            cxx[(i, i)] += rho;
        }
        // W C = C_tx  <=>  C W^T = C_tx^T (C symmetric).
        let llt = cxx
            .llt(Side::Lower)
            .map_err(|e| anyhow::anyhow!("ridge system is not positive definite ({e:?}); raise --ridge"))?;
        let mut wt = ctx.transpose().to_owned();
        faer::linalg::solvers::Solve::solve_in_place(&llt, wt.as_mut());
        let w = wt.transpose().to_owned();
        let b: Vec<f64> = (0..d).map(|i| tb[i] - (0..d).map(|j| w[(i, j)] * xb[j]).sum::<f64>()).collect();
        Ok((w, b))
    }
}

/// `out = x W^T + b` for row-major `x` (n x d) with candle (f32).
pub fn affine_rows(x: &[f32], w: &[f32], b: &[f32], d: usize, device: &Device) -> Result<Vec<f32>> {
    let n = x.len() / d;
    let xt = Tensor::from_slice(x, (n, d), device)?;
    let wt = Tensor::from_slice(w, (d, d), device)?;
    let bt = Tensor::from_slice(b, (1, d), device)?;
    Ok(xt.matmul(&wt.t()?)?.broadcast_add(&bt)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Mean over rows of `|a_i - b_i| / |b_i|` (row-major `n x d`, f64 accumulation).
fn rel_l2_mean(a: &[f32], b: &[f32], d: usize) -> f64 {
    crate::measures::mean_over_rows(a, b, d, |s| (s.diff2 / s.bb.max(1e-300)).sqrt())
}

/// Run the distillation of `net` on `data`.
pub fn distill(net: &Network, data: &Dataset, cfg: &DistillConfig, progress: bool) -> Result<Distilled> {
    let d = data.dim();
    let n_train = data.len();
    if cfg.sigmas.is_empty()
        || cfg.sigmas.windows(2).any(|w| w[0] <= w[1])
        || cfg.sigmas.iter().any(|s| s.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
    {
        bail!("--sigmas must be positive and strictly descending, got {:?}", cfg.sigmas);
    }
    if cfg.batch == 0 || cfg.batches == 0 || cfg.epochs == 0 {
        bail!(
            "distill: --batch, --batches and --epochs must be at least 1 (got {}, {}, {})",
            cfg.batch,
            cfg.batches,
            cfg.epochs
        );
    }
    let run_gd = cfg.method != Method::Closed;
    let run_cf = cfg.method != Method::Gd;
    let dev = net.device().clone();
    let l = cfg.sigmas.len();
    let mut cf =
        DistilledMaps { sigmas: cfg.sigmas.clone(), d, w: Vec::with_capacity(l * d * d), b: Vec::with_capacity(l * d) };
    let mut gd = cf.clone();
    let mut report = Vec::new();
    let pb = if progress {
        indicatif::ProgressBar::new((l * (cfg.batches + if run_gd { cfg.epochs } else { 0 })) as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} batches + GD epochs  sigma {msg}  ETA {eta}")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let gd_opts = GdOptions { batch: cfg.batch, max_epochs: cfg.epochs, tol: cfg.tol, lr0: cfg.lr0 };
    for (si, &sigma) in cfg.sigmas.iter().enumerate() {
        pb.set_message(format!("{sigma:.4}"));
        let mut rng = TrainRng::stream(cfg.seed, 0xD157 + si as u64);
        let mut mom = Moments::new(d);
        let (mut t_net, mut t_cf, mut t_gd) = (0.0, 0.0, 0.0);
        // The sample set: every batch's inputs and targets (the closed form and GD see the same rows).
        let (mut xs, mut ts) = (Vec::new(), Vec::new());
        let mut last: Option<(Vec<f32>, Vec<f32>)> = None;
        for step in 0..cfg.batches {
            let mut x = rng.normals(cfg.batch * d);
            for r in 0..cfg.batch {
                let i = rng.below(n_train);
                let y = &data.images[i * d..(i + 1) * d];
                for j in 0..d {
                    x[r * d + j] = y[j] + sigma as f32 * x[r * d + j];
                }
            }
            let t0 = Instant::now();
            let t = denoise_rows(net, &x, sigma, cfg.batch)?;
            t_net += t0.elapsed().as_secs_f64();
            if run_cf {
                let t0 = Instant::now();
                mom.add(&x, &t);
                t_cf += t0.elapsed().as_secs_f64();
            }
            if run_gd {
                xs.extend_from_slice(&x);
                ts.extend_from_slice(&t);
            }
            if step + 1 == cfg.batches {
                last = Some((x, t));
            }
            pb.inc(1);
        }
        let mut gd_fit = None;
        if run_gd {
            let t0 = Instant::now();
            let f = distill_gd::fit((&xs, &ts), d, sigma, &gd_opts, &mut rng, &dev, |e| {
                pb.inc(1);
                pb.set_message(format!("{sigma:.4}, GD epoch {}", e + 1));
            })?;
            pb.inc((cfg.epochs - f.epochs) as u64);
            t_gd += t0.elapsed().as_secs_f64();
            gd_fit = Some(f);
        }
        let (lx, lt) = last.ok_or_else(|| anyhow::anyhow!("no batches"))?;
        let mut rep = SigmaReport {
            sigma,
            samples: cfg.batch * cfg.batches,
            w_rel_frob_gd_vs_closed: None,
            out_rel_gd_vs_closed: None,
            mse_closed: None,
            mse_gd: gd_fit.as_ref().map(|f| f.mse),
            gd_epochs: gd_fit.as_ref().map(|f| f.epochs),
            gd_last_change: gd_fit.as_ref().map(|f| f.last_change),
            secs_network: t_net,
            secs_closed: 0.0,
            secs_gd: t_gd,
        };
        let mut cf_wb = None;
        if run_cf {
            let t0 = Instant::now();
            let (w, b) = mom.solve(cfg.ridge)?;
            t_cf += t0.elapsed().as_secs_f64();
            let wf: Vec<f32> = (0..d * d).map(|k| w[(k / d, k % d)] as f32).collect();
            let bf: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            let pred = affine_rows(&lx, &wf, &bf, d, &dev)?;
            rep.mse_closed =
                Some(pred.iter().zip(&lt).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / pred.len() as f64);
            cf_wb = Some((wf, bf));
        }
        rep.secs_closed = t_cf;
        if let Some(f) = gd_fit {
            let (wf, bf) = (f.w, f.b);
            if let Some((cw, cb)) = &cf_wb {
                rep.w_rel_frob_gd_vs_closed = Some(distill_gd::rel_frobenius(cw, &wf));
                let pg = affine_rows(&lx, &wf, &bf, d, &dev)?;
                let pc = affine_rows(&lx, cw, cb, d, &dev)?;
                rep.out_rel_gd_vs_closed = Some(rel_l2_mean(&pg, &pc, d));
            }
            gd.w.extend_from_slice(&wf);
            gd.b.extend_from_slice(&bf);
        }
        if let Some((wf, bf)) = cf_wb {
            cf.w.extend(wf);
            cf.b.extend(bf);
        }
        report.push(rep);
    }
    pb.finish_and_clear();
    Ok(match cfg.method {
        Method::Closed => Distilled { maps: cf, gd_maps: None, report },
        Method::Gd => Distilled { maps: gd, gd_maps: None, report },
        Method::Both => Distilled { maps: cf, gd_maps: Some(gd), report },
    })
}

/// Write maps in the `docs/distill-format.md` layout, optionally with the data's eigenbasis.
pub fn save_maps(
    path: &Path,
    maps: &DistilledMaps,
    data: &Dataset,
    method: &str,
    basis: Option<&TrainingGaussian>,
    rank: usize,
) -> Result<()> {
    let d = maps.d;
    let l = maps.sigmas.len();
    let mut tensors = vec![
        F32Tensor { name: "sigmas".into(), shape: vec![l], data: maps.sigmas.iter().map(|&s| s as f32).collect() },
        F32Tensor { name: "W".into(), shape: vec![l, d, d], data: maps.w.clone() },
        F32Tensor { name: "b".into(), shape: vec![l, d], data: maps.b.clone() },
    ];
    if let Some(g) = basis {
        let k = rank.min(d).max(1);
        tensors.push(F32Tensor {
            name: "basis".into(),
            shape: vec![k, d],
            data: g.u_rows[..k * d].iter().map(|&v| v as f32).collect(),
        });
        tensors.push(F32Tensor {
            name: "lambda".into(),
            shape: vec![k],
            data: g.lambda[..k].iter().map(|&v| v as f32).collect(),
        });
    }
    let s = data.shape;
    let mut md = BTreeMap::new();
    md.insert("format".into(), "gaussdiff-distill-1".into());
    md.insert("dataset".into(), data.name.clone());
    md.insert("n_train".into(), data.len().to_string());
    md.insert("shape".into(), format!("{},{},{}", s.channels, s.height, s.width));
    md.insert("method".into(), method.into());
    md.insert("pixel_scale".into(), s_f(data.pixel.scale));
    md.insert("pixel_offset".into(), s_f(data.pixel.offset));
    st::save(path, &tensors, md)
}

fn s_f(v: f32) -> String {
    format!("{v}")
}

impl DistilledMaps {
    /// Write the maps as a linear blob through `gaussdiff_fit::export`: dense when `basis` is `None`, else
    /// projected on the first `k` eigenvectors of the training data's Gaussian (`M_i = U^T W_i U`, `a_i`,
    /// see [`gaussdiff_fit::export::project`]). Returns the byte count.
    ///
    /// # Errors
    /// If core's writer rejects the maps or the file cannot be written.
    pub fn write_blob(
        &self,
        data: &Dataset,
        basis: Option<(&TrainingGaussian, usize)>,
        dtype: DType,
        path: &Path,
    ) -> Result<usize> {
        let d = self.d;
        let sigmas: Vec<f32> = self.sigmas.iter().map(|&s| s as f32).collect();
        let maps = match basis {
            None => LinearMaps::Dense { sigmas, w: self.w.clone(), b: self.b.clone() },
            Some((g, k)) => {
                let k = k.clamp(1, d);
                let p = export::project(&self.w, self.sigmas.len(), d, &g.u_rows[..k * d]);
                let u_t = g.u_rows[..k * d].iter().map(|&v| v as f32).collect();
                LinearMaps::Basis { sigmas, u_t, m: p.m, a: p.a, b: self.b.clone() }
            }
        };
        let provenance = crate::training_gaussian::provenance(data, "distilled");
        let (bytes, _) = export::linear_blob(data.shape, maps, dtype, data.pixel, &provenance)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(bytes.len())
    }
}

/// Read maps written by [`save_maps`] (checks shapes and ordering).
pub fn load_maps(path: &Path) -> Result<DistilledMaps> {
    let f = st::Loaded::open(path)?;
    let sig = f.f32("sigmas", None)?;
    if sig.shape.len() != 1 || sig.shape[0] == 0 {
        bail!("{}: tensor \"sigmas\" must have shape [L] with L >= 1, found {:?}", path.display(), sig.shape);
    }
    let l = sig.shape[0];
    let b = f.f32("b", None)?;
    if b.shape.len() != 2 || b.shape[0] != l {
        bail!("{}: tensor \"b\" must have shape [{l}, d], found {:?}", path.display(), b.shape);
    }
    let d = b.shape[1];
    let w = f.f32("W", Some(&[l, d, d]))?;
    let sigmas: Vec<f64> = sig.data.iter().map(|&s| s as f64).collect();
    if sigmas.windows(2).any(|w| w[0] <= w[1])
        || sigmas.iter().any(|s| s.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
    {
        bail!("{}: tensor \"sigmas\" must be positive and strictly descending, found {:?}", path.display(), sigmas);
    }
    Ok(DistilledMaps { sigmas, d, w: w.data, b: b.data })
}
