//! `metrics`: how Gaussian is a trained denoiser?
//!
//! Kernels (each has an f64 reference in `tests/metrics.rs`):
//! * [`denoiser_difference`]: `E_x |D1(x) - D2(x)|_2 / |D1(x)|_2` over noisy held-out images
//!   `x = y + sigma z`.
//! * [`linearity_score`]: mean over pairs of `cos(D(sqrt(a) x1 + sqrt(1-a) x2), sqrt(a) D(x1) + sqrt(1-a) D(x2))`
//!   for `a` in [`ALPHAS`] (Li et al. 2024). Exactly 1 for a linear map; an affine map `W x + b` with
//!   `b != 0` (the Gaussian's denoiser, for instance) scores slightly below 1, because the right-hand side
//!   carries `(sqrt(a) + sqrt(1-a)) b` instead of `b`.
//! * [`rel_frobenius`]: `|W - W_G|_F / |W_G|_F` with `W_G = U diag(lambda/(lambda+sigma^2)) U^T`.
//! * [`heun_sample`]: EDM's Heun sampler (batched) so two denoisers can start from the same noise;
//!   sample agreement is the mean squared difference per pixel.
//! * [`nearest_two`] / [`memorisation_fraction`]: a sample counts as memorised when its nearest
//!   training image is closer than 1/3 of the distance to the second nearest (`d1 < d2 / 3`, Euclidean
//!   distance in model space) -- the rule of Yoon et al. (2023) and Li et al. (2024).

use anyhow::Result;

use gaussdiff_fit::nearest::{nearest_rows, Neighbours};

use crate::denoisers::BatchDenoiser;
use crate::edm::edm_sigmas;

/// Interpolation weights of the linearity score.
pub const ALPHAS: [f64; 5] = [0.99, 0.8675, 0.745, 0.6225, 0.5];

/// Sums over one row pair `(a_i, b_i)`, each accumulated in f64 in column order.
#[derive(Clone, Copy, Debug, Default)]
pub struct RowSums {
    /// `|a_i - b_i|^2`.
    pub diff2: f64,
    /// `|a_i|^2`.
    pub aa: f64,
    /// `|b_i|^2`.
    pub bb: f64,
    /// `a_i . b_i`.
    pub ab: f64,
}

/// Mean over the rows of row-major `n x d` matrices `a` and `b` (`n = a.len() / d`) of `f` of the row's
/// [`RowSums`].
pub fn mean_over_rows(a: &[f32], b: &[f32], d: usize, f: impl Fn(RowSums) -> f64) -> f64 {
    let n = a.len() / d;
    let mut acc = 0.0;
    for (ra, rb) in a.chunks_exact(d).zip(b.chunks_exact(d)) {
        let mut s = RowSums::default();
        for (&x, &y) in ra.iter().zip(rb) {
            let (x, y) = (x as f64, y as f64);
            s.diff2 += (x - y) * (x - y);
            s.aa += x * x;
            s.bb += y * y;
            s.ab += x * y;
        }
        acc += f(s);
    }
    acc / n as f64
}

/// Mean over rows of `|a_i - b_i| / |a_i|` (row-major `n x d`, f64 accumulation).
pub fn denoiser_difference(a: &[f32], b: &[f32], d: usize) -> f64 {
    mean_over_rows(a, b, d, |s| s.diff2.sqrt() / s.aa.sqrt().max(1e-300))
}

/// Mean cosine similarity of corresponding rows.
pub fn mean_cosine(a: &[f32], b: &[f32], d: usize) -> f64 {
    mean_over_rows(a, b, d, |s| s.ab / (s.aa.sqrt() * s.bb.sqrt()).max(1e-300))
}

/// Linearity score of `den` at `sigma` for weight `a`, over pairs `(x1_i, x2_i)` (rows of `x1`, `x2`).
pub fn linearity_score(den: &dyn BatchDenoiser, x1: &[f32], x2: &[f32], d: usize, sigma: f64, a: f64) -> Result<f64> {
    let (sa, sb) = (a.sqrt() as f32, (1.0 - a).sqrt() as f32);
    let mix: Vec<f32> = x1.iter().zip(x2).map(|(&p, &q)| sa * p + sb * q).collect();
    let d_mix = den.denoise(&mix, sigma)?;
    let d1 = den.denoise(x1, sigma)?;
    let d2 = den.denoise(x2, sigma)?;
    let lin: Vec<f32> = d1.iter().zip(&d2).map(|(&p, &q)| sa * p + sb * q).collect();
    Ok(mean_cosine(&d_mix, &lin, d))
}

