//! Gradient-descent distillation of one noise level (Li et al. 2024's estimator), run to convergence.
//!
//! Model `t_hat = W' (x / sqrt(d)) + b`, `W'` and `b` start at 0; Adam (beta 0.9, 0.999, eps 1e-8) on the
//! mean squared error over minibatches of `batch` rows of a fixed sample set (the one the closed form sees),
//! reshuffled every epoch (deterministic from the caller's generator), as Li et al. run Adam epochs over a
//! fixed set. Learning rates: `lr_sigma = lr0 sqrt(d) sigma_data^2 / (sigma_data^2 + sigma^2)` for `W'` (the
//! scale of the optimal `W'` entries), `5 lr0` for `b`.
//!
//! Stopping rule: after each epoch, the learning rates are halved when the epoch's mean loss has not dropped
//! by at least [`PLATEAU_REL`] (relative) below the best so far for [`PATIENCE`] epochs, and the run stops
//! when `|W_e - W_{e-1}|_F / |W_e|_F < tol` (the map moved less than `tol` over a whole epoch), or after
//! `max_epochs`. Halving removes Adam's minibatch jitter, so the relative change does fall below `tol`
//! once the loss stops improving; the patience keeps the full rate while the slow (low-variance)
//! directions still improve the loss a little, which is what the last percent of `W` needs at small
//! sigma. `W = W' / sqrt(d)`.
//!
//! Tuned on the digits MLP (d = 64, 16 batches of 256, `docs/results.md` section 2): with patience 1 and
//! a 1e-3 plateau the runs stopped after 30-70 epochs 3.5-7 % from the closed form at sigma <= 0.47; with
//! these values they take 300-380 epochs and agree to 1 % for sigma in [0.1, 80].

use anyhow::Result;
use candle_core::{Device, Tensor};

use crate::edm::SIGMA_DATA;
use crate::rng::TrainRng;

/// An epoch counts as an improvement when its loss is this much (relative) below the best so far.
pub const PLATEAU_REL: f64 = 1e-4;
/// Epochs without improvement before the learning rates halve.
pub const PATIENCE: usize = 20;

/// Settings of [`fit`].
#[derive(Clone, Copy, Debug)]
pub struct GdOptions {
    /// Minibatch rows (256 as in the paper).
    pub batch: usize,
    /// Most epochs over the sample set (Li et al.: 100).
    pub max_epochs: usize,
    /// Stop when one epoch changes W by less than this, relative (Frobenius).
    pub tol: f64,
    /// Base learning rate lr0.
    pub lr0: f64,
}

/// Result of [`fit`].
#[derive(Clone, Debug)]
pub struct GdFit {
    /// `W`, row-major `d x d` (output x input).
    pub w: Vec<f32>,
    /// `b`, `d`.
    pub b: Vec<f32>,
    /// Epochs run.
    pub epochs: usize,
    /// Adam steps taken.
    pub steps: usize,
    /// `|W_e - W_{e-1}| / |W_e|` of the last epoch.
    pub last_change: f64,
    /// Mean squared error per pixel on the whole sample set at the end.
    pub mse: f64,
}

/// Adam state of one parameter tensor.
struct Adam {
    m: Tensor,
    v: Tensor,
}

