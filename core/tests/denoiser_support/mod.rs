//! Shared helpers for the denoiser and sampler tests: encode matrices into blob tensor storage (f32, f16,
//! int8 with per-row scales, exactly as documented in `blob/tensor.rs`), random orthonormal bases, and f64
//! references with nalgebra. Tensors are built straight from bytes so these tests do not depend on the
//! blob writer.
#![allow(dead_code)]

use gaussdiff_core::denoiser::GaussianDenoiser;
use gaussdiff_core::rng::Rng;
use gaussdiff_core::schedule::EdmSchedule;
use gaussdiff_core::tensor::{DType, Tensor};
use nalgebra::{DMatrix, DVector};

/// All storage formats.
pub const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::I8];

/// Little-endian bytes of a row-major `rows x cols` matrix in `dtype`.
///
/// int8: per row `scale = max|v| / 127` (1 for an all-zero row), `q = round(v / scale)`, data then scales.
pub fn encode(dtype: DType, rows: usize, cols: usize, values: &[f32]) -> Vec<u8> {
    assert_eq!(values.len(), rows * cols);
    let mut out = Vec::with_capacity(dtype.storage_bytes(rows, cols));
    match dtype {
        DType::F32 => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F16 => values.iter().for_each(|v| out.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes())),
        DType::I8 => {
            let mut scales = Vec::with_capacity(rows);
            for r in 0..rows {
                let row = &values[r * cols..(r + 1) * cols];
                let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
                row.iter().for_each(|v| out.push((v / scale).round().clamp(-127.0, 127.0) as i8 as u8));
                scales.push(scale);
            }
            scales.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
        }
    }
    out
}

/// A tensor view over bytes produced by [`encode`].
pub fn view(dtype: DType, rows: usize, cols: usize, bytes: &[u8]) -> Tensor<'_> {
    Tensor::new(dtype, rows, cols, bytes).expect("test bytes have the right length")
}

/// The values a tensor actually stores (after quantization), as an f64 matrix.
pub fn stored(t: &Tensor<'_>) -> DMatrix<f64> {
    DMatrix::from_fn(t.rows(), t.cols(), |r, c| t.get(r, c) as f64)
}

/// Row-major f32 values of an f64 matrix.
pub fn row_major(m: &DMatrix<f64>) -> Vec<f32> {
    let mut v = Vec::with_capacity(m.len());
    for r in 0..m.nrows() {
        for c in 0..m.ncols() {
            v.push(m[(r, c)] as f32);
        }
    }
    v
}

/// `rows x cols` matrix of standard normals (f64 from the crate's f32 normals).
pub fn normals(rng: &mut Rng, rows: usize, cols: usize) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |_, _| rng.normal() as f64)
}

/// A `d x k` matrix with orthonormal columns (QR of a Gaussian matrix).
pub fn orthonormal(rng: &mut Rng, d: usize, k: usize) -> DMatrix<f64> {
    normals(rng, d, k).qr().q().columns(0, k).into_owned()
}

/// EDM's default schedule in 18 steps: 19 levels from 80 down to 0.
pub fn edm_sigmas_18() -> [f32; 19] {
    let mut sigmas = [0.0f32; 19];
    EdmSchedule::default().fill(18, &mut sigmas);
    sigmas
}

/// An f32 vector as f64.
pub fn to_f64(x: &[f32]) -> DVector<f64> {
    DVector::from_iterator(x.len(), x.iter().map(|&v| v as f64))
}

/// `max_j |a_j - b_j| / max(max_j |b_j|, 1)`: error relative to the output scale (outputs are O(1) here).
pub fn rel_err(a: &[f32], b: &DVector<f64>) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b.iter()).map(|(&x, &y)| (x as f64 - y).abs()).fold(0.0, f64::max) / scale
}

