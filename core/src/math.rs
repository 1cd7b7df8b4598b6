//! The one path for scalar transcendental math: thin wrappers over `libm`, so host and target compute the
//! same bits. (The matrix kernels with their fixed summation order live in [`crate::kernels`].)
//!
//! With the opt-in `fast-math` feature, `exp` goes through `micromath` instead (relative error below 5e-3
//! on `[-20, 20]`, measured 2.4e-3; tested below), which trades bit-identity with the default build for
//! speed. `ln` deliberately stays on libm even then: micromath 2.1's `ln` has absolute errors up to 0.12 for
//! arguments below 1 (measured on `[1e-6, 1]`), which would visibly distort the ziggurat's tail normals and the
//! log-sigma interpolation of the linear denoiser. `sqrt`, `ln`, `pow`, `sin`, `cos` and `round` always use
//! libm, so without `fast-math` every platform computes the same bits, and with it only `exp` differs.
//!
//! The f64 wrappers ([`pow_f64`], [`ln_f64`]) serve the f64 references of the schedule and the log-sigma
//! interpolation (host tools); they are libm in every build.

//! arithmetic.

/// Square root (IEEE correctly rounded in libm).
#[inline]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// Natural logarithm (libm also under `fast-math`: see the module docs).
#[inline]
pub fn ln(x: f32) -> f32 {
    libm::logf(x)
}

/// Exponential (micromath under `fast-math`).
#[inline]
pub fn exp(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        micromath::F32Ext::exp(x)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::expf(x)
    }
}

/// Exponential through libm in every build (also under `fast-math`): the ziggurat's wedge test
/// ([`crate::rng::Rng::normal`]), which must give the same bits everywhere.
#[inline]
pub fn exp_libm(x: f32) -> f32 {
    libm::expf(x)
}

/// `x^y`.
#[inline]
pub fn pow(x: f32, y: f32) -> f32 {
    libm::powf(x, y)
}

/// Cosine.
#[inline]
pub fn cos(x: f32) -> f32 {
    libm::cosf(x)
}

/// Sine.
#[inline]
pub fn sin(x: f32) -> f32 {
    libm::sinf(x)
}

/// Round half away from zero.
#[inline]
pub fn round(x: f32) -> f32 {
    libm::roundf(x)
}

/// f64 `x^y` (libm `pow` in every build).
#[inline]
pub fn pow_f64(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// f64 natural logarithm (libm `log` in every build).
#[inline]
pub fn ln_f64(x: f64) -> f64 {
    libm::log(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "fast-math"))]
    #[test]
    fn default_build_is_exactly_libm() {
        for i in 1..2000 {
            let x = i as f32 * 0.013_7;
            assert_eq!(ln(x).to_bits(), libm::logf(x).to_bits());
            assert_eq!(exp(x - 13.0).to_bits(), libm::expf(x - 13.0).to_bits());
            assert_eq!(sqrt(x).to_bits(), libm::sqrtf(x).to_bits());
        }
    }

    #[test]
    fn ln_is_libm_in_every_build() {
        for i in 1..2000 {
            let x = i as f32 * 1.37e-4;
            assert_eq!(ln(x).to_bits(), libm::logf(x).to_bits());
        }
    }

    #[cfg(feature = "fast-math")]
    #[test]
    fn fast_exp_within_stated_tolerance() {
        let mut worst = 0.0f64;
        for i in 0..=4000 {
            let x = -20.0 + 40.0 * i as f32 / 4000.0;
            let want = libm::exp(x as f64);
            worst = worst.max((exp(x) as f64 - want).abs() / want);
        }
        assert!(worst < 5e-3, "fast exp relative error {worst:e}");
    }
}