/// `|W - W_G|_F / |W_G|_F` for row-major matrices of equal size (f64 accumulation).
pub fn rel_frobenius(w: &[f32], w_g: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&a, &b) in w.iter().zip(w_g) {
        num += (a as f64 - b).powi(2);
        den += b * b;
    }
    (num / den.max(1e-300)).sqrt()
}

/// EDM Heun sampler over a batch, from `x_T = sigma_max * noise` through `steps` noise levels of
/// the EDM schedule (sigma_min 0.002, sigma_max 80, rho 7) and a final step to 0; `2 steps - 1`
/// evaluations ([`heun_from`] from the first level).
pub fn heun_sample(den: &dyn BatchDenoiser, noise: &[f32], steps: usize) -> Result<Vec<f32>> {
    let mut sig = edm_sigmas(steps.max(2), 0.002, 80.0, 7.0);
    sig.push(0.0);
    let x: Vec<f32> = noise.iter().map(|&z| z * sig[0] as f32).collect();
    Ok(heun_from(den, x, &sig)?.0)
}

/// The trainer's one batched Heun loop (EDM, no churn) over any [`BatchDenoiser`]. It is kept apart from
/// the CLI's `tools/src/batch.rs`, which fuses a Gaussian blob's denoiser into its f32 update and sums in
/// another order, so the two do not share bits; this one takes f64 levels and a generic denoiser.
///
/// Heun over the levels `sigmas` (descending, ending in 0) from the batch `x` at `sigmas[0]`.
/// Returns the sample and the number of denoiser evaluations per row.
pub fn heun_from(den: &dyn BatchDenoiser, mut x: Vec<f32>, sigmas: &[f64]) -> Result<(Vec<f32>, usize)> {
    let mut evals = 0;
    for w in sigmas.windows(2) {
        let (sigma_cur, sigma_next) = (w[0], w[1]);
        let denoised = den.denoise(&x, sigma_cur)?;
        evals += 1;
        let h = (sigma_next - sigma_cur) as f32;
        let d_cur: Vec<f32> = x.iter().zip(&denoised).map(|(&xv, &dv)| (xv - dv) / sigma_cur as f32).collect();
        let x_next: Vec<f32> = x.iter().zip(&d_cur).map(|(&xv, &dc)| xv + h * dc).collect();
        if sigma_next > 0.0 {
            let denoised2 = den.denoise(&x_next, sigma_next)?;
            evals += 1;
            x = x
                .iter()
                .zip(x_next.iter().zip(&denoised2))
                .zip(&d_cur)
                .map(|((&xv, (&xn, &dv)), &dc)| xv + h * 0.5 * (dc + (xn - dv) / sigma_next as f32))
                .collect();
        } else {
            x = x_next;
        }
    }
    Ok((x, evals))
}

/// Mean squared difference per pixel.
pub fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum::<f64>() / a.len().max(1) as f64
}

/// A sample has diverged when a pixel is not finite or lies beyond this magnitude (data lie in [-1, 1]).
pub const DIVERGED_ABS: f32 = 100.0;

/// Whether each row of `x` (`d` pixels) has diverged: a pixel not finite or beyond [`DIVERGED_ABS`].
pub fn diverged_rows(x: &[f32], d: usize) -> Vec<bool> {
    x.chunks_exact(d).map(|r| r.iter().any(|v| v.is_nan() || v.abs() > DIVERGED_ABS)).collect()
}

/// [`mse`] over the rows that neither `a` nor `b` has diverged in (see [`diverged_rows`]); NaN when
/// every row has.
pub fn mse_kept_rows(a: &[f32], b: &[f32], d: usize) -> f64 {
    let (da, db) = (diverged_rows(a, d), diverged_rows(b, d));
    let (mut sum, mut rows) = (0.0, 0usize);
    for (i, (ra, rb)) in a.chunks_exact(d).zip(b.chunks_exact(d)).enumerate() {
        if !da[i] && !db[i] {
            sum += mse(ra, rb);
            rows += 1;
        }
    }
    if rows == 0 {
        f64::NAN
    } else {
        sum / rows as f64
    }
}

