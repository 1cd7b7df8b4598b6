//! Denoisers `D(x; sigma)`: the optimal denoiser of a Gaussian (low rank plus isotropic floor), of a mixture
//! of such Gaussians, and per-noise-level linear maps, all evaluated straight from blob storage without allocation, and the
//! [`Model`] a blob holds (one of them).

pub mod gaussian;
pub mod linear;
pub mod mixture;
pub mod model;

#[cfg(test)]
use crate::tensor::{DType, Tensor};

pub use gaussian::GaussianDenoiser;
pub use linear::LinearDenoiser;
pub use mixture::MixtureDenoiser;
pub use model::Model;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast paths must give exactly the reference kernels' bits (host/target identity relies on one
    /// order): per row, and four rows at a time, for aligned and unaligned storage, with row counts that
    /// leave a partial block and column counts that leave a tail.
    #[test]
    fn fast_rows_match_reference_rows_bit_for_bit() {
        const ROWS: usize = 7;
        let vals = |r: usize, c: usize| ((r * 31 + c * 7) % 17) as f32 / 8.0 - 1.0 + r as f32 * 1e-3;
        // `big`: one |x| >= 2^16 (the f16 kernels' exact fallback); `inf`: an infinite f16 weight (per-row
        // kernels for that tensor).
        for (cols, big, inf) in [
            (1usize, false, false),
            (4, false, false),
            (6, true, false),
            (23, false, true),
            (24, false, false),
            (24, true, true),
        ] {
            let mut x: [f32; 24] = core::array::from_fn(|c| (c as f32 * 0.37).sin() * 3.0);
            if big {
                x[cols / 2] = -7.0e4;
            }
            let x = &x[..cols];
            // One spare leading byte, so the same data can be viewed at an odd address too.
            let mut f32b = [0u8; 1 + ROWS * 24 * 4];
            let mut f16b = [0u8; 1 + ROWS * 24 * 2];
            let mut i8b = [0u8; 1 + ROWS * 24 + 4 * ROWS];
            for r in 0..ROWS {
                for c in 0..cols {
                    let i = r * cols + c;
                    f32b[4 * i..4 * i + 4].copy_from_slice(&vals(r, c).to_le_bytes());
                    f16b[2 * i..2 * i + 2].copy_from_slice(&half::f16::from_f32(vals(r, c)).to_le_bytes());
                    i8b[i] = ((vals(r, c) * 100.0) as i8) as u8;
                }
                if inf && r == 1 {
                    f16b[2 * cols - 2..2 * cols].copy_from_slice(&half::f16::INFINITY.to_le_bytes());
                }
                i8b[ROWS * cols + 4 * r..ROWS * cols + 4 * r + 4]
                    .copy_from_slice(&(0.01f32 * (r + 1) as f32).to_le_bytes());
            }
            let tensors = [
                (DType::F32, &f32b[..ROWS * cols * 4]),
                (DType::F16, &f16b[..ROWS * cols * 2]),
                (DType::I8, &i8b[..ROWS * cols + 4 * ROWS]),
            ];
            for shift in [0usize, 1] {
                for (dtype, bytes) in tensors {
                    // The shifted copy starts one byte later in a buffer of the same bytes.
                    let mut buf = [0u8; 1 + ROWS * 24 * 4 + 4 * ROWS];
                    buf[shift..shift + bytes.len()].copy_from_slice(bytes);
                    let t = Tensor::new(dtype, ROWS, cols, &buf[shift..shift + bytes.len()]).unwrap();
                    let mut all = [0.0f32; ROWS];
                    t.rows_dot_with(&crate::kernels::PORTABLE, 0, x, &mut all);
                    let mut some = [0.0f32; 5];
                    t.rows_dot_with(&crate::kernels::PORTABLE, 2, x, &mut some);
                    for r in 0..ROWS {
                        let want = t.row_dot_reference(r, x).to_bits();
                        assert_eq!(t.row_dot(r, x).to_bits(), want, "{dtype:?} cols {cols} row {r}");
                        assert_eq!(all[r].to_bits(), want, "{dtype:?} cols {cols} row {r} (rows_dot)");
                        if (2..7).contains(&r) {
                            assert_eq!(some[r - 2].to_bits(), want, "{dtype:?} cols {cols} row {r} (from 2)");
                        }
                        let (mut a, mut b) = ([0.5f32; 24], [0.5f32; 24]);
                        let mut c = [0.5f32; 24];
                        for alpha in [-0.75f32, 1e5] {
                            t.row_axpy(r, alpha, &mut a[..cols]);
                            t.row_axpy_with(&crate::kernels::PORTABLE, r, alpha, &mut c[..cols]);
                            t.row_axpy_reference(r, alpha, &mut b[..cols]);
                            assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "{dtype:?} cols {cols} row {r}");
                            assert_eq!(
                                c.map(f32::to_bits),
                                b.map(f32::to_bits),
                                "{dtype:?} cols {cols} row {r} (with)"
                            );
                        }
                    }
                    // rows_axpy against sequential reference axpys, including a huge coefficient (f16's
                    // exact fallback) and a partial block.
                    for alpha in [[0.3f32, -1.25, 2.0, 0.0, 7.5, -0.5, 1e-3], [1e6, -0.5, 2.0, 3.0, 1e-30, 4.0, -8.0]] {
                        let (mut a, mut b) = ([0.5f32; 24], [0.5f32; 24]);
                        t.rows_axpy_with(&crate::kernels::PORTABLE, 0, &alpha, &mut a[..cols]);
                        for (r, &ar) in alpha.iter().enumerate() {
                            t.row_axpy_reference(r, ar, &mut b[..cols]);
                        }
                        assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "{dtype:?} cols {cols} rows_axpy");
                    }
                }
            }
        }
    }

    /// Kernels that forward to [`crate::kernels::Portable`] and count the calls: `with_kernels` must route the
    /// denoiser's matrix-vector products through the given kernels, with unchanged bits.
    #[derive(Debug, Default)]
    struct Counting(core::sync::atomic::AtomicUsize);

    impl Counting {
        /// Counts one call and returns the kernels that do the work.
        fn tick(&self) -> &'static crate::kernels::Portable {
            self.0.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            &crate::kernels::PORTABLE
        }
    }

    impl crate::kernels::BlockKernels for Counting {
        fn dot_rows4_f32(&self, x: &[[f32; 4]], w: [&[[f32; 4]]; 4], s: &mut [[f32; 4]; 4]) {
            self.tick().dot_rows4_f32(x, w, s);
        }
        fn axpy_rows4_f32(&self, alpha: [f32; 4], w: [&[[f32; 4]]; 4], y: &mut [[f32; 4]]) {
            self.tick().axpy_rows4_f32(alpha, w, y);
        }
        fn dot_rows4_f16(&self, x: &[[f32; 4]], w: [&[[u32; 2]]; 4], s: &mut [[f32; 4]; 4]) {
            self.tick().dot_rows4_f16(x, w, s);
        }
        fn axpy_rows4_f16(&self, alpha: [f32; 4], w: [&[[u32; 2]]; 4], y: &mut [[f32; 4]]) {
            self.tick().axpy_rows4_f16(alpha, w, y);
        }
    }

    #[test]
    fn gaussian_with_kernels_routes_through_them_with_the_same_bits() {
        // d = 22: five 4-element chunks plus a 2-element tail, and f16 rows of 44 bytes (4-byte aligned, so
        // the block kernels apply to f16 too).
        const D: usize = 22;
        const K: usize = 6;
        #[repr(C, align(16))]
        struct Aligned<T>(T);
        let val = |r: usize, c: usize| ((r * 13 + c * 5) % 11) as f32 / 11.0 - 0.45;
        let mut lambda = [0u8; 4 * K];
        for i in 0..K {
            lambda[4 * i..4 * i + 4].copy_from_slice(&(4.0f32 / (i + 1) as f32).to_le_bytes());
        }
        let mut f32b = Aligned([0u8; 4 * (K + 1) * D]);
        let mut f16b = Aligned([0u8; 2 * (K + 1) * D]);
        for r in 0..=K {
            for c in 0..D {
                let i = r * D + c;
                f32b.0[4 * i..4 * i + 4].copy_from_slice(&val(r, c).to_le_bytes());
                f16b.0[2 * i..2 * i + 2].copy_from_slice(&half::f16::from_f32(val(r, c)).to_le_bytes());
            }
        }
        let x: [f32; D] = core::array::from_fn(|c| (c as f32 * 0.7).cos() * 2.0);
        for (dtype, bytes, size) in [(DType::F32, &f32b.0[..], 4), (DType::F16, &f16b.0[..], 2)] {
            let (mu, u_t) = bytes.split_at(size * D);
            let g = GaussianDenoiser::new(
                Tensor::new(dtype, 1, D, mu).unwrap(),
                Tensor::new(dtype, K, D, u_t).unwrap(),
                Tensor::new(DType::F32, 1, K, &lambda).unwrap(),
                0.05,
            )
            .unwrap();
            let counting = Counting::default();
            let gc = g.with_kernels(&counting);
            let (mut a, mut b, mut scratch) = ([0.0f32; D], [0.0f32; D], [0.0f32; K]);
            for sigma in [0.0f32, 0.3, 5.0, 80.0] {
                g.denoise(&x, sigma, &mut a, &mut scratch);
                gc.denoise(&x, sigma, &mut b, &mut scratch);
                assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "{dtype:?} sigma {sigma}");
            }
            // One dot and one axpy block (rows 0..4; rows 4, 5 go row by row) per evaluation.
            assert_eq!(counting.0.load(core::sync::atomic::Ordering::Relaxed), 2 * 4, "{dtype:?}");
        }
    }

    #[test]
    fn linear_basis_with_kernels_routes_through_them_with_the_same_bits() {
        const D: usize = 22;
        const K: usize = 5;
        const L: usize = 3;
        #[repr(C, align(16))]
        struct Aligned<T>(T);
        let f32s = |v: &mut [u8], f: &dyn Fn(usize) -> f32| {
            for (i, chunk) in v.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&f(i).to_le_bytes());
            }
        };
        let mut sig = Aligned([0u8; 4 * L]);
        f32s(&mut sig.0, &|i| 10.0 / (1 << (2 * i)) as f32);
        let mut u = Aligned([0u8; 4 * K * D]);
        f32s(&mut u.0, &|i| ((i * 7) % 13) as f32 / 13.0 - 0.5);
        let mut m = Aligned([0u8; 4 * L * K * K]);
        f32s(&mut m.0, &|i| ((i * 5) % 9) as f32 / 9.0 - 0.4);
        let mut a = Aligned([0u8; 4 * L]);
        f32s(&mut a.0, &|i| 0.1 * i as f32);
        let mut b = Aligned([0u8; 4 * L * D]);
        f32s(&mut b.0, &|i| ((i * 3) % 7) as f32 / 7.0);
        let lin = LinearDenoiser::basis(
            Tensor::new(DType::F32, 1, L, &sig.0).unwrap(),
            Tensor::new(DType::F32, K, D, &u.0).unwrap(),
            Tensor::new(DType::F32, L * K, K, &m.0).unwrap(),
            Tensor::new(DType::F32, 1, L, &a.0).unwrap(),
            Tensor::new(DType::F32, L, D, &b.0).unwrap(),
        )
        .unwrap();
        let counting = Counting::default();
        let lc = lin.with_kernels(&counting);
        let x: [f32; D] = core::array::from_fn(|c| (c as f32 * 0.3).sin());
        let (mut o1, mut o2, mut scratch) = ([0.0f32; D], [0.0f32; D], [0.0f32; 2 * K]);
        for sigma in [20.0f32, 10.0, 4.0, 1.0, 0.1] {
            lin.denoise(&x, sigma, &mut o1, &mut scratch);
            lc.denoise(&x, sigma, &mut o2, &mut scratch);
            assert_eq!(o1.map(f32::to_bits), o2.map(f32::to_bits), "sigma {sigma}");
        }
        // One dot and one axpy block (rows 0..4; row 4 goes alone) per evaluation.
        assert_eq!(counting.0.load(core::sync::atomic::Ordering::Relaxed), 2 * 5);
    }
}
