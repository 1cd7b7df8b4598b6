//! EDM (Karras et al. 2022) preconditioning, training noise distribution, loss weight, and the f64
//! reference of core's EDM schedule ([`edm_sigmas`]).
//!
//! With `sigma_data = 0.5` (table 1 of the paper):
//! * `c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)`
//! * `c_out  = sigma * sigma_data / sqrt(sigma^2 + sigma_data^2)`
//! * `c_in   = 1 / sqrt(sigma^2 + sigma_data^2)`
//! * `c_noise = ln(sigma) / 4`
//! * `D(x; sigma) = c_skip x + c_out F(c_in x; c_noise)`
//! * training: `ln sigma ~ N(P_mean, P_std^2)` with `P_mean = -1.2`, `P_std = 1.2`, and loss weight
//!   `lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2`.
//!
//! All coefficients are computed here in f64 on the host and rounded to f32 once, so every device
//! sees the same values.

/// EDM's `sigma_data` for data in `[-1, 1]`.
pub const SIGMA_DATA: f64 = 0.5;
/// Mean of `ln sigma` during training.
pub const P_MEAN: f64 = -1.2;
/// Standard deviation of `ln sigma` during training.
pub const P_STD: f64 = 1.2;

/// The four preconditioning coefficients for one sigma.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Precond {
    /// Skip-connection scale.
    pub c_skip: f64,
    /// Output scale of the raw network.
    pub c_out: f64,
    /// Input scale of the raw network.
    pub c_in: f64,
    /// Noise-level input of the raw network, `ln(sigma)/4`.
    pub c_noise: f64,
}

impl Precond {
    /// Coefficients for `sigma > 0`.
    pub fn new(sigma: f64) -> Self {
        let sd2 = SIGMA_DATA * SIGMA_DATA;
        let s2 = sigma * sigma;
        Self {
            c_skip: sd2 / (s2 + sd2),
            c_out: sigma * SIGMA_DATA / (s2 + sd2).sqrt(),
            c_in: 1.0 / (s2 + sd2).sqrt(),
            c_noise: sigma.ln() / 4.0,
        }
    }
}

/// EDM loss weight `(sigma^2 + sigma_data^2) / (sigma sigma_data)^2`.
pub fn loss_weight(sigma: f64) -> f64 {
    (sigma * sigma + SIGMA_DATA * SIGMA_DATA) / (sigma * SIGMA_DATA).powi(2)
}

/// `E[f(sigma)]` under the training distribution `ln sigma ~ N(p_mean, p_std^2)`, by the trapezoidal
/// rule over `ln sigma = p_mean + p_std u`, `u` in [-10, 10] in 4,000 steps (error far below 1e-9 for the
/// smooth, bounded functions used here).
pub fn expect_over_sigma(f: impl Fn(f64) -> f64, p_mean: f64, p_std: f64) -> f64 {
    const STEPS: usize = 4000;
    let h = 20.0 / STEPS as f64;
    let mut sum = 0.0;
    for i in 0..=STEPS {
        let u = -10.0 + h * i as f64;
        let w = if i == 0 || i == STEPS { 0.5 } else { 1.0 };
        sum += w * (-0.5 * u * u).exp() * f((p_mean + p_std * u).exp());
    }
    sum * h / (2.0 * std::f64::consts::PI).sqrt()
}

/// The skip-path floor `E[c_skip(sigma)]`: the expected EDM loss of a denoiser that returns the clean image
/// but passes the noise through its skip path, `D(y + sigma z) = y + c_skip sigma z`. Per sigma that loss
/// is `lambda c_skip^2 sigma^2 = c_skip`, whatever the data. 0.634 for EDM's `(-1.2, 1.2)`.
pub fn skip_floor(p_mean: f64, p_std: f64) -> f64 {
    expect_over_sigma(|s| Precond::new(s).c_skip, p_mean, p_std)
}

