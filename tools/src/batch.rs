//! Batched host sampler for Gaussian blobs: many samples at once through faer f32 matrix products.
//!
//! This is the throughput path (`bench-sample`). It computes the same algorithms as
//! `gaussdiff_core::sampler` (the EDM Euler/Heun loop without churn, and the exact probability-flow
//! solution) on a `d x B` matrix whose columns are samples, but its matrix products sum in a different
//! order than the core's fixed `dot4` order and its element-wise updates are regrouped (below), so its
//! samples agree with the per-sample path only to f32 rounding (tested), not bit for bit. The per-sample
//! core path is what the firmware reproduces exactly.
//!
//! It is one of two batched Heun loops on the host, on purpose: the trainer's
//! (`gaussdiff_trainer::measures::heun_from`) runs any candle denoiser (network, distilled maps,
//! memoriser) with f64 noise levels, while this one fuses a Gaussian blob's denoiser into the f32 update
//! below; sharing one loop would change the bits of one of them.
//!
//! # Formulas
//! With `c = U^T x - U^T mu` (`k` coefficients per sample, `U^T mu` precomputed in f64), the denoiser is
//! `D(x; sigma) = mu + f (x - mu) + U diag(g - f) c`, `g_k = lambda_k/(lambda_k+sigma^2)`, `f = c/(c+sigma^2)`
//! for the floor `c`: one product `(k x d)(d x B)` for `c` and one `(d x k)(k x B)` accumulated into an
//! output that an element-wise pass has prepared, i.e. `2 d k` multiply-adds per sample and evaluation, as
//! in the NumPy baseline (`bench/bench_sample.py`). Each Euler/Heun step fuses the denoiser with its update:
//! ```text
//! d_cur   = (x - D(x; sigma_cur)) / sigma_cur = (1-f)/sigma_cur (x - mu) - U diag((g-f)/sigma_cur) c
//! x_next  = x + h d_cur,   h = sigma_next - sigma_cur
//! Heun:  x <- x + h/2 d_cur + h/2 (1-f')/sigma_next (x_next - mu) - U diag(h/2 (g'-f')/sigma_next) c'
//! ```
//! (primes at `sigma_next`, `c'` from `x_next`), and the last step to `sigma = 0` returns `D(x; sigma_cur)`.
//! The exact solution from `sigma_t` is the same affine form with `h_k = sqrt(lambda_k/(lambda_k+sigma_t^2))`
//! in place of `g_k` (and `sqrt(c/(c+sigma_t^2))` for `f`).
//!
//! # Threads and determinism
//! Columns are cut into fixed chunks of [`CHUNK`] samples; each chunk runs its whole trajectory with
//! sequential products (small enough to stay in a core's L2 cache), and threads only pick chunks. The chunk
//! boundaries do not depend on the thread count, so neither do the bits (tested).

use faer::{Accum, Mat, MatMut, MatRef, Par};
use gaussdiff_core::denoiser::{Denoiser, GaussianDenoiser};
use gaussdiff_core::sampler::Sampler;

/// Samples per chunk: `d x CHUNK` f32 matrices (three of them for Heun) stay in L2 for d = 784.
pub const CHUNK: usize = 128;

/// A Gaussian denoiser decoded to f32 matrices for batched evaluation.
#[derive(Debug, Clone)]
pub struct BatchGaussian {
    mu: Vec<f32>,
    /// `d x k`, columns are eigenvectors.
    u: Mat<f32>,
    /// `U^T mu`, accumulated in f64.
    ut_mu: Vec<f32>,
    lambda: Vec<f32>,
    floor: f32,
    threads: usize,
}

/// `num/den` with the convention `0/0 = 0` (a zero-variance direction at sigma = 0).
fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// Eigenvector components below this magnitude are set to 0 (see [`flush_tiny`]).
pub const TINY: f32 = 1e-20;

/// `v`, or 0 if `|v| < TINY`. Zero-variance pixels (MNIST's border) get eigenvector components that are
/// f64 round-off, down to f32 subnormals; their products with the coefficients are subnormal too, and
/// every subnormal result costs the CPU a microcode assist (the batched Heun ran 2-3x slower). Such a
/// component changes a pixel by less than `TINY * |c|`, far below f32 resolution for pixels in [-1, 1].
fn flush_tiny(v: f32) -> f32 {
    if v.abs() < TINY {
        0.0
    } else {
        v
    }
}

/// Per-evaluation factors of the affine map `a x + b mu + U diag(s) c`.
struct Affine {
    a: f32,
    b: f32,
    s: Vec<f32>,
}

