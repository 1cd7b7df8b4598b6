//! The linear denoiser (dense and shared basis) against f64 references, for f32, f16 and int8 storage:
//! exactly one level on grid points, log-sigma interpolation of the outputs between them, clamping outside.
//!
//! Tolerances (relative to the output scale): kernel (f64 on the stored values) 2e-6 for every dtype;
//! model (f64 on the original parameters) 1e-5 f32, 2e-3 f16, 4e-2 int8.

mod denoiser_support;

use denoiser_support::*;
use gaussdiff_core::blob::format::field;
use gaussdiff_core::denoiser::{Denoiser, GaussianDenoiser, LinearDenoiser};
use gaussdiff_core::rng::Rng;
use gaussdiff_core::tensor::DType;
use gaussdiff_core::BlobError;
use nalgebra::{DMatrix, DVector};

const GRID: [f32; 4] = [20.0, 2.0, 0.3, 0.01];

/// f64 reference: `(1 - t) (W_i x + b_i) + t (W_{i+1} x + b_{i+1})` with `t` from the log-sigma rule.
fn linear_ref(grid: &[f32], w: &[DMatrix<f64>], b: &DMatrix<f64>, x: &DVector<f64>, sigma: f64) -> DVector<f64> {
    let level = |i: usize| &w[i] * x + b.row(i).transpose();
    let l = grid.len();
    if sigma >= grid[0] as f64 {
        return level(0);
    }
    if sigma <= grid[l - 1] as f64 {
        return level(l - 1);
    }
    let i = (0..l - 1).find(|&i| sigma <= grid[i] as f64 && sigma > grid[i + 1] as f64).unwrap();
    let (hi, lo) = ((grid[i] as f64).ln(), (grid[i + 1] as f64).ln());
    let t = (hi - sigma.ln()) / (hi - lo);
    level(i) * (1.0 - t) + level(i + 1) * t
}

/// Probe levels: on the grid, between grid points, above and below it, and 0.
fn probes() -> Vec<f32> {
    let mut s = GRID.to_vec();
    s.extend([80.0, 10.0, 1.0, 0.9, 0.05, 0.011, 0.005, 0.0]);
    s
}

/// The denoiser's outputs at every probe level (a fresh normal input each) against [`linear_ref`] with the
/// `kernel` maps (those the tensors store) and the `model` maps (the original parameters).
fn check_against_references(
    den: &LinearDenoiser<'_>,
    rng: &mut Rng,
    kernel: (&[DMatrix<f64>], &DMatrix<f64>),
    model: (&[DMatrix<f64>], &DMatrix<f64>),
) -> WorstErrors {
    let mut out = vec![0.0f32; den.dim()];
    let mut scratch = vec![0.0f32; den.scratch_len()];
    let mut worst = WorstErrors::default();
    for sigma in probes() {
        let x: Vec<f32> = normals(rng, den.dim(), 1).iter().map(|&v| v as f32).collect();
        den.denoise(&x, sigma, &mut out, &mut scratch);
        let x64 = to_f64(&x);
        let sigma = sigma as f64;
        worst.record(
            &out,
            &linear_ref(&GRID, kernel.0, kernel.1, &x64, sigma),
            &linear_ref(&GRID, model.0, model.1, &x64, sigma),
        );
    }
    worst
}

fn grid_bytes() -> Vec<u8> {
    encode(DType::F32, 1, GRID.len(), &GRID)
}

