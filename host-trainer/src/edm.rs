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
