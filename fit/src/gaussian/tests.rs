use super::*;
use gaussdiff_core::rng::Rng;

/// `n x d` correlated data: x = A z + mean, with a fixed random A.
fn data(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let a: Vec<f32> = (0..d * d).map(|_| rng.normal() / (d as f32).sqrt()).collect();
    let mut out = Vec::with_capacity(n * d);
    let mut z = vec![0.0f32; d];
    for _ in 0..n {
        rng.fill_normal(&mut z);
        for i in 0..d {
            let s: f32 = (0..d).map(|j| a[i * d + j] * z[j] * (1.0 + j as f32)).sum();
            out.push(s + 0.1 * i as f32);
        }
    }
    out
}

/// Two-pass f64 reference: mean, then covariance with divisor n (`DDOF` = 0).
fn reference(x: &[f32], d: usize) -> (Vec<f64>, nalgebra::DMatrix<f64>) {
    let n = x.len() / d;
    let mut mean = vec![0.0f64; d];
    for r in x.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = nalgebra::DMatrix::<f64>::zeros(d, d);
    for r in x.chunks_exact(d) {
        for i in 0..d {
            for j in 0..d {
                cov[(i, j)] += (f64::from(r[i]) - mean[i]) * (f64::from(r[j]) - mean[j]);
            }
        }
    }
    cov /= n as f64;
    (mean, cov)
}

/// Tolerances of [`assert_matches_reference`] when both sides see the same f32 values: mean (absolute),
/// covariance (relative to `1 + |cov|`).
const F64_ROUNDING: (f64, f64) = (1e-12, 1e-11);

/// Asserts that the moments of `x` match the two-pass [`reference`] within `tol` (mean absolute, covariance
/// relative to `1 + |cov|`).
fn assert_matches_reference(m: &Moments, x: &[f32], d: usize, tol: (f64, f64), what: &str) {
    let (mean, cov) = reference(x, d);
    let c = m.covariance().unwrap();
    for i in 0..d {
        assert!((m.mean()[i] - mean[i]).abs() < tol.0, "{what}: mean {i}");
        for j in 0..d {
            assert!((c[(i, j)] - cov[(i, j)]).abs() < tol.1 * (1.0 + cov[(i, j)].abs()), "{what}: cov {i},{j}");
        }
    }
}

/// Largest entry of `|U diag(lambda) U^T - cov|` for a full-rank fit.
fn reconstruction_error(f: &GaussianFit, cov: &nalgebra::DMatrix<f64>, d: usize) -> f64 {
    let mut worst = 0.0f64;
    for i in 0..d {
        for j in 0..d {
            let s: f64 = (0..d).map(|r| f.eigenvalues[r] * f.u_t[r * d + i] * f.u_t[r * d + j]).sum();
            worst = worst.max((s - cov[(i, j)]).abs());
        }
    }
    worst
}

#[test]
fn moments_match_two_pass_reference() {
    let d = 13;
    let x = data(1000, d, 1);
    let mut m = Moments::new(d);
    // Uneven chunks exercise the merge.
    m.add_chunk(&x[..7 * d]).unwrap();
    m.add_chunk(&x[7 * d..500 * d]).unwrap();
    m.add_chunk(&x[500 * d..]).unwrap();
    assert_matches_reference(&m, &x, d, F64_ROUNDING, "three chunks");
}

#[test]
fn merging_two_halves_equals_one_pass() {
    let d = 70;
    let x = data(600, d, 2);
    let mut one = Moments::new(d);
    one.add_chunk(&x).unwrap();
    let mut a = Moments::new(d);
    let mut b = Moments::new(d);
    a.add_chunk(&x[..250 * d]).unwrap();
    b.add_chunk(&x[250 * d..]).unwrap();
    a.merge(&b).unwrap();
    assert_eq!(a.count(), 600);
    let (c1, c2) = (one.covariance().unwrap(), a.covariance().unwrap());
    for i in 0..d {
        assert!((one.mean()[i] - a.mean()[i]).abs() < 1e-13);
        for j in 0..d {
            assert!((c1[(i, j)] - c2[(i, j)]).abs() < 1e-12 * (1.0 + c1[(i, j)].abs()));
        }
    }
    assert!(matches!(a.merge(&Moments::new(3)), Err(FitError::DimMismatch(70, 3))));
}