/// Expected EDM loss at initialisation (`F = 0`, so `D = c_skip x`) for data with mean square pixel
/// `mean_sq = E[y^2]`: per sigma `lambda ((1 - c_skip)^2 E[y^2] + c_skip^2 sigma^2)
/// = (E[y^2] sigma^2 / sigma_data^2 + sigma_data^2) / (sigma^2 + sigma_data^2)`, which is 1 only when
/// `E[y^2] = sigma_data^2`. It runs from 1 (sigma -> 0) to `E[y^2] / sigma_data^2` (sigma -> infinity).
pub fn initial_loss(mean_sq: f64, p_mean: f64, p_std: f64) -> f64 {
    let sd2 = SIGMA_DATA * SIGMA_DATA;
    expect_over_sigma(|s| (mean_sq * s * s / sd2 + sd2) / (s * s + sd2), p_mean, p_std)
}

/// EDM's sampling schedule in f64: `n` sigmas from `sigma_max` down to `sigma_min` (no trailing 0), from
/// core's f64 reference of the f32 sampling schedule
/// ([`edm_levels_f64`](gaussdiff_core::schedule::edm_levels_f64)): one formula for the whole project.
///
/// # Panics
/// If `n < 2`.
pub fn edm_sigmas(n: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> Vec<f64> {
    assert!(n >= 2, "edm_sigmas needs n >= 2");
    let mut out = vec![0.0; n];
    gaussdiff_core::schedule::edm_levels_f64(sigma_min, sigma_max, rho, &mut out);
    out
}

/// The default distillation grid: the 10-step EDM grid 80 ... 0.002 (rho = 7).
pub fn default_grid() -> Vec<f64> {
    edm_sigmas(10, 0.002, 80.0, 7.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditioning_identities() {
        for &s in &[0.002, 0.1, 0.5, 1.0, 80.0] {
            let p = Precond::new(s);
            let sd2 = SIGMA_DATA * SIGMA_DATA;
            // Unit-variance training target: Var[(y - c_skip (y + n)) / c_out] = 1 for Var[y] = sigma_data^2.
            let var = ((1.0 - p.c_skip).powi(2) * sd2 + p.c_skip.powi(2) * s * s) / p.c_out.powi(2);
            assert!((var - 1.0).abs() < 1e-9, "sigma {s}: {var}");
            // Unit-variance input: c_in^2 (sigma_data^2 + sigma^2) = 1.
            assert!((p.c_in * p.c_in * (sd2 + s * s) - 1.0).abs() < 1e-12);
            // lambda(sigma) = 1 / c_out^2.
            assert!((loss_weight(s) * p.c_out * p.c_out - 1.0).abs() < 1e-12);
        }
        assert!((Precond::new(0.5).c_skip - 0.5).abs() < 1e-15);
    }

    #[test]
    fn floor_and_initial_loss() {
        // The 0.634 for EDM's sigma distribution; a quadrature check: E[1] = 1.
        assert!((expect_over_sigma(|_| 1.0, P_MEAN, P_STD) - 1.0).abs() < 1e-12);
        assert!((skip_floor(P_MEAN, P_STD) - 0.63394).abs() < 1e-4, "{}", skip_floor(P_MEAN, P_STD));
        // sigma fixed at sigma_data: c_skip = 1/2.
        assert!((skip_floor(SIGMA_DATA.ln(), 0.0) - 0.5).abs() < 1e-12);
        // E[y^2] = sigma_data^2 gives 1 exactly; the per-sigma formula agrees with the weighted sum.
        assert!((initial_loss(SIGMA_DATA * SIGMA_DATA, P_MEAN, P_STD) - 1.0).abs() < 1e-12);
        let (m, s) = (0.72, 0.3);
        let p = Precond::new(s);
        let direct = loss_weight(s) * ((1.0 - p.c_skip).powi(2) * m + p.c_skip.powi(2) * s * s);
        assert!((initial_loss(m, s.ln(), 0.0) - direct).abs() < 1e-12);
        assert!(initial_loss(0.72, P_MEAN, P_STD) > 1.5);
    }

    #[test]
    fn ten_step_grid() {
        let g = default_grid();
        assert_eq!(g.len(), 10);
        assert!((g[0] - 80.0).abs() < 1e-9 && (g[9] - 0.002).abs() < 1e-12);
        assert!(g.windows(2).all(|w| w[0] > w[1]));
        // 18-step EDM schedule second value: 57.586...
        let s = edm_sigmas(18, 0.002, 80.0, 7.0);
        assert!((s[1] - 57.5860).abs() < 1e-3, "{}", s[1]);
    }
}
