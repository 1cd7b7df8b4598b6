//! Batched host sampler for Gaussian blobs: many samples at once through faer matrix products.
//!
//! This is the throughput path (`bench-sample`). It computes the same algorithms as
//! `gaussdiff_core::sampler` (the EDM Euler/Heun loop without churn, and the exact probability-flow
//! solution) on a `d x B` matrix whose columns are samples, but its matrix products sum in a different
//! order than the core's fixed `dot4` order, so its samples agree with the per-sample path only to f32
//! rounding (tested), not bit for bit. The per-sample core path is what the firmware reproduces exactly.
//!
//! Denoiser, with `Y = X - mu 1^T`: `D = mu 1^T + f Y + U diag(g - f) U^T Y`, `g_k = lambda_k/(lambda_k+sigma^2)`,
//! `f = c/(c+sigma^2)`: two products `(k x d)(d x B)` and `(d x k)(k x B)`, i.e. `2 d k` MACs per sample.
//! The exact solution has the same form with `h_k = sqrt((lambda_k+sigma^2)/(lambda_k+sigma_t^2))`.

use faer::{Accum, Mat, Par};
use gaussdiff_core::denoiser::{Denoiser, GaussianDenoiser};
use gaussdiff_core::sampler::Solver;

/// A Gaussian denoiser decoded to f32 matrices for batched evaluation.
#[derive(Debug, Clone)]
pub struct BatchGaussian {
    mu: Vec<f32>,
    /// `d x k`, columns are eigenvectors.
    u: Mat<f32>,
    lambda: Vec<f32>,
    floor: f32,
    par: Par,
}

/// `num/den` with the convention `0/0 = 0` (a zero-variance direction at sigma = 0).
fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

impl BatchGaussian {
    /// Decode `g` (any storage type) to f32; `threads = 0` uses every core, 1 runs sequentially.
    pub fn new(g: &GaussianDenoiser<'_>, threads: usize) -> Self {
        let d = g.dim();
        let k = g.rank();
        let (mu_t, u_t) = (g.mu(), g.u_t());
        let mu = (0..d).map(|j| mu_t.get(0, j)).collect();
        let u = Mat::<f32>::from_fn(d, k, |r, c| u_t.get(c, r));
        let lambda = (0..k).map(|i| g.lambda(i)).collect();
        let par = if threads == 1 { Par::Seq } else { Par::rayon(threads) };
        Self { mu, u, lambda, floor: g.floor(), par }
    }

    /// `out = mu + f Y + U diag(s - f) U^T Y`, `Y = x - mu`; `coef` is a `k x B` scratch.
    fn affine(&self, x: &Mat<f32>, s: &[f32], f: f32, out: &mut Mat<f32>, coef: &mut Mat<f32>) {
        for j in 0..x.ncols() {
            let (xs, os) = (x.col_as_slice(j), out.col_as_slice_mut(j));
            for ((o, &v), &m) in os.iter_mut().zip(xs).zip(&self.mu) {
                *o = v - m;
            }
        }
        faer::linalg::matmul::matmul(coef.as_mut(), Accum::Replace, self.u.transpose(), out.as_ref(), 1.0, self.par);
        for j in 0..x.ncols() {
            for (c, sk) in coef.col_as_slice_mut(j).iter_mut().zip(s) {
                *c *= sk - f;
            }
            out.col_as_slice_mut(j).iter_mut().for_each(|o| *o *= f);
        }
        faer::linalg::matmul::matmul(out.as_mut(), Accum::Add, self.u.as_ref(), coef.as_ref(), 1.0, self.par);
        for j in 0..x.ncols() {
            for (o, &m) in out.col_as_slice_mut(j).iter_mut().zip(&self.mu) {
                *o += m;
            }
        }
    }

    /// `D(x; sigma)` for every column of `x`.
    pub fn denoise(&self, x: &Mat<f32>, sigma: f32, out: &mut Mat<f32>, coef: &mut Mat<f32>) {
        let s2 = f64::from(sigma) * f64::from(sigma);
        let g: Vec<f32> = self.lambda.iter().map(|&l| ratio(f64::from(l), f64::from(l) + s2) as f32).collect();
        let f = ratio(f64::from(self.floor), f64::from(self.floor) + s2) as f32;
        self.affine(x, &g, f, out, coef);
    }

    /// Exact probability-flow solution from `sigma_t` to 0, in place on every column.
    pub fn sample_exact(&self, x: &mut Mat<f32>, sigma_t: f32) {
        let t2 = f64::from(sigma_t) * f64::from(sigma_t);
        let h = |l: f32| ratio(f64::from(l), f64::from(l) + t2).sqrt() as f32;
        let s: Vec<f32> = self.lambda.iter().map(|&l| h(l)).collect();
        let f = h(self.floor);
        let mut coef = Mat::<f32>::zeros(self.lambda.len(), x.ncols());
        let mut out = Mat::<f32>::zeros(x.nrows(), x.ncols());
        self.affine(x, &s, f, &mut out, &mut coef);
        *x = out;
    }