#[test]
fn eigen_matches_nalgebra_descending_with_fixed_signs() {
    let d = 150; // several of faer's Gram product blocks
    let x = data(400, d, 3);
    let f = fit(&x, d, &FitOptions { rank: Rank::Full, floor: Floor::None }).unwrap();
    let (_, cov) = reference(&x, d);
    let eig = nalgebra::SymmetricEigen::new(cov.clone());
    let mut idx: Vec<usize> = (0..d).collect();
    idx.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let top = eig.eigenvalues[idx[0]];
    for (r, &i) in idx.iter().enumerate() {
        assert!((f.eigenvalues[r] - eig.eigenvalues[i].max(0.0)).abs() < 1e-10 * top, "lambda {r}");
        assert!(r == 0 || f.eigenvalues[r] <= f.eigenvalues[r - 1]);
    }
    // Leading eigenvectors (well separated): equal up to sign to nalgebra's, and the sign rule holds.
    for (r, &i) in idx.iter().take(10).enumerate() {
        let v = &f.u_t[r * d..(r + 1) * d];
        let w = eig.eigenvectors.column(i);
        let dot: f64 = v.iter().zip(w.iter()).map(|(a, b)| a * b).sum();
        assert!((dot.abs() - 1.0).abs() < 1e-8, "vector {r}: |dot| = {}", dot.abs());
        let arg = (0..d).fold(0, |a, j| if v[j].abs() > v[a].abs() { j } else { a });
        assert!(v[arg] > 0.0);
    }
    // U diag(lambda) U^T reconstructs the covariance.
    let worst = reconstruction_error(&f, &cov, d);
    assert!(worst < 1e-10 * top, "reconstruction error {worst}");
}

#[test]
fn fit_is_bit_reproducible() {
    let d = 100;
    let x = data(300, d, 4);
    let opts = FitOptions { rank: Rank::Fixed(20), floor: Floor::Auto };
    let a = fit(&x, d, &opts).unwrap();
    let b = fit(&x, d, &opts).unwrap();
    let bits =
        |f: &GaussianFit| f.u_t.iter().chain(&f.eigenvalues).chain(&f.mean).map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a), bits(&b));
}

#[test]
fn rank_variance_and_floor_rules() {
    let d = 20;
    let x = data(200, d, 5);
    let full = fit(&x, d, &FitOptions { rank: Rank::Full, floor: Floor::Auto }).unwrap();
    assert_eq!((full.rank, full.floor), (d, 0.0));
    assert_eq!(full.explained_variance(), 1.0);
    let k5 = fit(&x, d, &FitOptions { rank: Rank::Fixed(5), floor: Floor::Auto }).unwrap();
    let rest: f64 = full.eigenvalues[5..].iter().sum::<f64>() / 15.0;
    assert!((k5.floor - rest).abs() < 1e-12 * rest);
    assert_eq!(k5.u_t.len(), 5 * d);
    let v = fit(&x, d, &FitOptions { rank: Rank::Variance(0.9), floor: Floor::Value(0.25) }).unwrap();
    let total: f64 = full.eigenvalues.iter().sum();
    let frac = |k: usize| full.eigenvalues[..k].iter().sum::<f64>() / total;
    assert!(frac(v.rank) >= 0.9 && (v.rank == 1 || frac(v.rank - 1) < 0.9), "k = {}", v.rank);
    assert_eq!(v.floor, 0.25);
    let p = v.to_params(ImageShape { channels: 1, height: 4, width: 5 });
    assert_eq!((p.lambda.len(), p.u_t.len(), p.mu.len()), (v.rank, v.rank * d, d));

    let err = |opts: FitOptions, x: &[f32]| fit(x, d, &opts).unwrap_err();
    assert!(matches!(err(FitOptions { rank: Rank::Fixed(21), floor: Floor::None }, &x), FitError::Rank { k: 21, .. }));
    assert!(matches!(err(FitOptions { rank: Rank::Fixed(0), floor: Floor::None }, &x), FitError::Rank { .. }));
    // n - 1 < k: 10 images support rank 9 at most.
    assert!(matches!(
        err(FitOptions { rank: Rank::Fixed(10), floor: Floor::None }, &x[..10 * d]),
        FitError::Rank { n: 10, .. }
    ));
    assert!(matches!(err(FitOptions { rank: Rank::Variance(1.5), floor: Floor::None }, &x), FitError::Variance(_)));
    assert!(matches!(err(FitOptions { rank: Rank::Full, floor: Floor::Value(-1.0) }, &x), FitError::Floor(_)));
    assert!(matches!(err(FitOptions::default(), &x[..d]), FitError::TooFewImages { n: 1 }));
    let mut nan = x.clone();
    nan[3 * d + 7] = f32::NAN;
    assert!(matches!(err(FitOptions::default(), &nan), FitError::NonFinite { image: 3, pixel: 7, .. }));
    assert!(matches!(fit(&x[..d + 1], d, &FitOptions::default()), Err(FitError::Shape { .. })));
    assert_eq!("auto".parse::<Floor>(), Ok(Floor::Auto));
    assert_eq!("0.5".parse::<Floor>(), Ok(Floor::Value(0.5)));
    assert!("-2".parse::<Floor>().is_err());
}

