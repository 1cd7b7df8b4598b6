//! Batched denoisers compared by `metrics`: the trained network, the distilled linear maps, the
//! Gaussian of the training data, and the memorising optimal denoiser of the training set.
//!
//! All take row-major f32 batches `n x d` and one sigma.

use anyhow::Result;
use candle_core::{Device, Tensor};

use crate::distill::DistilledMaps;
use crate::network::{denoise_rows, Network};
use crate::training_gaussian::TrainingGaussian;

/// A denoiser over batches.
pub trait BatchDenoiser {
    /// Short name for tables and plots.
    fn label(&self) -> &str;
    /// `D(x; sigma)` for each row of `x`.
    fn denoise(&self, x: &[f32], sigma: f64) -> Result<Vec<f32>>;
}

/// The trained network (EMA weights as loaded).
#[derive(Debug)]
pub struct NetDenoiser<'a> {
    /// Network.
    pub net: &'a Network,
}

impl BatchDenoiser for NetDenoiser<'_> {
    fn label(&self) -> &str {
        "network"
    }
    fn denoise(&self, x: &[f32], sigma: f64) -> Result<Vec<f32>> {
        denoise_rows(self.net, x, sigma, 512)
    }
}

/// Distilled linear maps; between grid points the two neighbouring outputs are interpolated linearly
/// in `ln sigma`; outside the grid the nearest end map is used.
#[derive(Debug)]
pub struct DistilledDenoiser {
    /// Maps.
    pub maps: DistilledMaps,
    w: Vec<Tensor>,
    b: Vec<Tensor>,
}

impl DistilledDenoiser {
    /// Upload the maps.
    pub fn new(maps: DistilledMaps, device: &Device) -> Result<Self> {
        let d = maps.d;
        let mut w = Vec::new();
        let mut b = Vec::new();
        for i in 0..maps.sigmas.len() {
            w.push(Tensor::from_slice(&maps.w[i * d * d..(i + 1) * d * d], (d, d), device)?.t()?.contiguous()?);
            b.push(Tensor::from_slice(&maps.b[i * d..(i + 1) * d], (1, d), device)?);
        }
        Ok(Self { maps, w, b })
    }
    fn apply(&self, i: usize, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.w[i])?.broadcast_add(&self.b[i])?)
    }
    /// Grid position of sigma: `(i, t)` with output `(1-t) D_i + t D_{i+1}`, by core's log-sigma rule
    /// ([`log_sigma_weights`](gaussdiff_core::denoiser::linear::log_sigma_weights), the one the blob's
    /// linear denoiser applies in f32).
    pub fn locate(&self, sigma: f64) -> (usize, f64) {
        let s = &self.maps.sigmas;
        gaussdiff_core::denoiser::linear::log_sigma_weights(sigma, s.len(), |i| s[i])
    }
}