#[test]
fn dense_matches_f64_reference() {
    let (d, l) = (12, GRID.len());
    let mut rng = Rng::new(21);
    let w: Vec<DMatrix<f64>> = (0..l).map(|_| normals(&mut rng, d, d) * 0.3).collect();
    let b = normals(&mut rng, l, d) * 0.5;
    let mut w_rows = Vec::new();
    for wi in &w {
        w_rows.extend(row_major(wi));
    }
    let sig_b = grid_bytes();
    for dtype in DTYPES {
        let (w_b, b_b) = (encode(dtype, l * d, d, &w_rows), encode(dtype, l, d, &row_major(&b)));
        let den =
            LinearDenoiser::dense(view(DType::F32, 1, l, &sig_b), view(dtype, l * d, d, &w_b), view(dtype, l, d, &b_b))
                .unwrap();
        assert_eq!((den.dim(), den.scratch_len(), den.num_levels(), den.basis_rank()), (d, 0, l, None));
        let w_s: Vec<DMatrix<f64>> = {
            let all = stored(&view(dtype, l * d, d, &w_b));
            (0..l).map(|i| all.rows(i * d, d).into_owned()).collect()
        };
        let b_s = stored(&view(dtype, l, d, &b_b));
        check_against_references(&den, &mut rng, (&w_s, &b_s), (&w, &b)).assert_within_tolerances("dense", dtype);
    }
}

#[test]
fn basis_matches_f64_reference() {
    let (d, k, l) = (40, 6, GRID.len());
    let mut rng = Rng::new(22);
    let u = orthonormal(&mut rng, d, k);
    let m: Vec<DMatrix<f64>> = (0..l).map(|_| normals(&mut rng, k, k) * 0.4).collect();
    let a: Vec<f32> = (0..l).map(|i| 0.1 + 0.2 * i as f32).collect();
    let b = normals(&mut rng, l, d) * 0.5;
    let mut m_rows = Vec::new();
    for mi in &m {
        m_rows.extend(row_major(mi));
    }
    let (sig_b, a_b) = (grid_bytes(), encode(DType::F32, 1, l, &a));
    // W_i = U M_i U^T + a_i (I - U U^T) for the given U.
    let dense_w = |u: &DMatrix<f64>, m: &[DMatrix<f64>]| -> Vec<DMatrix<f64>> {
        (0..l)
            .map(|i| u * &m[i] * u.transpose() + (DMatrix::identity(d, d) - u * u.transpose()) * a[i] as f64)
            .collect()
    };
    let w_model = dense_w(&u, &m);
    for dtype in DTYPES {
        let (u_b, m_b, b_b) = (
            encode(dtype, k, d, &row_major(&u.transpose())),
            encode(dtype, l * k, k, &m_rows),
            encode(dtype, l, d, &row_major(&b)),
        );
        let den = LinearDenoiser::basis(
            view(DType::F32, 1, l, &sig_b),
            view(dtype, k, d, &u_b),
            view(dtype, l * k, k, &m_b),
            view(DType::F32, 1, l, &a_b),
            view(dtype, l, d, &b_b),
        )
        .unwrap();
        assert_eq!((den.dim(), den.scratch_len(), den.basis_rank()), (d, 2 * k, Some(k)));
        assert_eq!(den.macs_per_eval(), (2 * d * k + 2 * k * k + d) as u64);
        let u_s = stored(&view(dtype, k, d, &u_b)).transpose();
        let m_all = stored(&view(dtype, l * k, k, &m_b));
        let m_s: Vec<DMatrix<f64>> = (0..l).map(|i| m_all.rows(i * k, k).into_owned()).collect();
        let w_kernel = dense_w(&u_s, &m_s);
        let b_s = stored(&view(dtype, l, d, &b_b));
        check_against_references(&den, &mut rng, (&w_kernel, &b_s), (&w_model, &b))
            .assert_within_tolerances("basis", dtype);
    }
}

#[test]
fn weights_follow_the_documented_log_sigma_rule() {
    let sig_b = grid_bytes();
    let w_b = encode(DType::F32, 4, 1, &[1.0; 4]);
    let b_b = encode(DType::F32, 4, 1, &[0.0; 4]);
    let den = LinearDenoiser::dense(
        view(DType::F32, 1, 4, &sig_b),
        view(DType::F32, 4, 1, &w_b),
        view(DType::F32, 4, 1, &b_b),
    )
    .unwrap();
    for (i, &s) in GRID.iter().enumerate() {
        assert_eq!(den.weights(s), (i.min(GRID.len() - 1), 0.0), "grid point {s}");
    }
    assert_eq!(den.weights(1000.0), (0, 0.0));
    assert_eq!(den.weights(0.001), (3, 0.0));
    assert_eq!(den.weights(0.0), (3, 0.0));
    assert_eq!(den.weights(f32::NAN), (3, 0.0));
    // Geometric midpoint of 20 and 2 is sqrt(40): t = 1/2.
    let (i, t) = den.weights(40.0f32.sqrt());
    assert_eq!(i, 0);
    assert!((t - 0.5).abs() < 1e-6, "t = {t}");
    let (i, t) = den.weights(1.0);
    let want = (2.0f64.ln() - 1.0f64.ln()) / (2.0f64.ln() - 0.3f64.ln());
    assert_eq!(i, 1);
    assert!((t as f64 - want).abs() < 1e-6);
}

