//! Denoisers `D(x; sigma)`: the optimal denoiser of a Gaussian (low rank plus isotropic floor) and
//! per-noise-level linear maps, both evaluated straight from blob storage without allocation.

pub mod gaussian;
pub mod linear;

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
