//! Denoisers `D(x; sigma)`: the optimal denoiser of a Gaussian (low rank plus isotropic floor) and
//! per-noise-level linear maps, both evaluated straight from blob storage without allocation.

pub mod gaussian;
pub mod linear;

use crate::blob::{DType, Tensor};
use crate::math;

pub use gaussian::GaussianDenoiser;
pub use linear::LinearDenoiser;

/// A denoiser `D(x; sigma)` on flattened images of dimension `dim()`.
///
/// Implementations validate everything at construction, so `denoise` cannot fail.
pub trait Denoiser {
    /// Data dimension `d` (channels x height x width).
    fn dim(&self) -> usize;

    /// Length of the scratch buffer `denoise` needs (the faer scratch pattern).
    fn scratch_len(&self) -> usize;

    /// Writes `D(x; sigma)` into `out`.
    ///
    /// # Panics
    /// If `x.len() != dim()`, `out.len() != dim()` or `scratch.len() < scratch_len()` (caller contract).
    fn denoise(&self, x: &[f32], sigma: f32, out: &mut [f32], scratch: &mut [f32]);

    /// Multiply-adds per evaluation (for `inspect` and the reports).
    fn macs_per_eval(&self) -> u64;
}

/// Bytes of row `r` of `t` (data only; int8 scales excluded).
#[inline]
fn row_bytes<'a>(t: &Tensor<'a>, r: usize) -> &'a [u8] {
    let n = t.cols() * t.dtype().element_bytes();
    &t.bytes()[r * n..(r + 1) * n]
}

/// `sum_c t[r, c] * x[c]`: bit-identical to [`Tensor::row_dot`] (same `math::dot4` order, int8 scale applied
/// once at the end) but over the row's bytes with the block kernels of [`crate::math`], several times faster
/// for f32 storage.
///
/// # Panics
/// If `r >= t.rows()` or `x.len() != t.cols()` (caller contract).
#[inline]
pub(crate) fn row_dot(t: &Tensor<'_>, r: usize, x: &[f32]) -> f32 {
    assert!(r < t.rows() && x.len() == t.cols(), "row_dot: bad row or input length");
    let row = row_bytes(t, r);
    match t.dtype() {
        DType::F32 => math::dot4_f32_le(x, row),
        DType::F16 => math::dot4_f16_le(x, row),
        DType::I8 => math::dot4_i8(x, row) * t.row_scale(r),
    }
}

/// `y[c] += alpha * t[r, c]`: the same values as [`Tensor::row_axpy`], over the row's bytes.
///
/// # Panics
/// If `r >= t.rows()` or `y.len() != t.cols()` (caller contract).
#[inline]
pub(crate) fn row_axpy(t: &Tensor<'_>, r: usize, alpha: f32, y: &mut [f32]) {
    assert!(r < t.rows() && y.len() == t.cols(), "row_axpy: bad row or output length");
    let row = row_bytes(t, r);
    match t.dtype() {
        DType::F32 => math::axpy_f32_le(alpha, row, y),
        DType::F16 => math::axpy_f16_le(alpha, row, y),
        DType::I8 => math::axpy_i8(alpha * t.row_scale(r), row, y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast paths must give exactly `Tensor`'s bits (host/target identity relies on one order).
    #[test]
    fn fast_rows_match_tensor_rows_bit_for_bit() {
        let (rows, cols) = (3usize, 23usize);
        let vals = |r: usize, c: usize| ((r * 31 + c * 7) % 17) as f32 / 8.0 - 1.0;
        let x: [f32; 23] = core::array::from_fn(|c| (c as f32 * 0.37).sin());
        let mut f32b = [0u8; 3 * 23 * 4];
        let mut f16b = [0u8; 3 * 23 * 2];
        let mut i8b = [0u8; 3 * 23 + 12];
        for r in 0..rows {
            for c in 0..cols {
                let i = r * cols + c;
                f32b[4 * i..4 * i + 4].copy_from_slice(&vals(r, c).to_le_bytes());
                f16b[2 * i..2 * i + 2].copy_from_slice(&half::f16::from_f32(vals(r, c)).to_le_bytes());
                i8b[i] = ((vals(r, c) * 100.0) as i8) as u8;
            }
            i8b[rows * cols + 4 * r..rows * cols + 4 * r + 4]
                .copy_from_slice(&(0.01f32 * (r + 1) as f32).to_le_bytes());
        }
        for (dtype, bytes) in [(DType::F32, &f32b[..]), (DType::F16, &f16b[..]), (DType::I8, &i8b[..])] {
            let t = Tensor::new(dtype, rows, cols, bytes).unwrap();
            for r in 0..rows {
                assert_eq!(row_dot(&t, r, &x).to_bits(), t.row_dot(r, &x).to_bits(), "{dtype:?} row {r}");
                let (mut a, mut b) = ([0.5f32; 23], [0.5f32; 23]);
                row_axpy(&t, r, -0.75, &mut a);
                t.row_axpy(r, -0.75, &mut b);
                assert_eq!(a, b, "{dtype:?} row {r}");
            }
        }
    }
}