/// The rows of `x` that have not diverged, copied.
pub fn kept_rows(x: &[f32], d: usize) -> Vec<f32> {
    let div = diverged_rows(x, d);
    x.chunks_exact(d).zip(div).filter(|(_, dv)| !dv).flat_map(|(r, _)| r.iter().copied()).collect()
}

/// For each row of `x`, the Euclidean distances to its nearest and second-nearest rows of `train`
/// (`gaussdiff_fit::nearest`, the exact search the CLI uses).
pub fn nearest_two(x: &[f32], train: &[f32], d: usize) -> Vec<(f64, f64)> {
    nearest_rows(train, d, x).iter().map(Neighbours::distances).collect()
}

/// Fraction of rows with `d1 < d2 / 3`.
pub fn memorisation_fraction(nn: &[(f64, f64)]) -> f64 {
    if nn.is_empty() {
        return 0.0;
    }
    nn.iter().filter(|(a, b)| *a < *b / 3.0).count() as f64 / nn.len() as f64
}

/// Mean (length `dim`) and covariance (`dim x dim`, row-major, divided by `n - 1`) of the rows of `x`, in f64.
pub fn mean_cov(x: &[f32], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() / dim.max(1);
    let mut mu = vec![0.0f64; dim];
    for r in x.chunks_exact(dim) {
        for (m, &v) in mu.iter_mut().zip(r) {
            *m += f64::from(v);
        }
    }
    mu.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut c = vec![0.0f64; dim * dim];
    let mut xc = vec![0.0f64; dim];
    for r in x.chunks_exact(dim) {
        for ((o, &v), &m) in xc.iter_mut().zip(r).zip(&mu) {
            *o = f64::from(v) - m;
        }
        for i in 0..dim {
            let xi = xc[i];
            for j in 0..=i {
                c[i * dim + j] += xi * xc[j];
            }
        }
    }
    let den = (n.max(2) - 1) as f64;
    for i in 0..dim {
        for j in 0..=i {
            let v = c[i * dim + j] / den;
            c[i * dim + j] = v;
            c[j * dim + i] = v;
        }
    }
    (mu, c)
}

/// The symmetric square root `V diag(sqrt(max(l, 0))) V^T` of a symmetric PSD matrix (`dim x dim`).
fn sqrtm_psd(c: &[f64], dim: usize) -> Result<Vec<f64>> {
    let m = faer::Mat::<f64>::from_fn(dim, dim, |i, j| c[i * dim + j]);
    let e = gaussdiff_fit::gaussian::eigh_descending(m.as_ref()).map_err(|e| anyhow::anyhow!("eigh: {e}"))?;
    let mut out = vec![0.0f64; dim * dim];
    for (k, &l) in e.values.iter().enumerate() {
        let s = l.max(0.0).sqrt();
        let v = &e.vectors[k * dim..(k + 1) * dim];
        for i in 0..dim {
            let a = s * v[i];
            for j in 0..dim {
                out[i * dim + j] += a * v[j];
            }
        }
    }
    Ok(out)
}

/// The Frechet (2-Wasserstein squared) distance of two Gaussians:
/// `|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2)`, computed with two symmetric eigendecompositions
/// (faer, f64).
///
/// # Errors
/// If an eigendecomposition fails.
pub fn frechet_gaussians(mu1: &[f64], c1: &[f64], mu2: &[f64], c2: &[f64]) -> Result<f64> {
    let dim = mu1.len();
    let s1 = sqrtm_psd(c1, dim)?;
    // M = S1 C2 S1 (symmetric PSD); tr sqrt(M) = sum of the square roots of its eigenvalues.
    let mut t = vec![0.0f64; dim * dim];
    for i in 0..dim {
        for k in 0..dim {
            let a = s1[i * dim + k];
            if a != 0.0 {
                for j in 0..dim {
                    t[i * dim + j] += a * c2[k * dim + j];
                }
            }
        }
    }
    let mut m = vec![0.0f64; dim * dim];
    for i in 0..dim {
        for k in 0..dim {
            let a = t[i * dim + k];
            if a != 0.0 {
                for j in 0..dim {
                    m[i * dim + j] += a * s1[k * dim + j];
                }
            }
        }
    }
    for i in 0..dim {
        for j in 0..i {
            let v = 0.5 * (m[i * dim + j] + m[j * dim + i]);
            m[i * dim + j] = v;
            m[j * dim + i] = v;
        }
    }
    let mm = faer::Mat::<f64>::from_fn(dim, dim, |i, j| m[i * dim + j]);
    let e = gaussdiff_fit::gaussian::eigh_descending(mm.as_ref()).map_err(|e| anyhow::anyhow!("eigh: {e}"))?;
    let tr_sqrt: f64 = e.values.iter().map(|&l| l.max(0.0).sqrt()).sum();
    let tr = |c: &[f64]| (0..dim).map(|i| c[i * dim + i]).sum::<f64>();
    let dmu: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b) * (a - b)).sum();
    Ok((dmu + tr(c1) + tr(c2) - 2.0 * tr_sqrt).max(0.0))
}