/// Pixels constant over a chunk (image borders) are left out of that chunk's product: the moments still
/// match the two-pass reference, and a pixel constant over all images has exactly zero covariance.
#[test]
fn constant_pixels_match_reference() {
    let d = 13;
    let mut x = data(600, d, 6);
    for r in x.chunks_exact_mut(d) {
        r[0] = 0.5; // constant everywhere
        r[12] = -1.0; // constant everywhere (the last pixel)
    }
    for r in x[..300 * d].chunks_exact_mut(d) {
        r[5] = 2.0; // constant over the first chunk only
    }
    let mut m = Moments::new(d);
    m.add_chunk(&x[..300 * d]).unwrap();
    m.add_chunk(&x[300 * d..]).unwrap();
    assert_matches_reference(&m, &x, d, F64_ROUNDING, "two chunks");
    let c = m.covariance().unwrap();
    for i in 0..d {
        assert_eq!(c[(i, 0)], 0.0);
        assert_eq!(c[(12, i)], 0.0);
    }
    // A chunk in which every pixel is constant.
    let mut all = Moments::new(d);
    all.add_chunk(&[1.0; 13 * 4]).unwrap();
    all.add_chunk(&x[..2 * d]).unwrap();
    assert_matches_reference(&all, &[&[1.0f32; 13 * 4][..], &x[..2 * d]].concat(), d, F64_ROUNDING, "all-constant");
}

/// Exact deflation of zero rows in the eigensolver: a fit on data with constant pixels gives the same
/// eigenvalues as nalgebra on the full covariance, kept eigenvectors exactly 0 at the constant pixels,
/// unit vectors for the deflated zero eigenvalues, and `U diag(lambda) U^T` reconstructs the covariance.
#[test]
fn eigen_deflates_constant_pixels() {
    let d = 40;
    let mut x = data(300, d, 7);
    let constant = [0usize, 7, 8, 39];
    for r in x.chunks_exact_mut(d) {
        for &p in &constant {
            r[p] = 0.25 * p as f32 - 1.0;
        }
    }
    let f = fit(&x, d, &FitOptions { rank: Rank::Full, floor: Floor::None }).unwrap();
    let (_, cov) = reference(&x, d);
    let eig = nalgebra::SymmetricEigen::new(cov.clone());
    let mut ref_values: Vec<f64> = eig.eigenvalues.iter().map(|&v| v.max(0.0)).collect();
    ref_values.sort_by(|a, b| b.total_cmp(a));
    let top = ref_values[0];
    for (r, (got, want)) in f.eigenvalues.iter().zip(&ref_values).enumerate() {
        assert!((got - want).abs() < 1e-10 * top, "lambda {r}");
    }
    for r in 0..d - constant.len() {
        assert!(f.eigenvalues[r] > 0.0);
        for &p in &constant {
            assert_eq!(f.u_t[r * d + p], 0.0, "vector {r} at constant pixel {p}");
        }
    }
    // The last rows are e_p for the constant pixels, in pixel order.
    for (q, &p) in constant.iter().enumerate() {
        let r = d - constant.len() + q;
        assert_eq!(f.eigenvalues[r], 0.0);
        for i in 0..d {
            assert_eq!(f.u_t[r * d + i], if i == p { 1.0 } else { 0.0 }, "row {r}");
        }
    }
    let worst = reconstruction_error(&f, &cov, d);
    assert!(worst < 1e-10 * top, "reconstruction error {worst}");
}