impl BatchGaussian {
    /// Decode `g` (any storage type) to f32; `threads = 0` uses every core, 1 runs on the calling thread.
    pub fn new(g: &GaussianDenoiser<'_>, threads: usize) -> Self {
        let d = g.dim();
        let k = g.rank();
        let (mu_t, u_t) = (g.mu(), g.u_t());
        let mu: Vec<f32> = (0..d).map(|j| mu_t.get(0, j)).collect();
        let u = Mat::<f32>::from_fn(d, k, |r, c| flush_tiny(u_t.get(c, r)));
        let ut_mu =
            (0..k).map(|c| (0..d).map(|r| f64::from(u[(r, c)]) * f64::from(mu[r])).sum::<f64>() as f32).collect();
        let lambda = (0..k).map(|i| g.lambda(i)).collect();
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |t| t.get()) } else { threads };
        Self { mu, u, ut_mu, lambda, floor: g.floor(), threads }
    }

    /// `g_k = lambda_k/(lambda_k+sigma^2)` and `f = c/(c+sigma^2)` (f64, rounded once).
    fn shrink(&self, sigma: f32) -> (Vec<f32>, f32) {
        let s2 = f64::from(sigma) * f64::from(sigma);
        let g = self.lambda.iter().map(|&l| ratio(f64::from(l), f64::from(l) + s2) as f32).collect();
        (g, ratio(f64::from(self.floor), f64::from(self.floor) + s2) as f32)
    }

    /// `coef = diag(s) (U^T src - U^T mu)`.
    fn coefficients(&self, src: MatRef<'_, f32>, s: &[f32], coef: &mut Mat<f32>) {
        faer::linalg::matmul::matmul(coef.as_mut(), Accum::Replace, self.u.transpose(), src, 1.0, Par::Seq);
        for j in 0..coef.ncols() {
            for ((c, &sk), &m) in coef.col_as_slice_mut(j).iter_mut().zip(s).zip(&self.ut_mu) {
                *c = (*c - m) * sk;
            }
        }
    }

    /// `dst += U coef`.
    fn add_basis(&self, dst: MatMut<'_, f32>, coef: &Mat<f32>) {
        faer::linalg::matmul::matmul(dst, Accum::Add, self.u.as_ref(), coef.as_ref(), 1.0, Par::Seq);
    }

    /// In place on one chunk: `x <- a x + b mu + U diag(s) (U^T x - U^T mu)`.
    fn affine_in_place(&self, mut x: MatMut<'_, f32>, t: &Affine, coef: &mut Mat<f32>) {
        self.coefficients(x.as_ref(), &t.s, coef);
        for j in 0..x.ncols() {
            if let Some(col) = x.as_mut().col_mut(j).try_as_col_major_mut().map(|c| c.as_slice_mut()) {
                for (v, &m) in col.iter_mut().zip(&self.mu) {
                    *v = t.a * *v + t.b * m;
                }
            }
        }
        self.add_basis(x, coef);
    }

    /// The denoiser as an affine map: `D(x; sigma) = (f) x + (1-f) mu + U diag(g - f) c`.
    fn denoiser_affine(&self, sigma: f32) -> Affine {
        let (g, f) = self.shrink(sigma);
        Affine { a: f, b: 1.0 - f, s: g.iter().map(|&gk| gk - f).collect() }
    }

    /// `D(x; sigma)` for every column of `x`, in place (the tests check it against the core denoiser).
    #[cfg(test)]
    pub fn denoise(&self, x: &mut Mat<f32>, sigma: f32) {
        let t = self.denoiser_affine(sigma);
        self.for_each_chunk(x, |chunk| {
            let mut coef = Mat::<f32>::zeros(self.lambda.len(), chunk.ncols());
            self.affine_in_place(chunk, &t, &mut coef);
        });
    }

    /// Exact probability-flow solution from `sigma_t` to 0, in place on every column.
    pub fn sample_exact(&self, x: &mut Mat<f32>, sigma_t: f32) {
        let t2 = f64::from(sigma_t) * f64::from(sigma_t);
        let h = |l: f32| ratio(f64::from(l), f64::from(l) + t2).sqrt() as f32;
        let hf = h(self.floor);
        let t = Affine { a: hf, b: 1.0 - hf, s: self.lambda.iter().map(|&l| h(l) - hf).collect() };
        self.for_each_chunk(x, |chunk| {
            let mut coef = Mat::<f32>::zeros(self.lambda.len(), chunk.ncols());
            self.affine_in_place(chunk, &t, &mut coef);
        });
    }

    /// The EDM Euler/Heun loop of `gaussdiff_core::sampler::sample` (no churn) on every column.
    ///
    /// # Panics
    /// If `sampler` is [`Sampler::Exact`] (that is [`BatchGaussian::sample_exact`]).
    pub fn sample_ode(&self, x: &mut Mat<f32>, sigmas: &[f32], sampler: Sampler) {
        assert!(sampler.is_ode(), "sample_ode: the exact sampler has no steps (use sample_exact)");
        self.for_each_chunk(x, |chunk| self.ode_chunk(chunk, sigmas, sampler));
    }

    /// One chunk's whole trajectory (see the module docs for the fused updates).
    fn ode_chunk(&self, mut x: MatMut<'_, f32>, sigmas: &[f32], sampler: Sampler) {
        let (d, b, k) = (x.nrows(), x.ncols(), self.lambda.len());
        let mut coef = Mat::<f32>::zeros(k, b);
        let mut d_cur = Mat::<f32>::zeros(d, b);
        let mut x_next = Mat::<f32>::zeros(d, b);
        for w in sigmas.windows(2) {
            let (sigma_cur, sigma_next) = (w[0], w[1]);
            if sigma_next == 0.0 {
                self.affine_in_place(x.as_mut(), &self.denoiser_affine(sigma_cur), &mut coef);
                continue;
            }
            let h = sigma_next - sigma_cur;
            // d_cur = (1-f)/sigma (x - mu) - U diag((g-f)/sigma) c.
            let (g, f) = self.shrink(sigma_cur);
            let s: Vec<f32> = g.iter().map(|&gk| -(gk - f) / sigma_cur).collect();
            self.coefficients(x.as_ref(), &s, &mut coef);
            let a = (1.0 - f) / sigma_cur;
            for j in 0..b {
                let (xs, dc) = (col(x.as_ref(), j), d_cur.col_as_slice_mut(j));
                for ((o, &v), &m) in dc.iter_mut().zip(xs).zip(&self.mu) {
                    *o = a * (v - m);
                }
            }
            self.add_basis(d_cur.as_mut(), &coef);
            if sampler == Sampler::Euler {
                for j in 0..b {
                    let (xs, dc) = (col_mut(x.as_mut(), j), d_cur.col_as_slice(j));
                    for (v, &dv) in xs.iter_mut().zip(dc) {
                        *v += h * dv;
                    }
                }
                continue;
            }
            for j in 0..b {
                let (xs, dc, xn) = (col(x.as_ref(), j), d_cur.col_as_slice(j), x_next.col_as_slice_mut(j));
                for ((o, &v), &dv) in xn.iter_mut().zip(xs).zip(dc) {
                    *o = v + h * dv;
                }
            }
            // x <- x + h/2 d_cur + h/2 d_prime, d_prime from x_next at sigma_next.
            let (g, f) = self.shrink(sigma_next);
            let half = 0.5 * h;
            let s: Vec<f32> = g.iter().map(|&gk| -half * (gk - f) / sigma_next).collect();
            self.coefficients(x_next.as_ref(), &s, &mut coef);
            let a = half * (1.0 - f) / sigma_next;
            for j in 0..b {
                let (xs, dc, xn) = (col_mut(x.as_mut(), j), d_cur.col_as_slice(j), x_next.col_as_slice(j));
                for (((v, &dv), &n), &m) in xs.iter_mut().zip(dc).zip(xn).zip(&self.mu) {
                    *v += half * dv + a * (n - m);
                }
            }
            self.add_basis(x.as_mut(), &coef);
        }
    }

    /// Run `f` on every [`CHUNK`]-column slice of `x`, spread over the threads (chunk `i` on thread
    /// `i % threads`; the chunks, not the threads, fix the arithmetic).
    fn for_each_chunk(&self, x: &mut Mat<f32>, f: impl Fn(MatMut<'_, f32>) + Sync) {
        let mut chunks = Vec::new();
        let mut rest = x.as_mut();
        while rest.ncols() > 0 {
            let w = CHUNK.min(rest.ncols());
            let (head, tail) = rest.split_at_col_mut(w);
            chunks.push(head);
            rest = tail;
        }
        let threads = self.threads.min(chunks.len());
        if threads <= 1 {
            chunks.into_iter().for_each(f);
            return;
        }
        let mut per_thread: Vec<Vec<MatMut<'_, f32>>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, c) in chunks.into_iter().enumerate() {
            per_thread[i % threads].push(c);
        }
        let f = &f;
        std::thread::scope(|s| {
            let mut it = per_thread.into_iter();
            let mine = it.next();
            for work in it {
                s.spawn(move || work.into_iter().for_each(f));
            }
            mine.into_iter().flatten().for_each(f);
        });
    }
}