impl BatchDenoiser for DistilledDenoiser {
    fn label(&self) -> &str {
        "linear"
    }
    fn denoise(&self, x: &[f32], sigma: f64) -> Result<Vec<f32>> {
        let d = self.maps.d;
        let xt = Tensor::from_slice(x, (x.len() / d, d), self.w[0].device())?;
        let (i, t) = self.locate(sigma);
        let y = if t == 0.0 {
            self.apply(i, &xt)?
        } else {
            ((self.apply(i, &xt)? * (1.0 - t))? + (self.apply(i + 1, &xt)? * t)?)?
        };
        Ok(y.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// The Gaussian's optimal denoiser `mu + U diag(lambda/(lambda+sigma^2)) U^T (x - mu)` (f32 products).
#[derive(Debug)]
pub struct TrainingGaussianDenoiser {
    /// The fitted Gaussian (f64).
    pub g: TrainingGaussian,
    u_rows: Tensor,
    mu: Tensor,
}

impl TrainingGaussianDenoiser {
    /// Upload.
    pub fn new(g: TrainingGaussian, device: &Device) -> Result<Self> {
        let d = g.d;
        let u: Vec<f32> = g.u_rows.iter().map(|&v| v as f32).collect();
        let mu: Vec<f32> = g.mu.iter().map(|&v| v as f32).collect();
        Ok(Self { u_rows: Tensor::from_vec(u, (d, d), device)?, mu: Tensor::from_vec(mu, (1, d), device)?, g })
    }
}

impl BatchDenoiser for TrainingGaussianDenoiser {
    fn label(&self) -> &str {
        "gaussian"
    }
    fn denoise(&self, x: &[f32], sigma: f64) -> Result<Vec<f32>> {
        let d = self.g.d;
        let xt = Tensor::from_slice(x, (x.len() / d, d), self.u_rows.device())?;
        let f: Vec<f32> = self.g.factors(sigma).iter().map(|&v| v as f32).collect();
        let ft = Tensor::from_vec(f, (1, d), self.u_rows.device())?;
        let c = xt.broadcast_sub(&self.mu)?.matmul(&self.u_rows.t()?)?.broadcast_mul(&ft)?;
        Ok(c.matmul(&self.u_rows)?.broadcast_add(&self.mu)?.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// The memorising optimal denoiser of the training set:
/// `D*(x; sigma) = sum_i softmax_i(-|x - y_i|^2 / (2 sigma^2)) y_i`.
///
/// Squared distances come from one f32 matrix product (`|x|^2 - 2 x.y + |y|^2`, clamped at 0); the
/// softmax is taken in f64 with the row maximum subtracted; the weighted sum is an f32 product.
#[derive(Debug)]
pub struct MemorisingDenoiser {
    y: Tensor,
    y_sq: Vec<f32>,
    d: usize,
}

impl MemorisingDenoiser {
    /// Over training images `n x d`.
    pub fn new(images: &[f32], d: usize, device: &Device) -> Result<Self> {
        let n = images.len() / d;
        let y_sq = images.chunks_exact(d).map(|r| r.iter().map(|v| v * v).sum()).collect();
        Ok(Self { y: Tensor::from_slice(images, (n, d), device)?, y_sq, d })
    }
}

/// Squared distances between rows of `x` (m x d) and rows of `y` (n x d, squared norms `y_sq`), m x n.
pub fn sq_dists(x: &[f32], y: &Tensor, y_sq: &[f32], d: usize) -> Result<Vec<f32>> {
    let m = x.len() / d;
    let n = y_sq.len();
    let xt = Tensor::from_slice(x, (m, d), y.device())?;
    let dots = xt.matmul(&y.t()?)?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![0.0f32; m * n];
    for i in 0..m {
        let xs: f32 = x[i * d..(i + 1) * d].iter().map(|v| v * v).sum();
        for j in 0..n {
            out[i * n + j] = (xs - 2.0 * dots[i * n + j] + y_sq[j]).max(0.0);
        }
    }
    Ok(out)
}

impl BatchDenoiser for MemorisingDenoiser {
    fn label(&self) -> &str {
        "memorising"
    }
    fn denoise(&self, x: &[f32], sigma: f64) -> Result<Vec<f32>> {
        let d = self.d;
        let m = x.len() / d;
        let n = self.y_sq.len();
        let mut out = Vec::with_capacity(x.len());
        for chunk in x.chunks(256 * d) {
            let mc = chunk.len() / d;
            let dist = sq_dists(chunk, &self.y, &self.y_sq, d)?;
            let mut w = vec![0.0f32; mc * n];
            for i in 0..mc {
                let row = &dist[i * n..(i + 1) * n];
                let min = row.iter().fold(f32::INFINITY, |a, &b| a.min(b)) as f64;
                let mut z = 0.0f64;
                let mut e = vec![0.0f64; n];
                for j in 0..n {
                    e[j] = (-(row[j] as f64 - min) / (2.0 * sigma * sigma)).exp();
                    z += e[j];
                }
                for j in 0..n {
                    w[i * n + j] = (e[j] / z) as f32;
                }
            }
            let wt = Tensor::from_vec(w, (mc, n), self.y.device())?;
            out.extend(wt.matmul(&self.y)?.flatten_all()?.to_vec1::<f32>()?);
        }
        debug_assert_eq!(out.len(), m * d);
        Ok(out)
    }
}
