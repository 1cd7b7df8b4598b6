//! The Gaussian denoiser and its exact flow against f64 references (nalgebra), for f32, f16 and int8 storage,
//! plus one test per construction error.
//!
//! Two references per case:
//! * **kernel**: the f64 formula on the values the tensors actually store (after f16/int8 rounding). This
//!   isolates the f32 arithmetic: tolerance `KERNEL_TOL` (denoiser_support) = 2e-6 (relative to the output scale) for every dtype
//!   (measured: <= 3.2e-7).
//! * **model**: the f64 formula on the original parameters, so storage rounding counts too: tolerance
//!   `model_tol(dtype)` = 1e-5 (f32), 2e-3 (f16), 4e-2 (int8) for these sizes (d <= 64; measured worst:
//!   3.1e-7, 4.4e-4, 1.8e-2; int8 error grows with d as rounding errors of U U^T accumulate).

mod denoiser_support;

use denoiser_support::*;
use gaussdiff_core::blob::format::field;
use gaussdiff_core::denoiser::{Denoiser, GaussianDenoiser};
use gaussdiff_core::rng::Rng;
use gaussdiff_core::tensor::DType;
use gaussdiff_core::BlobError;
use nalgebra::DVector;

/// Parameters in f64 (the model reference) plus their encoded bytes.
struct Fixture {
    model: GaussianRef,
    mu_b: Vec<u8>,
    u_b: Vec<u8>,
    lam_b: Vec<u8>,
    dtype: DType,
}

impl Fixture {
    fn new(seed: u64, d: usize, k: usize, c: f32, dtype: DType) -> Self {
        let mut rng = Rng::new(seed);
        let mu = normals(&mut rng, d, 1).column(0) * 0.5;
        let u = orthonormal(&mut rng, d, k);
        // Descending spectrum over three decades, rounded to f32 (lambda is always stored as f32).
        let lambda: Vec<f64> = (0..k).map(|i| (4.0 * 0.8f64.powi(i as i32)) as f32 as f64).collect();
        let mu_b = encode(dtype, 1, d, &mu.iter().map(|&v| v as f32).collect::<Vec<_>>());
        let u_b = encode(dtype, k, d, &row_major(&u.transpose()));
        let lam_b = encode(DType::F32, 1, k, &lambda.iter().map(|&v| v as f32).collect::<Vec<_>>());
        let model = GaussianRef { mu: DVector::from_iterator(d, mu.iter().copied()), u, lambda, c: c as f64 };
        Self { model, mu_b, u_b, lam_b, dtype }
    }

    fn denoiser(&self) -> GaussianDenoiser<'_> {
        let (d, k) = (self.model.u.nrows(), self.model.u.ncols());
        GaussianDenoiser::new(
            view(self.dtype, 1, d, &self.mu_b),
            view(self.dtype, k, d, &self.u_b),
            view(DType::F32, 1, k, &self.lam_b),
            self.model.c as f32,
        )
        .expect("valid parameters")
    }
}

const SIGMAS: [f32; 7] = [0.0, 0.002, 0.05, 0.5, 1.0, 10.0, 80.0];

fn check_denoise(d: usize, k: usize, c: f32) {
    for dtype in DTYPES {
        let fx = Fixture::new(11 + d as u64 + k as u64, d, k, c, dtype);
        let g = fx.denoiser();
        let kernel = GaussianRef::stored(&g);
        assert_eq!(g.dim(), d);
        assert_eq!(g.rank(), k);
        assert_eq!(g.scratch_len(), k);
        assert_eq!(g.macs_per_eval(), (2 * d * k + d) as u64);
        let mut rng = Rng::new(99);
        let mut out = vec![0.0f32; d];
        let mut scratch = vec![0.0f32; g.scratch_len()];
        let mut worst = WorstErrors::default();
        for &sigma in &SIGMAS {
            for _ in 0..3 {
                // A noisy sample at this level: x = mu + (data-like) + sigma n.
                let x64 = &fx.model.mu + normals(&mut rng, d, 1).column(0) * (1.0 + sigma as f64);
                let x: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
                let x64 = to_f64(&x);
                g.denoise(&x, sigma, &mut out, &mut scratch);
                let sigma = sigma as f64;
                worst.record(&out, &kernel.denoise(&x64, sigma), &fx.model.denoise(&x64, sigma));
            }
        }
        worst.assert_within_tolerances(&format!("d={d} k={k} c={c}"), dtype);
    }
}

