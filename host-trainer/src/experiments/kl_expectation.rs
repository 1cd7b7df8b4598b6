//! The exact expected KL divergence that experiment 4 measures, for Gaussian data.
//!
//! Both Gaussians are fitted the project's way (`gaussdiff_fit::gaussian`, `DDOF = 0`): from M images,
//! `mu_M` = sample mean and `S_M = A / M` with `A = sum (x - mu_M)(x - mu_M)^T ~ Wishart_d(M - 1, Sigma)`.
//! The experiment measures `KL(P_H || P_N)`, the Gaussian of H held-out images against the Gaussian of N
//! training images:
//!
//! `KL = 1/2 [ tr(S_N^-1 S_H) + (mu_N - mu_H)^T S_N^-1 (mu_N - mu_H) - d + ln det S_N - ln det S_H ]`.
//!
//! KL is invariant under an affine change of variables, so take `Sigma = I`. The two fits are independent,
//! and `mu_M` is independent of `S_M`. With the inverse-Wishart mean `E[A^-1] = I / (M - 1 - d - 1)`
//! (finite for `M > d + 2`), `E[S_N^-1] = N / (N - d - 2) I`, `E[S_H] = (H - 1) / H I` and
//! `Cov(mu_N - mu_H) = (1/N + 1/H) I`:
//!
//! `E[tr + quad] = N d / (N - d - 2) [ (H - 1)/H + 1/N + 1/H ] = (N + 1) d / (N - d - 2)`,
//!
//! and with Bartlett's `E[ln det A] = sum_{i=0}^{d-1} psi((M - 1 - i)/2) + d ln 2` (psi = digamma, finite for
//! `M > d`):
//!
//! `L(M) := E[ln det S_M] = sum_{i=0}^{d-1} psi((M - 1 - i)/2) + d ln(2 / M)`,
//!
//! `E[KL] = 1/2 [ (N + 1) d / (N - d - 2) - d + L(N) - L(H) ]`   (N > d + 2, H > d),
//!
//! and against the true Gaussian (`H -> infinity`, `L -> 0`) the same without `L(H)`. For N <= d + 2 the
//! expectation is infinite (for N <= d every single KL is). For large N and H it tends to
//! `d (d + 3) / 4 (1/N + 1/H)`: the covariance's `d (d + 1) / (4N)` plus the mean's `d / (2N)`, once per fit.

/// The digamma function `psi(x) = d/dx ln Gamma(x)` for `x > 0` (recurrence `psi(x) = psi(x + 1) - 1/x` up to
/// `x >= 12`, then the asymptotic series to x^-8; truncation error below 2e-13). NaN for `x <= 0`.
pub fn digamma(mut x: f64) -> f64 {
    if x.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return f64::NAN;
    }
    let mut acc = 0.0;
    while x < 12.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let x2 = 1.0 / (x * x);
    acc + x.ln() - 0.5 / x - x2 * (1.0 / 12.0 - x2 * (1.0 / 120.0 - x2 * (1.0 / 252.0 - x2 * (1.0 / 240.0))))
}

/// `E[ln det S_M]` for a `DDOF = 0` covariance of `m` images of a d-dimensional standard Gaussian;
/// `None` when it is infinite (`m <= d`).
pub fn expected_logdet(d: usize, m: usize) -> Option<f64> {
    (m > d).then(|| (0..d).map(|i| digamma((m - 1 - i) as f64 / 2.0)).sum::<f64>() + d as f64 * (2.0 / m as f64).ln())
}

/// Exact `E[KL(P_H || P_N)]` (nats) for Gaussian data in `d` dimensions, both fits `DDOF = 0`, the
/// reference of `h` held-out images (`None`: the true Gaussian). `None` where the expectation is infinite
/// (`n <= d + 2`, or `h <= d`).
pub fn expected_kl(d: usize, n: usize, h: Option<usize>) -> Option<f64> {
    if n <= d + 2 {
        return None;
    }
    let df = d as f64;
    let ref_logdet = match h {
        Some(h) => expected_logdet(d, h)?,
        None => 0.0,
    };
    let trace = (n as f64 + 1.0) * df / (n - d - 2) as f64;
    Some(0.5 * (trace - df + expected_logdet(d, n)? - ref_logdet))
}

/// The large-N, large-H limit of [`expected_kl`]: `d (d + 3) / 4 (1/N + 1/H)` (no `1/H` term for `None`).
pub fn asymptotic_kl(d: usize, n: usize, h: Option<usize>) -> f64 {
    let df = d as f64;
    df * (df + 3.0) / 4.0 * (1.0 / n as f64 + h.map_or(0.0, |h| 1.0 / h as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_known_values() {
        // psi(1) = -gamma, psi(1/2) = -gamma - 2 ln 2, psi(10) from the harmonic number H_9.
        let gamma = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + gamma).abs() < 1e-12);
        assert!((digamma(0.5) + gamma + 2.0 * 2f64.ln()).abs() < 1e-12);
        let h9: f64 = (1..=9).map(|k| 1.0 / k as f64).sum();
        assert!((digamma(10.0) - (h9 - gamma)).abs() < 1e-12);
        assert!(digamma(0.0).is_nan() && digamma(-1.0).is_nan());
    }

    #[test]
    fn infinite_where_the_inverse_wishart_mean_is() {
        assert!(expected_kl(64, 64, Some(797)).is_none());
        assert!(expected_kl(64, 66, None).is_none());
        assert!(expected_kl(64, 67, None).is_some());
        assert!(expected_kl(64, 1000, Some(64)).is_none());
        // Large N and H: the asymptotic law.
        let (e, a) =
            (expected_kl(10, 1_000_000, Some(2_000_000)).unwrap(), asymptotic_kl(10, 1_000_000, Some(2_000_000)));
        assert!((e / a - 1.0).abs() < 1e-3, "{e} vs {a}");
    }

    /// Monte Carlo: Gaussian data, the experiment's own fit and KL (with its tiny ridge), against the
    /// closed form; d = 64, N = 1,000, H = 797 as on digits.
    #[test]
    fn matches_monte_carlo() {
        use super::super::gaussian_data::monte_carlo_kl;
        let (d, n, h) = (64, 1000, 797);
        let (mean, se) = monte_carlo_kl(d, n, h, 60, 7).unwrap();
        let e = expected_kl(d, n, Some(h)).unwrap();
        eprintln!("d = {d}, N = {n}, H = {h}: Monte Carlo {mean:.4} +- {se:.4}, closed form {e:.4}");
        assert!((2.55..2.62).contains(&e), "closed form {e}");
        assert!((mean - e).abs() < 3.0 * se + 0.01, "Monte Carlo {mean} +- {se} vs closed form {e}");
        // Near N = d the expectation is large and still right.
        let (d, n, h) = (8, 20, 400);
        let (mean, se) = monte_carlo_kl(d, n, h, 4000, 3).unwrap();
        let e = expected_kl(d, n, Some(h)).unwrap();
        assert!((mean - e).abs() < 4.0 * se, "Monte Carlo {mean} +- {se} vs closed form {e}");
    }
}
