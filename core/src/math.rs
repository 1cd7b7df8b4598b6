//! The one path for transcendental math (wrapping `libm`, so host and target compute the same bits) and the
//! f32 reduction kernels with a fixed summation order.
//!
//! With the opt-in `fast-math` feature, `sqrt`/`ln`/`exp` go through `micromath` approximations instead;
//! that trades bit-identity with the libm build for speed and is tolerance-tested.

/// Square root (IEEE correctly rounded in libm).
#[inline]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// Natural logarithm.
#[inline]
pub fn ln(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        micromath::F32Ext::ln(x)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::logf(x)
    }
}

/// Exponential.
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

/// `sum_c x[c] * w(c)` with the fixed order documented on [`crate::blob::Tensor::row_dot`]:
/// four partial sums over `c = 4m + j`, the tail added to `s_0, s_1, s_2` in order, then `(s0+s1)+(s2+s3)`.
#[inline(always)]
pub fn dot4(x: &[f32], w: impl Fn(usize) -> f32) -> f32 {
    let n = x.len();
    let main = n - n % 4;
    let (mut s0, mut s1, mut s2, mut s3) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
    let mut c = 0;
    while c < main {
        s0 += x[c] * w(c);
        s1 += x[c + 1] * w(c + 1);
        s2 += x[c + 2] * w(c + 2);
        s3 += x[c + 3] * w(c + 3);
        c += 4;
    }
    let mut j = 0;
    while c < n {
        let p = x[c] * w(c);
        match j {
            0 => s0 += p,
            1 => s1 += p,
            _ => s2 += p,
        }
        j += 1;
        c += 1;
    }
    (s0 + s1) + (s2 + s3)
}

/// Plain f32 dot product of two slices with the [`dot4`] summation order.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    dot4(a, |c| b[c])
}