/// Column `j` of a column-major matrix as a slice.
fn col(m: MatRef<'_, f32>, j: usize) -> &[f32] {
    m.col(j).try_as_col_major().map_or(&[], |c| c.as_slice())
}

/// Column `j` of a column-major matrix as a mutable slice.
fn col_mut(m: MatMut<'_, f32>, j: usize) -> &mut [f32] {
    m.col_mut(j).try_as_col_major_mut().map_or(&mut [], |c| c.as_slice_mut())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gaussdiff_core::blob::write::{write_gaussian, WriteOptions};
    use gaussdiff_core::blob::Blob;
    use gaussdiff_core::sampler;
    use gaussdiff_core::schedule::EdmSchedule;
    use gaussdiff_fit::dataset::{load, LoadOptions};
    use gaussdiff_fit::gaussian::{fit, FitOptions, Floor, Rank};

    fn digits_blob(floor: Floor) -> (Vec<u8>, usize) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sklearn_digits/digits.csv.gz");
        let ds = load(&path, &LoadOptions::default()).unwrap();
        let g = fit(&ds.images, ds.dim(), &FitOptions { rank: Rank::Fixed(20), floor }).unwrap();
        (write_gaussian(&g.to_params(ds.shape), &WriteOptions::default()).unwrap(), ds.dim())
    }

    fn noise(n: usize, d: usize) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                let mut x = vec![0.0f32; d];
                gaussdiff_core::sampler::initial_noise(5, i as u64, 80.0, &mut x);
                x
            })
            .collect()
    }

    /// The batched sampler agrees with the per-sample core path to f32 rounding (with and without a
    /// floor, more samples than one chunk, Euler and Heun, exact).
    #[test]
    fn batched_matches_core_per_sample() {
        for floor in [Floor::Auto, Floor::None] {
            let (bytes, d) = digits_blob(floor);
            let blob = Blob::parse(&bytes).unwrap();
            let model = blob.model().unwrap();
            let gd = *model.as_gaussian().unwrap();
            let n = CHUNK + 9;
            let mut sigmas = vec![0.0f32; 19];
            EdmSchedule::EDM.fill(18, &mut sigmas);
            let noise = noise(n, d);
            let bg = BatchGaussian::new(&gd, 2);
            let mut xe = Mat::<f32>::from_fn(d, n, |i, j| noise[j][i]);
            let mut xh = xe.clone();
            let mut xu = xe.clone();
            let mut xd = xe.clone();
            bg.sample_exact(&mut xe, 80.0);
            bg.sample_ode(&mut xh, &sigmas, Sampler::Heun);
            bg.sample_ode(&mut xu, &sigmas, Sampler::Euler);
            bg.denoise(&mut xd, 3.0);
            let mut scratch =
                vec![0.0f32; sampler::scratch_len(d, model.scratch_len()).max(sampler::exact_scratch_len(&gd))];
            let mut den = vec![0.0f32; d];
            for j in (0..n).step_by(7) {
                let mut a = noise[j].clone();
                sampler::sample_exact(&gd, 80.0, &mut a, &mut scratch);
                let mut b = noise[j].clone();
                sampler::sample(&model, Sampler::Heun, &sigmas, None, &mut b, &mut scratch, |_, _| {});
                let mut e = noise[j].clone();
                sampler::sample(&model, Sampler::Euler, &sigmas, None, &mut e, &mut scratch, |_, _| {});
                model.denoise(&noise[j], 3.0, &mut den, &mut scratch);
                for i in 0..d {
                    assert!((a[i] - xe[(i, j)]).abs() < 1e-4, "exact {i},{j}: {} vs {}", a[i], xe[(i, j)]);
                    assert!((b[i] - xh[(i, j)]).abs() < 1e-3, "heun {i},{j}: {} vs {}", b[i], xh[(i, j)]);
                    assert!((e[i] - xu[(i, j)]).abs() < 1e-3, "euler {i},{j}: {} vs {}", e[i], xu[(i, j)]);
                    assert!((den[i] - xd[(i, j)]).abs() < 1e-3, "denoise {i},{j}: {} vs {}", den[i], xd[(i, j)]);
                }
            }
        }
    }

    /// Same bits for 1, 2 and 3 threads (the chunks, not the threads, fix the arithmetic).
    #[test]
    fn batched_bits_do_not_depend_on_threads() {
        let (bytes, d) = digits_blob(Floor::Auto);
        let blob = Blob::parse(&bytes).unwrap();
        let model = blob.model().unwrap();
        let gd = *model.as_gaussian().unwrap();
        let n = 3 * CHUNK + 5;
        let noise = noise(n, d);
        let mut sigmas = vec![0.0f32; 11];
        EdmSchedule::EDM.fill(10, &mut sigmas);
        let run = |threads: usize| {
            let bg = BatchGaussian::new(&gd, threads);
            let mut xe = Mat::<f32>::from_fn(d, n, |i, j| noise[j][i]);
            let mut xh = xe.clone();
            bg.sample_exact(&mut xe, 80.0);
            bg.sample_ode(&mut xh, &sigmas, Sampler::Heun);
            let mut bits = Vec::with_capacity(2 * n * d);
            for m in [&xe, &xh] {
                for j in 0..n {
                    bits.extend((0..d).map(|i| m[(i, j)].to_bits()));
                }
            }
            bits
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }
}