/// f64 reference of a Gaussian `N(mu, U diag(lambda) U^T + c (I - U U^T))` (`U`: `d x k`, orthonormal
/// columns): its denoiser and its exact flow.
#[derive(Clone, Debug)]
pub struct GaussianRef {
    pub mu: DVector<f64>,
    pub u: DMatrix<f64>,
    pub lambda: Vec<f64>,
    pub c: f64,
}

impl GaussianRef {
    /// The parameters a denoiser actually stores (after f16/int8 rounding).
    pub fn stored(g: &GaussianDenoiser<'_>) -> Self {
        Self {
            mu: stored(&g.mu()).row(0).transpose(),
            u: stored(&g.u_t()).transpose(),
            lambda: (0..g.rank()).map(|r| g.lambda(r) as f64).collect(),
            c: g.floor() as f64,
        }
    }

    /// The denoiser `mu + U diag(lambda/(lambda+s^2)) U^T (x-mu) + c/(c+s^2) (I - U U^T)(x-mu)` (0/0 -> 0).
    pub fn denoise(&self, x: &DVector<f64>, sigma: f64) -> DVector<f64> {
        let s2 = sigma * sigma;
        let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
        self.per_mode(x, |v| ratio(v, v + s2))
    }

    /// The exact flow from `sigma_t` to `sigma`: each mode scaled by `sqrt((v + sigma^2) / (v + sigma_t^2))`.
    pub fn flow(&self, x_t: &DVector<f64>, sigma_t: f64, sigma: f64) -> DVector<f64> {
        self.per_mode(x_t, |v| ((v + sigma * sigma) / (v + sigma_t * sigma_t)).sqrt())
    }

    /// `mu + U diag(h(lambda)) U^T (x-mu) + h(c) (I - U U^T)(x-mu)`, the complement term absent when `U` is
    /// square: each mode of the Gaussian (variance `v`) scaled by `h(v)`.
    fn per_mode(&self, x: &DVector<f64>, h: impl Fn(f64) -> f64) -> DVector<f64> {
        let (mu, u) = (&self.mu, &self.u);
        let r = x - mu;
        let coef = u.transpose() * &r;
        let proj = u * &coef;
        let g = DVector::from_iterator(self.lambda.len(), self.lambda.iter().zip(coef.iter()).map(|(&l, &a)| h(l) * a));
        let hc = if u.ncols() == u.nrows() { 0.0 } else { h(self.c) };
        mu + u * g + (r - proj) * hc
    }
}

/// Tolerance against the f64 formula on the values the tensors actually store (after f16/int8 rounding):
/// isolates the f32 arithmetic, so it is the same for every dtype (relative to the output scale).
pub const KERNEL_TOL: f64 = 2e-6;

/// Tolerance against the f64 formula on the original parameters, storage rounding included (relative to the
/// output scale, for the sizes of these tests).
pub fn model_tol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        DType::F16 => 2e-3,
        DType::I8 => 4e-2,
    }
}

/// The worst errors of a denoiser's f32 outputs against its two f64 references: `kernel` (the formula on the
/// stored values) and `model` (the formula on the original parameters).
#[derive(Clone, Copy, Debug, Default)]
pub struct WorstErrors {
    pub kernel: f64,
    pub model: f64,
}

impl WorstErrors {
    /// Takes one output and its two references into account ([`rel_err`]).
    pub fn record(&mut self, out: &[f32], kernel: &DVector<f64>, model: &DVector<f64>) {
        self.kernel = self.kernel.max(rel_err(out, kernel));
        self.model = self.model.max(rel_err(out, model));
    }

    /// Prints both errors (`{label} {dtype}: ...`) and asserts [`KERNEL_TOL`] and [`model_tol`].
    pub fn assert_within_tolerances(&self, label: &str, dtype: DType) {
        let (name, wk, wm) = (dtype.name(), self.kernel, self.model);
        eprintln!("{label} {name}: kernel err {wk:.2e}, model err {wm:.2e}");
        assert!(wk < KERNEL_TOL, "{name}: kernel error {wk:e}");
        assert!(wm < model_tol(dtype), "{name}: model error {wm:e}");
    }
}