    /// The EDM Euler/Heun loop of `gaussdiff_core::sampler::sample` (no churn) on every column.
    pub fn sample_ode(&self, x: &mut Mat<f32>, sigmas: &[f32], solver: Solver) {
        let (d, b) = (x.nrows(), x.ncols());
        let mut coef = Mat::<f32>::zeros(self.lambda.len(), b);
        let mut den = Mat::<f32>::zeros(d, b);
        let mut d_cur = Mat::<f32>::zeros(d, b);
        let mut x_hat = Mat::<f32>::zeros(d, b);
        for w in sigmas.windows(2) {
            let (sigma_cur, sigma_next) = (w[0], w[1]);
            self.denoise(x, sigma_cur, &mut den, &mut coef);
            if sigma_next == 0.0 {
                x.copy_from(&den);
                continue;
            }
            let h = sigma_next - sigma_cur;
            x_hat.copy_from(&*x);
            for j in 0..b {
                let (xs, xh, dn, dc) =
                    (x.col_as_slice_mut(j), x_hat.col_as_slice(j), den.col_as_slice(j), d_cur.col_as_slice_mut(j));
                for i in 0..d {
                    dc[i] = (xh[i] - dn[i]) / sigma_cur;
                    xs[i] = xh[i] + h * dc[i];
                }
            }
            if solver == Solver::Heun {
                self.denoise(x, sigma_next, &mut den, &mut coef);
                for j in 0..b {
                    let (xs, xh, dn, dc) =
                        (x.col_as_slice_mut(j), x_hat.col_as_slice(j), den.col_as_slice(j), d_cur.col_as_slice(j));
                    for i in 0..d {
                        let d_prime = (xs[i] - dn[i]) / sigma_next;
                        xs[i] = xh[i] + h * (0.5 * dc[i] + 0.5 * d_prime);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gaussdiff_core::blob::write::{write_gaussian, WriteOptions};
    use gaussdiff_core::blob::Blob;
    use gaussdiff_core::dataset::{load, LoadOptions};
    use gaussdiff_core::fit::{fit, FitOptions, Floor, Rank};
    use gaussdiff_core::sampler;
    use gaussdiff_core::schedule::EdmSchedule;

    /// The batched sampler agrees with the per-sample core path to f32 rounding.
    #[test]
    fn batched_matches_core_per_sample() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn_digits/digits.csv.gz");
        let ds = load(&path, &LoadOptions::default()).unwrap();
        let g = fit(&ds.images, ds.dim(), &FitOptions { rank: Rank::Fixed(20), floor: Floor::Auto }).unwrap();
        let bytes = write_gaussian(&g.to_params(ds.shape), &WriteOptions::default()).unwrap();
        let blob = Blob::parse(&bytes).unwrap();
        let model = blob.model().unwrap();
        let gd = *model.as_gaussian().unwrap();
        let d = ds.dim();
        let n = 8;
        let mut sigmas = vec![0.0f32; 19];
        EdmSchedule::EDM.fill(18, &mut sigmas);
        let noise: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                let mut x = vec![0.0f32; d];
                crate::util::initial_noise(5, i as u64, 80.0, &mut x);
                x
            })
            .collect();
        for threads in [1, 2] {
            let bg = BatchGaussian::new(&gd, threads);
            let mut xe = Mat::<f32>::from_fn(d, n, |i, j| noise[j][i]);
            let mut xh = xe.clone();
            bg.sample_exact(&mut xe, 80.0);
            bg.sample_ode(&mut xh, &sigmas, Solver::Heun);
            let mut scratch =
                vec![0.0f32; sampler::scratch_len(d, model.scratch_len()).max(sampler::exact_scratch_len(&gd))];
            for j in 0..n {
                let mut a = noise[j].clone();
                sampler::sample_exact(&gd, 80.0, &mut a, &mut scratch);
                let mut b = noise[j].clone();
                sampler::sample(&model, Solver::Heun, &sigmas, None, &mut b, &mut scratch, |_, _| {});
                for i in 0..d {
                    assert!((a[i] - xe[(i, j)]).abs() < 1e-4, "exact {i},{j}: {} vs {}", a[i], xe[(i, j)]);
                    assert!((b[i] - xh[(i, j)]).abs() < 1e-3, "heun {i},{j}: {} vs {}", b[i], xh[(i, j)]);
                }
            }
        }
    }
}