impl Adam {
    fn new(p: &Tensor) -> Result<Self> {
        Ok(Self { m: p.zeros_like()?, v: p.zeros_like()? })
    }
    /// One update of `p` with gradient `g`, step `k` (1-based) and learning rate `lr`.
    fn step(&mut self, p: &Tensor, g: &Tensor, k: i32, lr: f64) -> Result<Tensor> {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        self.m = ((&self.m * b1)? + (g * (1.0 - b1))?)?;
        self.v = ((&self.v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
        let (bc1, bc2) = (1.0 - b1.powi(k), 1.0 - b2.powi(k));
        let step = ((&self.m / bc1)? / ((&self.v / bc2)?.sqrt()? + eps)?)?;
        Ok((p - (step * lr)?)?)
    }
}

/// Relative Frobenius distance `|a - b| / |a|` (f64 accumulation).
pub fn rel_frobenius(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum();
    let den: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum();
    (num / den.max(1e-300)).sqrt()
}

/// Fits `t ~ W x + b` by Adam epochs over the rows of `(x, t)` (row-major `n x d`) at noise level
/// `sigma`; `on_epoch` is called after each epoch with its index (for a progress bar).
///
/// # Errors
/// Tensor errors from candle.
///
/// # Panics
/// If `x` and `t` differ in length or are not a whole number of rows, or `batch` is 0.
pub fn fit(
    (x, t): (&[f32], &[f32]),
    d: usize,
    sigma: f64,
    o: &GdOptions,
    rng: &mut TrainRng,
    dev: &Device,
    mut on_epoch: impl FnMut(usize),
) -> Result<GdFit> {
    assert!(x.len() == t.len() && d > 0 && x.len().is_multiple_of(d) && o.batch > 0, "gd fit: bad shapes");
    let n = x.len() / d;
    let sqrt_d = (d as f64).sqrt();
    let lr_w0 = o.lr0 * sqrt_d * SIGMA_DATA * SIGMA_DATA / (SIGMA_DATA * SIGMA_DATA + sigma * sigma);
    let lr_b0 = 5.0 * o.lr0;
    let xs: Vec<f32> = x.iter().map(|&v| (f64::from(v) / sqrt_d) as f32).collect();
    let mut wp = Tensor::zeros((d, d), candle_core::DType::F32, dev)?;
    let mut bp = Tensor::zeros((1, d), candle_core::DType::F32, dev)?;
    let (mut aw, mut ab) = (Adam::new(&wp)?, Adam::new(&bp)?);
    let (mut lr_mult, mut best) = (1.0f64, f64::INFINITY);
    let mut bad = 0usize;
    let (mut steps, mut epochs, mut last_change) = (0usize, 0usize, f64::INFINITY);
    let mut w_prev = vec![0.0f32; d * d];
    let (mut xb, mut tb) = (Vec::with_capacity(o.batch * d), Vec::with_capacity(o.batch * d));
    for epoch in 0..o.max_epochs {
        let perm = rng.permutation(n);
        let mut loss_sum = 0.0;
        for rows in perm.chunks(o.batch) {
            xb.clear();
            tb.clear();
            for &r in rows {
                xb.extend_from_slice(&xs[r * d..(r + 1) * d]);
                tb.extend_from_slice(&t[r * d..(r + 1) * d]);
            }
            let m = rows.len();
            let xt = Tensor::from_slice(&xb, (m, d), dev)?;
            let tt = Tensor::from_slice(&tb, (m, d), dev)?;
            let err = (xt.matmul(&wp.t()?)?.broadcast_add(&bp)? - tt)?;
            let scale = 2.0 / (m * d) as f64;
            let gw = (err.t()?.matmul(&xt)? * scale)?;
            let gb = (err.sum_keepdim(0)? * scale)?;
            loss_sum += f64::from(err.sqr()?.mean_all()?.to_scalar::<f32>()?) * m as f64;
            steps += 1;
            wp = aw.step(&wp, &gw, steps as i32, lr_w0 * lr_mult)?;
            bp = ab.step(&bp, &gb, steps as i32, lr_b0 * lr_mult)?;
        }
        epochs = epoch + 1;
        let loss = loss_sum / n as f64;
        if loss > best * (1.0 - PLATEAU_REL) {
            bad += 1;
            if bad >= PATIENCE {
                lr_mult *= 0.5;
                bad = 0;
            }
        } else {
            bad = 0;
        }
        best = best.min(loss);
        let w_now = wp.flatten_all()?.to_vec1::<f32>()?;
        last_change = rel_frobenius(&w_now, &w_prev);
        w_prev = w_now;
        on_epoch(epoch);
        if last_change < o.tol {
            break;
        }
    }
    // Final loss on every row.
    let xt = Tensor::from_slice(&xs, (n, d), dev)?;
    let tt = Tensor::from_slice(t, (n, d), dev)?;
    let mse = f64::from((xt.matmul(&wp.t()?)?.broadcast_add(&bp)? - tt)?.sqr()?.mean_all()?.to_scalar::<f32>()?);
    Ok(GdFit {
        w: (wp / sqrt_d)?.flatten_all()?.to_vec1::<f32>()?,
        b: bp.flatten_all()?.to_vec1::<f32>()?,
        epochs,
        steps,
        last_change,
        mse,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A known affine map on correlated Gaussian inputs at several sigmas: GD reaches the least-squares
    /// solution (here the generating map, the targets being noise-free) to 2 % at the default settings.
    #[test]
    fn converges_to_the_generating_map() {
        let (d, n) = (16, 4096);
        let mut rng = TrainRng::stream(1, 2);
        // A random symmetric shrinkage map W* = Q diag(l / (l + sigma^2)) Q^T-like: any fixed dense map.
        let w_star: Vec<f32> = rng.normals(d * d).iter().map(|v| v * 0.2).collect();
        let b_star: Vec<f32> = rng.normals(d).iter().map(|v| v * 0.1).collect();
        for sigma in [0.1, 1.0, 10.0] {
            // Inputs: low-rank correlated data plus sigma noise, as distillation sees.
            let mix: Vec<f32> = rng.normals(4 * d);
            let z = rng.normals(n * 4);
            let e = rng.normals(n * d);
            let x: Vec<f32> = (0..n * d)
                .map(|k| {
                    let (r, j) = (k / d, k % d);
                    (0..4).map(|q| z[r * 4 + q] * mix[q * d + j] * 0.5).sum::<f32>() + sigma as f32 * e[k]
                })
                .collect();
            let t: Vec<f32> = (0..n * d)
                .map(|k| {
                    let (r, i) = (k / d, k % d);
                    b_star[i] + (0..d).map(|j| w_star[i * d + j] * x[r * d + j]).sum::<f32>()
                })
                .collect();
            let o = GdOptions {
                batch: 256,
                max_epochs: crate::distill::DEFAULT_EPOCHS,
                tol: crate::distill::DEFAULT_TOL,
                lr0: crate::distill::DEFAULT_LR0,
            };
            let f = fit((&x, &t), d, sigma, &o, &mut TrainRng::stream(3, 4), &Device::Cpu, |_| {}).unwrap();
            let err = rel_frobenius(&w_star, &f.w);
            assert!(err < 0.02, "sigma {sigma}: |W_gd - W*| / |W*| = {err} after {} epochs", f.epochs);
        }
    }
}
