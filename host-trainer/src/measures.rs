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