/// Frechet distance between the Gaussians fitted (mean, `n - 1` covariance) to the rows of `a` and of `b`
/// (`dim` features each): FID's formula; on a classifier's penultimate features, the "Frechet LeNet
/// distance".
///
/// # Errors
/// If an eigendecomposition fails.
pub fn frechet_distance(a: &[f32], b: &[f32], dim: usize) -> Result<f64> {
    let (m1, c1) = mean_cov(a, dim);
    let (m2, c2) = mean_cov(b, dim);
    frechet_gaussians(&m1, &c1, &m2, &c2)
}

/// KID's kernel: `k(x, y) = (x . y / dim + 1)^3` (Binkowski et al. 2018).
pub fn kid_kernel(x: &[f32], y: &[f32]) -> f64 {
    let dot: f64 = x.iter().zip(y).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
    (dot / x.len() as f64 + 1.0).powi(3)
}

/// Kernel Inception Distance: the unbiased estimate of the squared MMD between the rows of `a` and of `b`
/// (`dim` features each; at least 2 rows each) under [`kid_kernel`]:
/// `mean_{i != j} k(a_i, a_j) + mean_{i != j} k(b_i, b_j) - 2 mean_{i, j} k(a_i, b_j)`. Unbiased, so it
/// can come out slightly negative for two samples of one distribution.
pub fn kid(a: &[f32], b: &[f32], dim: usize) -> f64 {
    use rayon::prelude::*;
    let (na, nb) = (a.len() / dim, b.len() / dim);
    let within = |x: &[f32], n: usize| -> f64 {
        let s: f64 = (0..n)
            .into_par_iter()
            .map(|i| {
                (i + 1..n).map(|j| kid_kernel(&x[i * dim..(i + 1) * dim], &x[j * dim..(j + 1) * dim])).sum::<f64>()
            })
            .sum();
        2.0 * s / (n * (n - 1)) as f64
    };
    let cross: f64 = (0..na)
        .into_par_iter()
        .map(|i| (0..nb).map(|j| kid_kernel(&a[i * dim..(i + 1) * dim], &b[j * dim..(j + 1) * dim])).sum::<f64>())
        .sum();
    within(a, na) + within(b, nb) - 2.0 * cross / (na * nb) as f64
}