/// `n x d` 8-bit data as the readers make it (`(l - 127.5) / 127.5` in f32), correlated across pixels,
/// with pixel 0 constant and pixel `d - 1` constant except in the last image.
pub(super) fn level_data(n: usize, d: usize, seed: u64) -> (Vec<u8>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let mut levels = Vec::with_capacity(n * d);
    for k in 0..n {
        let base = rng.uniform_f32() * 255.0;
        for p in 0..d {
            let l = if p == 0 {
                17.0
            } else if p == d - 1 {
                if k == n - 1 {
                    3.0
                } else {
                    200.0
                }
            } else {
                (base + 60.0 * rng.normal()).clamp(0.0, 255.0).round()
            };
            levels.push(l as u8);
        }
    }
    let values = levels.iter().map(|&l| gaussdiff_core::pixel::PixelMap::EDM.to_value(f32::from(l))).collect();
    (levels, values)
}

#[test]
fn level_path_is_exact_and_kernel_independent() {
    for (n, d) in [(2, 3), (37, 20), (1500, 50)] {
        let (levels, x) = level_data(n, d, n as u64);
        let portable = moments_with(&x, d, LevelPath::Portable).unwrap();
        let auto = moments_with(&x, d, LevelPath::Auto).unwrap();
        let off = moments_with(&x, d, LevelPath::Off).unwrap();
        // One chunk: the mean and M2 are the correctly rounded moments of the exact values (2 l - 255) / 255,
        // from sums computed here independently in i128.
        let m = n as i128;
        let t: Vec<i128> = (0..d).map(|p| levels.iter().skip(p).step_by(d).map(|&l| i128::from(l)).sum()).collect();
        let c = portable.covariance().unwrap();
        for i in 0..d {
            let mu = (2 * t[i] - 255 * m) as f64 / (255.0 * n as f64);
            assert_eq!(portable.mean()[i], mu, "mean {i}, n = {n}");
            for j in 0..=i {
                let s: i128 = levels.chunks_exact(d).map(|r| i128::from(r[i]) * i128::from(r[j])).sum();
                let m2 = (4 * (m * s - t[i] * t[j])) as f64 / (65025.0 * n as f64);
                assert_eq!(c[(i, j)], m2 * (1.0 / n as f64), "cov {i},{j}, n = {n}");
            }
            // Constant pixel 0: an exactly zero row.
            assert_eq!(c[(i, 0)], 0.0, "row 0 at {i}");
        }
        // The VNNI kernel (where the CPU has it) gives the same bits; the f64 path agrees to rounding.
        assert_eq!(auto.mean(), portable.mean());
        assert_eq!(auto.covariance().unwrap(), c);
        let cf = off.covariance().unwrap();
        for i in 0..d {
            assert!((off.mean()[i] - portable.mean()[i]).abs() < 1e-7, "mean {i}");
            for j in 0..d {
                assert!((cf[(i, j)] - c[(i, j)]).abs() < 1e-6 * (1e-3 + c[(i, j)].abs()), "cov {i},{j}");
            }
        }
    }
}

#[test]
fn level_path_merges_with_f64_chunks_and_falls_back_on_other_values() {
    let d = 9;
    let (_, mut x) = level_data(700, d, 5);
    // Chunk boundaries of the public API: levels, then a chunk with one non-level value (f64 path), then NaN.
    let mut m = Moments::new(d);
    m.add_chunk(&x[..400 * d]).unwrap();
    x[450 * d + 4] = 0.123;
    m.add_chunk(&x[400 * d..]).unwrap();
    // The reference takes the f32 values, the 8-bit path the exact ones: they differ by up to 2^-24.
    assert_matches_reference(&m, &x, d, (1e-7, 1e-7), "levels then f64");
    x[10 * d + 2] = f32::NAN;
    let err = moments_with(&x, d, LevelPath::Portable).unwrap_err();
    assert!(matches!(err, FitError::NonFinite { image: 10, pixel: 2, .. }), "{err}");
}