#[test]
fn full_rank_matches_f64_reference() {
    check_denoise(24, 24, 0.0);
}

#[test]
fn low_rank_without_floor_matches_f64_reference() {
    check_denoise(64, 8, 0.0);
}

#[test]
fn low_rank_with_floor_matches_f64_reference() {
    check_denoise(64, 8, 0.05);
}

#[test]
fn exact_flow_matches_f64_reference() {
    for dtype in DTYPES {
        let (d, k) = (48, 6);
        let fx = Fixture::new(5, d, k, 0.02, dtype);
        let g = fx.denoiser();
        let kernel = GaussianRef::stored(&g);
        let mut rng = Rng::new(3);
        let mut out = vec![0.0f32; d];
        let mut scratch = vec![0.0f32; g.exact_flow_scratch_len()];
        let mut worst = WorstErrors::default();
        for (sigma_t, sigma) in [(80.0f32, 0.0f32), (80.0, 0.5), (5.0, 0.002), (1.0, 1.0), (0.5, 20.0)] {
            let x: Vec<f32> = (&fx.model.mu + normals(&mut rng, d, 1).column(0) * (sigma_t as f64))
                .iter()
                .map(|&v| v as f32)
                .collect();
            g.exact_flow(&x, sigma_t, sigma, &mut out, &mut scratch);
            let x64 = to_f64(&x);
            let (sigma_t, sigma) = (sigma_t as f64, sigma as f64);
            worst.record(&out, &kernel.flow(&x64, sigma_t, sigma), &fx.model.flow(&x64, sigma_t, sigma));
        }
        worst.assert_within_tolerances("exact flow", dtype);
    }
}

#[test]
fn zero_noise_projects_onto_the_span_without_floor_and_is_identity_with_full_rank() {
    // c = 0, sigma = 0: D(x; 0) = mu + U U^T (x - mu), the truncated denoiser's projection.
    let fx = Fixture::new(8, 16, 4, 0.0, DType::F32);
    let g = fx.denoiser();
    let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut out = vec![0.0f32; 16];
    let mut scratch = vec![0.0f32; 4];
    g.denoise(&x, 0.0, &mut out, &mut scratch);
    let x64 = to_f64(&x);
    let (mu, u) = (&fx.model.mu, &fx.model.u);
    let want = mu + u * (u.transpose() * (&x64 - mu));
    assert!(rel_err(&out, &want) < 1e-5);
    assert!(out.iter().all(|v| v.is_finite()));

    // Full rank, sigma = 0: the identity up to rounding.
    let fx = Fixture::new(9, 8, 8, 0.0, DType::F32);
    let g = fx.denoiser();
    let x: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
    let mut out = vec![0.0f32; 8];
    let mut scratch = vec![0.0f32; 8];
    g.denoise(&x, 0.0, &mut out, &mut scratch);
    assert!(rel_err(&out, &to_f64(&x)) < 1e-5);
}

#[test]
fn zero_eigenvalues_at_zero_noise_are_projected_out_not_nan() {
    // lambda = (1, 0): the second direction has no variance; D(x; 0) keeps only the first.
    let (d, k) = (2, 2);
    let u = [1.0f32, 0.0, 0.0, 1.0];
    let (mu_b, u_b, lam_b) =
        (encode(DType::F32, 1, d, &[0.0, 0.0]), encode(DType::F32, k, d, &u), encode(DType::F32, 1, k, &[1.0, 0.0]));
    let g = GaussianDenoiser::new(
        view(DType::F32, 1, d, &mu_b),
        view(DType::F32, k, d, &u_b),
        view(DType::F32, 1, k, &lam_b),
        0.0,
    )
    .unwrap();
    let mut out = [0.0f32; 2];
    let mut scratch = [0.0f32; 2];
    g.denoise(&[3.0, 4.0], 0.0, &mut out, &mut scratch);
    assert_eq!(out, [3.0, 0.0]);
    g.exact_flow(&[3.0, 0.0], 0.0, 0.0, &mut out, &mut scratch);
    assert_eq!(out, [3.0, 0.0]);
}

