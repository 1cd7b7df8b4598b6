//! `distill`: fit per-sigma affine maps `W_sigma x + b_sigma` to a trained denoiser.
//!
//! For each sigma of the grid, batches of `x = y + sigma z` (y a uniformly drawn training image, z
//! standard normal, fresh for every batch) are pushed through the trained network (EMA weights) to
//! get targets `t = D(x; sigma)`. Two estimators use the very same samples:
//!
//! * **gradient descent** as Li et al. (2024): `t_hat = W' (x / sqrt(d)) + b`, `W'` and `b` start at 0,
//!   Adam on the mean squared error, batch 256, per-sigma learning rate
//!   `lr_sigma = lr0 sqrt(d) sigma_data^2 / (sigma_data^2 + sigma^2)` for `W'` (the scale of the optimal
//!   `W'` entries) and `5 lr0` for `b` (whose optimum, about the data mean, does not shrink with sigma),
//!   both cosine-decayed to 0 over the steps; `W = W' / sqrt(d)`.
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

use crate::edm::SIGMA_DATA;
use crate::network::{denoise_rows, Network};
use crate::rng::TrainRng;
use crate::st::{self, F32Tensor};
use crate::training_gaussian::TrainingGaussian;
use gaussdiff_core::blob::write::LinearMaps;
use gaussdiff_core::tensor::DType;
use gaussdiff_fit::dataset::Dataset;
use gaussdiff_fit::export;
use gaussdiff_fit::io::write_atomic;

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
    /// Batches per sigma (GD steps; the closed form sees the same batches).
    pub batches: usize,
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
    /// Mean squared error of GD on its last batch (per pixel).
    pub mse_gd: Option<f64>,
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
    if cfg.batch == 0 || cfg.batches == 0 {
        bail!("distill: batch and batches must be at least 1");
    }
    let run_gd = cfg.method != Method::Closed;
    let run_cf = cfg.method != Method::Gd;
    let dev = net.device().clone();
    let l = cfg.sigmas.len();
    let mut cf =
        DistilledMaps { sigmas: cfg.sigmas.clone(), d, w: Vec::with_capacity(l * d * d), b: Vec::with_capacity(l * d) };
    let mut gd = cf.clone();
    let mut report = Vec::new();
    let pb =
        if progress { indicatif::ProgressBar::new((l * cfg.batches) as u64) } else { indicatif::ProgressBar::hidden() };
    pb.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} batches  sigma {msg}  ETA {eta}")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let sqrt_d = (d as f64).sqrt();
    for (si, &sigma) in cfg.sigmas.iter().enumerate() {
        pb.set_message(format!("{sigma:.4}"));
        let mut rng = TrainRng::stream(cfg.seed, 0xD157 + si as u64);
        let mut mom = Moments::new(d);
        let lr_sigma = cfg.lr0 * sqrt_d * SIGMA_DATA * SIGMA_DATA / (SIGMA_DATA * SIGMA_DATA + sigma * sigma);
        // GD state: W' (d x d, out x in) and b, Adam moments.
        let mut wp = Tensor::zeros((d, d), candle_core::DType::F32, &dev)?;
        let mut bp = Tensor::zeros((1, d), candle_core::DType::F32, &dev)?;
        let (mut mw, mut vw) = (wp.zeros_like()?, wp.zeros_like()?);
        let (mut mb, mut vb) = (bp.zeros_like()?, bp.zeros_like()?);
        let (mut t_net, mut t_cf, mut t_gd) = (0.0, 0.0, 0.0);
        let mut last: Option<(Vec<f32>, Vec<f32>)> = None;
        let mut mse_gd = None;
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
                let t0 = Instant::now();
                let xs = (Tensor::from_slice(&x, (cfg.batch, d), &dev)? / sqrt_d)?;
                let tt = Tensor::from_slice(&t, (cfg.batch, d), &dev)?;
                let pred = xs.matmul(&wp.t()?)?.broadcast_add(&bp)?;
                let err = (pred - tt)?; // (B, d)
                let scale = 2.0 / (cfg.batch * d) as f64;
                let gw = (err.t()?.matmul(&xs)? * scale)?;
                let gb = (err.sum_keepdim(0)? * scale)?;
                if step + 1 == cfg.batches {
                    mse_gd = Some(err.sqr()?.mean_all()?.to_scalar::<f32>()? as f64);
                }
                let k = (step + 1) as i32;
                let decay = 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / cfg.batches as f64).cos());
                let (lr_w, lr_b) = (lr_sigma * decay, 5.0 * cfg.lr0 * decay);
                let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
                let (bc1, bc2) = (1.0 - b1.powi(k), 1.0 - b2.powi(k));
                let upd = |p: &Tensor, m: &mut Tensor, v: &mut Tensor, g: &Tensor, lr: f64| -> Result<Tensor> {
                    *m = ((&*m * b1)? + (g * (1.0 - b1))?)?;
                    *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
                    let step = ((&*m / bc1)? / ((&*v / bc2)?.sqrt()? + eps)?)?;
                    Ok((p - (step * lr)?)?)
                };
                wp = upd(&wp, &mut mw, &mut vw, &gw, lr_w)?;
                bp = upd(&bp, &mut mb, &mut vb, &gb, lr_b)?;
                t_gd += t0.elapsed().as_secs_f64();
            }
            if step + 1 == cfg.batches {
                last = Some((x, t));
            }
            pb.inc(1);
        }
        let (lx, lt) = last.ok_or_else(|| anyhow::anyhow!("no batches"))?;
        let mut rep = SigmaReport {
            sigma,
            samples: mom.n.max(cfg.batch * cfg.batches),
            w_rel_frob_gd_vs_closed: None,
            out_rel_gd_vs_closed: None,
            mse_closed: None,
            mse_gd,
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
        if run_gd {
            let wf: Vec<f32> = (wp / sqrt_d)?.flatten_all()?.to_vec1::<f32>()?;
            let bf: Vec<f32> = bp.flatten_all()?.to_vec1::<f32>()?;
            if let Some((cw, cb)) = &cf_wb {
                let num: f64 = wf.iter().zip(cw).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
                let den: f64 = cw.iter().map(|&b| (b as f64).powi(2)).sum();
                rep.w_rel_frob_gd_vs_closed = Some((num / den).sqrt());
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