/// `Q diag(lambda) Q^T` for a random orthogonal `Q`.
fn with_spectrum(lambda: &[f64], seed: u64) -> Mat<f64> {
    let n = lambda.len();
    let mut rng = Rng::new(seed);
    let g = Mat::<f64>::from_fn(n, n, |_, _| f64::from(rng.normal()));
    let q = g.qr().compute_Q();
    let ql = Mat::<f64>::from_fn(n, n, |i, j| q[(i, j)] * lambda[j]);
    &ql * q.transpose()
}

fn check_top_against_full(a: &Mat<f64>, k: usize, vectors_unique: bool) {
    let n = a.nrows();
    let full = eigh_descending(a.as_ref()).unwrap();
    let top = eigh_top(a.as_ref(), k).unwrap();
    assert_eq!(top.values.len(), k);
    assert_eq!(top.vectors.len(), k * n);
    let norm = full.values[0].abs().max(full.values[n - 1].abs());
    for r in 0..k {
        assert!(
            (top.values[r] - full.values[r]).abs() < 1e-13 * norm,
            "lambda {r}: {} vs {}",
            top.values[r],
            full.values[r]
        );
        let v = &top.vectors[r * n..(r + 1) * n];
        // Residual and orthonormality.
        let res: f64 = (0..n)
            .map(|i| ((0..n).map(|j| a[(i, j)] * v[j]).sum::<f64>() - top.values[r] * v[i]).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(res < 1e-12 * norm, "residual {r}: {res:e}");
        for q in 0..=r {
            let w = &top.vectors[q * n..(q + 1) * n];
            let dot: f64 = v.iter().zip(w).map(|(x, y)| x * y).sum();
            let want = if q == r { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-12, "<v{r}, v{q}> = {dot:e}");
        }
        if vectors_unique {
            // Same sign convention as the full decomposition: the same vector to rounding.
            let f = &full.vectors[r * n..(r + 1) * n];
            let diff = v.iter().zip(f).map(|(x, y)| (x - y).abs()).fold(0.0f64, f64::max);
            assert!(diff < 1e-9, "vector {r} differs from the full solver's by {diff:e}");
        }
    }
}

#[test]
fn partial_eigensolver_matches_the_full_one() {
    // Well separated: vectors are unique up to sign, and the sign is fixed the same way.
    let lambda: Vec<f64> = (0..160).map(|i| 10.0 * 0.93f64.powi(i)).collect();
    check_top_against_full(&with_spectrum(&lambda, 1), 20, true);
    // Clusters: a double eigenvalue and two within 1e-9 among the top 16, so the inverse iteration must
    // orthogonalise within clusters; vectors are then only unique as a subspace.
    let mut lambda: Vec<f64> = (0..128).map(|i| 5.0 - 0.03 * i as f64).collect();
    lambda[3] = lambda[2];
    lambda[8] = lambda[7] + 1e-9;
    check_top_against_full(&with_spectrum(&lambda, 2), 16, false);
    // A covariance with constant pixels (deflated rows), as the fit sees it.
    let d = 96;
    let mut x = data(300, d, 3);
    for r in x.chunks_exact_mut(d) {
        r[0] = 0.25;
        r[50] = -0.5;
    }
    let cov = moments(&x, d).unwrap().covariance().unwrap();
    check_top_against_full(&cov, 10, true);
}

#[test]
fn fixed_rank_fit_agrees_with_the_full_fit() {
    let d = 96;
    let x = data(400, d, 8);
    let full = fit(&x, d, &FitOptions { rank: Rank::Full, floor: Floor::None }).unwrap();
    let k = 12;
    let part = fit(&x, d, &FitOptions { rank: Rank::Fixed(k), floor: Floor::Auto }).unwrap();
    assert_eq!(part.rank, k);
    assert_eq!(part.eigenvalues.len(), k);
    let top = full.eigenvalues[0];
    for r in 0..k {
        assert!((part.eigenvalues[r] - full.eigenvalues[r]).abs() < 1e-12 * top);
        for p in 0..d {
            assert!((part.u_t[r * d + p] - full.u_t[r * d + p]).abs() < 1e-9, "u[{r}][{p}]");
        }
    }
    let floor: f64 = full.eigenvalues[k..].iter().sum::<f64>() / (d - k) as f64;
    assert!((part.floor - floor).abs() < 1e-12 * top, "floor {} vs {floor}", part.floor);
    assert!((part.total_variance - full.total_variance).abs() < 1e-12 * full.total_variance);
    let explained: f64 = full.eigenvalues[..k].iter().sum::<f64>() / full.total_variance;
    assert!((part.explained_variance() - explained).abs() < 1e-12);
}

/// Largest principal-angle sine between the row spaces of two `k x d` orthonormal row sets:
/// `||(I - B^T B) A^T||_2 <= ||(I - B^T B) A^T||_F`.
fn subspace_sine(a: &[f64], b: &[f64], d: usize) -> f64 {
    let mut worst = 0.0f64;
    for ra in a.chunks_exact(d) {
        let mut r = ra.to_vec();
        for rb in b.chunks_exact(d) {
            let dot: f64 = rb.iter().zip(&r).map(|(x, y)| x * y).sum();
            r.iter_mut().zip(rb).for_each(|(v, q)| *v -= dot * q);
        }
        worst = worst.max(r.iter().map(|v| v * v).sum::<f64>().sqrt());
    }
    worst
}

/// Orthonormality defect `max |U U^T - I|`.
fn orthonormality_defect(u: &[f64], d: usize) -> f64 {
    let k = u.len() / d;
    let mut worst = 0.0f64;
    for i in 0..k {
        for j in 0..k {
            let dot: f64 = u[i * d..(i + 1) * d].iter().zip(&u[j * d..(j + 1) * d]).map(|(a, b)| a * b).sum();
            worst = worst.max((dot - if i == j { 1.0 } else { 0.0 }).abs());
        }
    }
    worst
}

/// Few images of many pixels: the Gram path gives the covariance path's eigenvalues, subspaces, floor and
/// explained variance (fixed rank, with and without the partial solver; variance rank; auto floor), and its
/// vectors are orthonormal.
#[test]
fn gram_path_agrees_with_the_covariance_path() {
    let (n, d) = (40, 120);
    // Correlated data of rank n - 1 after centring, with distinct eigenvalues; and 8-bit levels, whose Gram
    // matrix the Gram path computes from integers where the VNNI kernel runs.
    // On 8-bit data the covariance path's moments take the exact values (2 l - 255) / 255, the Gram path's
    // Gram matrix too, but its mean and vectors the f32 values (within 2^-24 of them, relative): the
    // covariance path itself moves by 5e-8 in subspace angle between the two (LevelPath::Off / Portable).
    for (x, mean_tol, vec_tol) in [(data(n, d, 21), 1e-12, 1e-8), (level_data(n, d, 21).1, 1e-7, 1e-6)] {
        gram_path_agrees_on(&x, n, d, mean_tol, vec_tol);
    }
}

fn gram_path_agrees_on(x: &[f32], n: usize, d: usize, mean_tol: f64, vec_tol: f64) {
    let cov_path = |opts: &FitOptions| fit_moments(&moments(x, d).unwrap(), opts).unwrap();
    for opts in [
        FitOptions { rank: Rank::Fixed(10), floor: Floor::Auto },
        // 8 k <= n: only the top k eigenpairs of the Gram matrix (the partial solver).
        FitOptions { rank: Rank::Fixed(4), floor: Floor::Auto },
        FitOptions { rank: Rank::Fixed(n - 1), floor: Floor::None },
        FitOptions { rank: Rank::Variance(0.9), floor: Floor::Auto },
        FitOptions { rank: Rank::Variance(1.0), floor: Floor::Value(0.25) },
    ] {
        let g = fit(x, d, &opts).unwrap();
        let c = cov_path(&opts);
        assert_eq!(g.method, FitMethod::Gram);
        assert_eq!(c.method, FitMethod::Covariance);
        assert_eq!(g.rank, c.rank, "{opts:?}");
        let top = c.eigenvalues[0];
        for r in 0..g.rank {
            let rel = (g.eigenvalues[r] - c.eigenvalues[r]).abs() / c.eigenvalues[r].max(1e-300);
            assert!(rel < 1e-6 && (g.eigenvalues[r] - c.eigenvalues[r]).abs() < 1e-10 * top, "{opts:?} lambda[{r}]");
        }
        assert!((g.floor - c.floor).abs() < 1e-10 * top, "{opts:?} floor {} vs {}", g.floor, c.floor);
        assert!((g.total_variance - c.total_variance).abs() < 1e-10 * c.total_variance);
        assert!((g.explained_variance() - c.explained_variance()).abs() < 1e-10);
        for (a, b) in g.mean.iter().zip(&c.mean) {
            assert!((a - b).abs() < mean_tol, "mean");
        }
        assert!(orthonormality_defect(&g.u_t, d) < 1e-12);
        assert!(subspace_sine(&g.u_t, &c.u_t, d) < vec_tol, "{opts:?}: subspaces differ");
        // Same sign rule: well-separated leading vectors equal the covariance path's.
        for p in 0..d {
            assert!((g.u_t[p] - c.u_t[p]).abs() < vec_tol / 10.0);
        }
    }
}

/// Rank-deficient data (repeated images and a constant pixel) and tied eigenvalues: asked for more vectors
/// than the data has directions, the Gram path still returns an orthonormal set whose informative part spans
/// the covariance path's, with eigenvalue 0 beyond the data's rank.
#[test]
fn gram_path_handles_rank_deficiency_and_ties() {
    let d = 64;
    // Six distinct images, each twice: centred rank 5; pixel 0 constant.
    let base = data(6, d, 5);
    let mut x = Vec::new();
    for _ in 0..2 {
        x.extend_from_slice(&base);
    }
    for img in x.chunks_exact_mut(d) {
        img[0] = 0.25;
    }
    let n = x.len() / d;
    let g = fit(&x, d, &FitOptions { rank: Rank::Fixed(9), floor: Floor::Auto }).unwrap();
    let c = fit_moments(&moments(&x, d).unwrap(), &FitOptions { rank: Rank::Fixed(9), floor: Floor::Auto }).unwrap();
    assert_eq!(g.method, FitMethod::Gram);
    assert_eq!((g.rank, n), (9, 12));
    let top = c.eigenvalues[0];
    for r in 0..9 {
        assert!((g.eigenvalues[r] - c.eigenvalues[r]).abs() < 1e-10 * top, "lambda[{r}]");
    }
    assert!(g.eigenvalues[5..9].iter().all(|&v| v < 1e-10 * top));
    assert!(orthonormality_defect(&g.u_t, d) < 1e-12);
    assert!(subspace_sine(&g.u_t[..5 * d], &c.u_t[..5 * d], d) < 1e-8);
    assert_eq!(g.mean[0], 0.25);
    assert!(g.u_t[..5 * d].chunks_exact(d).all(|r| r[0] == 0.0 || r[0].abs() < 1e-12));

    // Ties: two images' worth of directions with equal variance (x = +-a e_1, +-a e_2): lambda_1 = lambda_2.
    let d = 16;
    let mut x = vec![0.0f32; 4 * d];
    x[1] = 1.0;
    x[d + 1] = -1.0;
    x[2 * d + 2] = 1.0;
    x[3 * d + 2] = -1.0;
    let g = fit(&x, d, &FitOptions { rank: Rank::Fixed(2), floor: Floor::None }).unwrap();
    assert!((g.eigenvalues[0] - g.eigenvalues[1]).abs() < 1e-15 && (g.eigenvalues[0] - 0.5).abs() < 1e-15);
    assert!(orthonormality_defect(&g.u_t, d) < 1e-12);
    let span = [vec![0.0; d], vec![0.0; d]];
    let mut span: Vec<f64> = span.concat();
    span[1] = 1.0;
    span[d + 2] = 1.0;
    assert!(subspace_sine(&g.u_t, &span, d) < 1e-12);
}

/// The Gram path is bit-identical for 1 and 3 threads (general and 8-bit data).
#[test]
fn gram_path_is_thread_count_independent() {
    let (n, d) = (30, 300);
    let opts = FitOptions { rank: Rank::Fixed(12), floor: Floor::Auto };
    for x in [data(n, d, 77), level_data(n, d, 77).1] {
        let run = |t: usize| {
            rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap().install(|| fit(&x, d, &opts).unwrap())
        };
        let (a, b) = (run(1), run(3));
        assert_eq!(
            a.u_t.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.u_t.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(a.eigenvalues, b.eigenvalues);
        assert_eq!(a.mean, b.mean);
    }
}

/// `n x d` low rank plus noise: `r` strong directions (variances 100, 90, ...) plus isotropic noise 0.01.
fn low_rank_plus_noise(n: usize, d: usize, r: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let basis: Vec<f32> = (0..r * d).map(|_| rng.normal() / (d as f32).sqrt()).collect();
    let mut out = Vec::with_capacity(n * d);
    let mut z = vec![0.0f32; r];
    let mut e = vec![0.0f32; d];
    for _ in 0..n {
        rng.fill_normal(&mut z);
        rng.fill_normal(&mut e);
        for p in 0..d {
            let s: f32 = (0..r).map(|j| basis[j * d + p] * z[j] * (100.0 - 10.0 * j as f32).sqrt()).sum();
            out.push(0.3 + s + 0.1 * e[p]);
        }
    }
    out
}

/// Many images of many pixels at a small fixed rank: the randomized path agrees with the covariance path
/// (eigenvalues to 1e-6 relative, subspaces, floor, explained variance), on low rank plus noise and on a
/// slowly decaying spectrum, and does not depend on the thread count.
#[test]
fn randomized_path_agrees_with_the_covariance_path() {
    let d = 400;
    for (case, (x, k)) in [(low_rank_plus_noise(1500, d, 6, 3), 6), (data(800, d, 4), 8)].into_iter().enumerate() {
        let opts = FitOptions { rank: Rank::Fixed(k), floor: Floor::Auto };
        let r = fit(&x, d, &opts).unwrap();
        let c = fit_moments(&moments(&x, d).unwrap(), &opts).unwrap();
        let FitMethod::Randomized { passes } = r.method else { panic!("expected the randomized path: {:?}", r.method) };
        assert!(passes < randomized::MAX_ITERS, "did not converge in {passes} passes");
        // Low rank plus noise: the data start and the f32-to-f64 hand-over take 2 f32 passes and 1 f64.
        assert!(case != 0 || passes <= 3, "low rank plus noise took {passes} passes");
        assert_eq!(c.method, FitMethod::Covariance);
        for j in 0..k {
            let rel = (r.eigenvalues[j] - c.eigenvalues[j]).abs() / c.eigenvalues[j];
            assert!(rel < 1e-6, "lambda[{j}]: {} vs {} ({:?})", r.eigenvalues[j], c.eigenvalues[j], r.method);
        }
        assert!((r.total_variance - c.total_variance).abs() < 1e-10 * c.total_variance);
        assert!((r.floor - c.floor).abs() < 1e-6 * c.floor.max(1e-12));
        assert!((r.explained_variance() - c.explained_variance()).abs() < 1e-8);
        assert!(orthonormality_defect(&r.u_t, d) < 1e-12);
        assert!(subspace_sine(&r.u_t, &c.u_t, d) < 1e-5, "subspace: {}", subspace_sine(&r.u_t, &c.u_t, d));
        for (a, b) in r.mean.iter().zip(&c.mean) {
            assert!((a - b).abs() < 1e-12);
        }
        let run = |t: usize| {
            rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap().install(|| fit(&x, d, &opts).unwrap())
        };
        let (a, b) = (run(1), run(3));
        assert_eq!(a, b, "thread count changed the randomized fit");
    }
}

/// The one-pass mean and centred sum of squares against a two-pass f64 reference, with a constant pixel
/// (its value exactly), a first image far out, and a non-finite value (an error naming it).
#[test]
fn mean_and_scatter_match_two_passes() {
    let (n, d) = (300, 700);
    let mut x = data(n, d, 9);
    for i in 0..n {
        x[i * d + 3] = 0.25;
    }
    x[5] = 40.0; // the first image's pixel 5, about 40 standard deviations out
    let (mean, scatter) = thin::mean_and_scatter(&x, d).unwrap();
    let mut reference = 0.0f64;
    for p in 0..d {
        let mu = (0..n).map(|i| f64::from(x[i * d + p])).sum::<f64>() / n as f64;
        assert!((mean[p] - mu).abs() <= 1e-12 * mu.abs().max(1.0), "mean {p}: {} vs {mu}", mean[p]);
        reference += (0..n).map(|i| (f64::from(x[i * d + p]) - mu).powi(2)).sum::<f64>();
    }
    assert_eq!(mean[3], 0.25);
    assert!((scatter - reference).abs() < 1e-12 * reference, "{scatter} vs {reference}");
    x[17 * d + 650] = f32::INFINITY;
    let err = thin::mean_and_scatter(&x, d).unwrap_err();
    assert!(matches!(err, FitError::NonFinite { image: 17, pixel: 650, .. }), "{err}");
}