/// Builds from f32 parameters; returns the construction result.
fn build(
    d: usize,
    mu: &[f32],
    u_t: &[f32],
    k: usize,
    lambda: &[f32],
    lambda_dtype: DType,
    c: f32,
) -> Result<(), BlobError> {
    let (mu_b, u_b, lam_b) = (
        encode(DType::F32, 1, mu.len(), mu),
        encode(DType::F32, k, d, u_t),
        encode(lambda_dtype, 1, lambda.len(), lambda),
    );
    GaussianDenoiser::new(
        view(DType::F32, 1, mu.len(), &mu_b),
        view(DType::F32, k, d, &u_b),
        view(lambda_dtype, 1, lambda.len(), &lam_b),
        c,
    )
    .map(|_| ())
}

#[test]
fn construction_errors_name_the_field() {
    let eye2 = [1.0f32, 0.0, 0.0, 1.0];
    assert_eq!(build(2, &[0.0, 0.0], &eye2, 2, &[2.0, 1.0], DType::F32, 0.0), Ok(()));
    // Ascending eigenvalues.
    assert_eq!(
        build(2, &[0.0, 0.0], &eye2, 2, &[1.0, 2.0], DType::F32, 0.0),
        Err(BlobError::BadField { field: field::LAMBDA, value: 2.0f32.to_bits() })
    );
    // Negative eigenvalue.
    assert_eq!(
        build(2, &[0.0, 0.0], &eye2, 2, &[1.0, -0.5], DType::F32, 0.0),
        Err(BlobError::BadField { field: field::LAMBDA, value: (-0.5f32).to_bits() })
    );
    // NaN and infinite eigenvalues.
    assert_eq!(
        build(2, &[0.0, 0.0], &eye2, 2, &[f32::NAN, 1.0], DType::F32, 0.0),
        Err(BlobError::NonFinite { field: field::LAMBDA })
    );
    assert_eq!(
        build(2, &[0.0, 0.0], &eye2, 2, &[f32::INFINITY, 1.0], DType::F32, 0.0),
        Err(BlobError::NonFinite { field: field::LAMBDA })
    );
    // Eigenvalues not stored as f32.
    assert_eq!(
        build(2, &[0.0, 0.0], &eye2, 2, &[2.0, 1.0], DType::F16, 0.0),
        Err(BlobError::BadField { field: field::LAMBDA, value: DType::F16 as u32 })
    );
    // Wrong number of eigenvalues.
    assert_eq!(
        build(2, &[0.0, 0.0], &eye2, 2, &[2.0, 1.0, 0.5], DType::F32, 0.0),
        Err(BlobError::BadField { field: field::LAMBDA, value: 3 })
    );
    // Negative and non-finite floor.
    assert_eq!(
        build(2, &[0.0, 0.0], &eye2, 2, &[2.0, 1.0], DType::F32, -1.0),
        Err(BlobError::BadField { field: field::FLOOR, value: (-1.0f32).to_bits() })
    );
    assert_eq!(
        build(2, &[0.0, 0.0], &eye2, 2, &[2.0, 1.0], DType::F32, f32::NAN),
        Err(BlobError::NonFinite { field: field::FLOOR })
    );
    // mu and U disagree on d.
    assert_eq!(
        build(2, &[0.0, 0.0, 0.0], &eye2, 2, &[2.0, 1.0], DType::F32, 0.0),
        Err(BlobError::BadField { field: field::DIM, value: 2 })
    );
    // k > d.
    assert_eq!(
        build(1, &[0.0], &[1.0, 1.0], 2, &[2.0, 1.0], DType::F32, 0.0),
        Err(BlobError::LimitExceeded { field: field::RANK, value: 2, max: 1 })
    );
    // d = 0.
    assert_eq!(build(0, &[], &[], 0, &[], DType::F32, 0.0), Err(BlobError::BadField { field: field::DIM, value: 0 }));
    // mu with two rows.
    let (mu_b, u_b, lam_b) =
        (encode(DType::F32, 2, 2, &[0.0; 4]), encode(DType::F32, 2, 2, &eye2), encode(DType::F32, 1, 2, &[2.0, 1.0]));
    assert_eq!(
        GaussianDenoiser::new(
            view(DType::F32, 2, 2, &mu_b),
            view(DType::F32, 2, 2, &u_b),
            view(DType::F32, 1, 2, &lam_b),
            0.0
        )
        .map(|_| ()),
        Err(BlobError::BadField { field: field::TENSOR_SHAPE, value: 2 })
    );
}