/// Median of `d1 / d2` over the rows (nearest and second-nearest distances, [`nearest_two`]).
pub fn median_nn_ratio(nn: &[(f64, f64)]) -> f64 {
    let mut r: Vec<f64> = nn.iter().map(|(a, b)| if *b > 0.0 { a / b } else { 0.0 }).collect();
    if r.is_empty() {
        return f64::NAN;
    }
    r.sort_by(f64::total_cmp);
    r[r.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::TrainRng;

    /// `n` samples of `N(mu, L L^T)` (L lower-triangular, row-major) in f32.
    fn gaussian_samples(n: usize, mu: &[f64], l: &[f64], seed: u64) -> Vec<f32> {
        let dim = mu.len();
        let mut rng = TrainRng::new(seed);
        let mut out = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let z: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
            for i in 0..dim {
                out.push((mu[i] + (0..=i).map(|k| l[i * dim + k] * z[k]).sum::<f64>()) as f32);
            }
        }
        out
    }

    #[test]
    fn frechet_of_diagonal_gaussians_is_the_closed_form() {
        // Commuting covariances: |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
        let dim = 3;
        let (a, b) = ([1.0, 4.0, 0.25], [9.0, 1.0, 0.25]);
        let diag = |v: &[f64; 3]| {
            let mut c = vec![0.0; 9];
            (0..3).for_each(|i| c[i * 3 + i] = v[i]);
            c
        };
        let (m1, m2) = ([0.0, 1.0, 2.0], [1.0, 1.0, 0.0]);
        let want = 1.0 + 4.0 + (1.0f64 - 3.0).powi(2) + (2.0f64 - 1.0).powi(2);
        let got = frechet_gaussians(&m1, &diag(&a), &m2, &diag(&b)).unwrap();
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        assert!(frechet_gaussians(&m1, &diag(&a), &m1, &diag(&a)).unwrap() < 1e-9);
        let _ = dim;
    }

    #[test]
    fn frechet_of_samples_approaches_the_analytic_distance() {
        // Two correlated (non-commuting) 4-d Gaussians; the analytic value from their exact parameters.
        let dim = 4;
        let l1 = [1.0, 0.0, 0.0, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.3, 0.8, 0.0, 0.2, 0.0, 0.1, 0.6];
        let l2 = [0.7, 0.0, 0.0, 0.0, -0.4, 1.2, 0.0, 0.0, 0.3, 0.0, 0.5, 0.0, 0.0, 0.5, 0.0, 1.1];
        let cov = |l: &[f64]| {
            let mut c = vec![0.0; dim * dim];
            for i in 0..dim {
                for j in 0..dim {
                    c[i * dim + j] = (0..dim).map(|k| l[i * dim + k] * l[j * dim + k]).sum();
                }
            }
            c
        };
        let (m1, m2) = ([0.0, 0.5, -0.5, 1.0], [0.3, 0.5, 0.0, 0.8]);
        let exact = frechet_gaussians(&m1, &cov(&l1), &m2, &cov(&l2)).unwrap();
        let a = gaussian_samples(40_000, &m1, &l1, 1);
        let b = gaussian_samples(40_000, &m2, &l2, 2);
        let est = frechet_distance(&a, &b, dim).unwrap();
        assert!(exact > 0.5, "{exact}");
        assert!((est - exact).abs() < 0.03 * exact + 0.01, "sampled {est} vs analytic {exact}");
        // Two samples of one Gaussian: near 0 (bias ~ dim^2 / n).
        let c = gaussian_samples(40_000, &m1, &l1, 3);
        assert!(frechet_distance(&a, &c, dim).unwrap() < 0.01);
    }

    #[test]
    fn kid_closed_forms() {
        // Point masses: the unbiased estimate is exactly k(a,a) + k(b,b) - 2 k(a,b).
        let (pa, pb) = ([1.0f32, 0.0], [0.0f32, 2.0]);
        let a: Vec<f32> = pa.iter().copied().cycle().take(2 * 5).collect();
        let b: Vec<f32> = pb.iter().copied().cycle().take(2 * 7).collect();
        let k = |x: &[f32], y: &[f32]| kid_kernel(x, y);
        let want = k(&pa, &pa) + k(&pb, &pb) - 2.0 * k(&pa, &pb);
        assert!((kid(&a, &b, 2) - want).abs() < 1e-12);
        assert_eq!(k(&pa, &pa), 1.5f64.powi(3));
        // Two sets drawn from one distribution: ~0 (unbiased), far below a shifted set's value.
        let l = [1.0, 0.0, 0.0, 1.0];
        let x = gaussian_samples(2_000, &[0.0, 0.0], &l, 4);
        let y = gaussian_samples(2_000, &[0.0, 0.0], &l, 5);
        let z = gaussian_samples(2_000, &[1.0, 0.0], &l, 6);
        let same = kid(&x, &y, 2);
        let shifted = kid(&x, &z, 2);
        assert!(same.abs() < 0.01, "{same}");
        assert!(shifted > 0.3, "{shifted}");
        // Identical sets: 2 (mean of all k - mean of the diagonal) / (n - 1), which -> 0 as n grows.
        let n = 2_000;
        let all: f64 = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| k(&x[2 * i..2 * i + 2], &x[2 * j..2 * j + 2]))
            .sum::<f64>()
            / (n * n) as f64;
        let diag: f64 = (0..n).map(|i| k(&x[2 * i..2 * i + 2], &x[2 * i..2 * i + 2])).sum::<f64>() / n as f64;
        let want = 2.0 * (all - diag) / (n - 1) as f64;
        assert!((kid(&x, &x, 2) - want).abs() < 1e-9 && want.abs() < 0.05, "{want}");
    }
}