/// The linear denoiser that stores the Gaussian's own affine maps at the grid levels reproduces the Gaussian
/// denoiser exactly there: `M_i = diag(g_i)`, `a_i = f_i`, `b_i = mu - W_i mu`.
#[test]
fn basis_built_from_a_gaussian_reproduces_it_on_the_grid() {
    let (d, k, c) = (32usize, 5usize, 0.03f64);
    let mut rng = Rng::new(23);
    let u = orthonormal(&mut rng, d, k);
    let mu = normals(&mut rng, d, 1).column(0) * 0.3;
    let lambda: Vec<f64> = (0..k).map(|i| (2.0 * 0.5f64.powi(i as i32)) as f32 as f64).collect();
    let (l, grid) = (GRID.len(), GRID);
    let mut m_rows = vec![0.0f32; l * k * k];
    let mut a = vec![0.0f32; l];
    let mut b_rows = Vec::new();
    for (i, &s) in grid.iter().enumerate() {
        let s2 = (s as f64).powi(2);
        for r in 0..k {
            m_rows[i * k * k + r * k + r] = (lambda[r] / (lambda[r] + s2)) as f32;
        }
        a[i] = (c / (c + s2)) as f32;
        let wi = &u
            * DMatrix::from_diagonal(&DVector::from_iterator(k, lambda.iter().map(|&l| l / (l + s2))))
            * u.transpose()
            + (DMatrix::identity(d, d) - &u * u.transpose()) * (c / (c + s2));
        b_rows.extend((&mu - wi * &mu).iter().map(|&v| v as f32));
    }
    let (sig_b, u_b, m_b, a_b, b_b) = (
        encode(DType::F32, 1, l, &grid),
        encode(DType::F32, k, d, &row_major(&u.transpose())),
        encode(DType::F32, l * k, k, &m_rows),
        encode(DType::F32, 1, l, &a),
        encode(DType::F32, l, d, &b_rows),
    );
    let lin = LinearDenoiser::basis(
        view(DType::F32, 1, l, &sig_b),
        view(DType::F32, k, d, &u_b),
        view(DType::F32, l * k, k, &m_b),
        view(DType::F32, 1, l, &a_b),
        view(DType::F32, l, d, &b_b),
    )
    .unwrap();
    let (mu_b, lam_b) = (
        encode(DType::F32, 1, d, &mu.iter().map(|&v| v as f32).collect::<Vec<_>>()),
        encode(DType::F32, 1, k, &lambda.iter().map(|&v| v as f32).collect::<Vec<_>>()),
    );
    let g = GaussianDenoiser::new(
        view(DType::F32, 1, d, &mu_b),
        view(DType::F32, k, d, &u_b),
        view(DType::F32, 1, k, &lam_b),
        c as f32,
    )
    .unwrap();
    let (mut o1, mut o2) = (vec![0.0f32; d], vec![0.0f32; d]);
    let mut scratch = vec![0.0f32; 2 * k];
    for &s in &grid {
        let x: Vec<f32> = normals(&mut rng, d, 1).iter().map(|&v| v as f32 * (1.0 + s)).collect();
        lin.denoise(&x, s, &mut o1, &mut scratch);
        g.denoise(&x, s, &mut o2, &mut scratch);
        let err = rel_err(&o1, &to_f64(&o2));
        assert!(err < 2e-6, "sigma {s}: linear vs Gaussian {err:e}");
    }
}

fn dense_result(sigmas: &[f32], w_rows: usize, d: usize, b_rows: usize) -> Result<(), BlobError> {
    let (s_b, w_b, b_b) =
        (encode(DType::F32, 1, sigmas.len(), sigmas), vec![0u8; 4 * w_rows * d], vec![0u8; 4 * b_rows * d]);
    LinearDenoiser::dense(
        view(DType::F32, 1, sigmas.len(), &s_b),
        view(DType::F32, w_rows, d, &w_b),
        view(DType::F32, b_rows, d, &b_b),
    )
    .map(|_| ())
}

#[test]
fn construction_errors_name_the_field() {
    assert_eq!(dense_result(&[2.0, 1.0], 4, 2, 2), Ok(()));
    assert_eq!(
        dense_result(&[1.0, 2.0], 4, 2, 2),
        Err(BlobError::BadField { field: field::SIGMAS, value: 2.0f32.to_bits() })
    );
    assert_eq!(
        dense_result(&[2.0, 2.0], 4, 2, 2),
        Err(BlobError::BadField { field: field::SIGMAS, value: 2.0f32.to_bits() })
    );
    assert_eq!(dense_result(&[2.0, 0.0], 4, 2, 2), Err(BlobError::BadField { field: field::SIGMAS, value: 0 }));
    assert_eq!(dense_result(&[f32::NAN, 1.0], 4, 2, 2), Err(BlobError::NonFinite { field: field::SIGMAS }));
    assert_eq!(dense_result(&[], 0, 2, 0), Err(BlobError::BadField { field: field::NUM_SIGMAS, value: 0 }));
    assert_eq!(dense_result(&[2.0, 1.0], 3, 2, 2), Err(BlobError::BadField { field: field::TENSOR_SHAPE, value: 3 }));
    assert_eq!(dense_result(&[2.0, 1.0], 4, 2, 1), Err(BlobError::BadField { field: field::TENSOR_SHAPE, value: 1 }));
    assert_eq!(dense_result(&[2.0, 1.0], 0, 0, 2), Err(BlobError::BadField { field: field::DIM, value: 0 }));
    // f16 grid.
    let s16 = encode(DType::F16, 1, 2, &[2.0, 1.0]);
    let (w_b, b_b) = (vec![0u8; 16], vec![0u8; 16]);
    assert_eq!(
        LinearDenoiser::dense(view(DType::F16, 1, 2, &s16), view(DType::F32, 4, 1, &w_b), view(DType::F32, 2, 2, &b_b))
            .map(|_| ()),
        Err(BlobError::BadField { field: field::SIGMAS, value: DType::F16 as u32 })
    );

    // Shared basis: k > d, wrong M shape, non-finite a.
    let s_b = encode(DType::F32, 1, 2, &[2.0, 1.0]);
    let basis = |k: usize, d: usize, m_rows: usize, a: &[f32]| {
        let (u_b, m_b, a_b, b_b) =
            (vec![0u8; 4 * k * d], vec![0u8; 4 * m_rows * k], encode(DType::F32, 1, a.len(), a), vec![0u8; 4 * 2 * d]);
        LinearDenoiser::basis(
            view(DType::F32, 1, 2, &s_b),
            view(DType::F32, k, d, &u_b),
            view(DType::F32, m_rows, k, &m_b),
            view(DType::F32, 1, a.len(), &a_b),
            view(DType::F32, 2, d, &b_b),
        )
        .map(|_| ())
    };
    assert_eq!(basis(2, 3, 4, &[1.0, 0.5]), Ok(()));
    assert_eq!(basis(3, 2, 6, &[1.0, 0.5]), Err(BlobError::LimitExceeded { field: field::RANK, value: 3, max: 2 }));
    assert_eq!(basis(2, 3, 3, &[1.0, 0.5]), Err(BlobError::BadField { field: field::TENSOR_SHAPE, value: 3 }));
    assert_eq!(basis(2, 3, 4, &[1.0, f32::INFINITY]), Err(BlobError::NonFinite { field: field::COMPLEMENT }));
    assert_eq!(basis(2, 3, 4, &[1.0]), Err(BlobError::BadField { field: field::TENSOR_SHAPE, value: 1 }));
}
